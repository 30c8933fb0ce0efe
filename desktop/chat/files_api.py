"""The "Your files" view's HTTP routes on the chat server (Starlette routes, beside `setup_api`'s).

GET  /files/state                   200 what the index holds and how far indexing is (`FileLibrary.state`)
POST /files/folders {"path": "..."} 200 the state, with the folder or file added (the indexer reads it)
POST /files/remove  {"path": "..."} 200 the state, with the folder or file and all it holds taken out
POST /files/refresh {}              202 the state (the app's indexer refreshes the index soon)
POST /files/open    {"path": "..."} 200 {"opened": path}: the file opened in its application

Errors are JSON, `{"error": "<a sentence for the page>"}`: 400 for a path that cannot be added or
removed, 404 for a file that is not in the index, 500 when no application opened it, 415 for a
POST that is not JSON. Requiring JSON keeps other web pages out (see `setup_api`): a page
elsewhere could otherwise post a plain form to 127.0.0.1 that adds a folder to the index, or
opens a file. Only a file in the index is ever opened: the chat cites those, and nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from desktop.chat.setup_api import NO_STORE, error_response, json_body
from desktop.documents.index import SourceRefused
from desktop.documents.library import FileLibrary


def files_routes(library: FileLibrary, open_file: Callable[[str], bool]) -> list[Route]:
    """The routes, each calling `library` (and `open_file`, the desktop's opener) off the event loop."""

    async def state(request: Request) -> JSONResponse:
        return JSONResponse(await asyncio.to_thread(library.state), headers=NO_STORE)

    async def folders(request: Request) -> JSONResponse:
        return await _change(request, library.add, library, 200)

    async def remove(request: Request) -> JSONResponse:
        return await _change(request, library.remove, library, 200)

    async def refresh(request: Request) -> JSONResponse:
        body = await json_body(request)
        if isinstance(body, JSONResponse):
            return body
        await asyncio.to_thread(library.request_refresh)
        return JSONResponse(await asyncio.to_thread(library.state), status_code=202, headers=NO_STORE)

    async def open_(request: Request) -> JSONResponse:
        path = await _path(request, "Send the file's path.")
        if isinstance(path, JSONResponse):
            return path
        if not await asyncio.to_thread(library.is_indexed, path):
            return error_response(404, "That file is not in your index.")
        name = Path(path).name
        if not await asyncio.to_thread(Path(path).is_file):
            return error_response(404, f"{name} is no longer there: it was moved or deleted.")
        if not await asyncio.to_thread(open_file, path):
            return error_response(500, f"No application could open {name}.")
        return JSONResponse({"opened": path}, headers=NO_STORE)

    return [
        Route("/files/state", state, methods=["GET"]),
        Route("/files/folders", folders, methods=["POST"]),
        Route("/files/remove", remove, methods=["POST"]),
        Route("/files/refresh", refresh, methods=["POST"]),
        Route("/files/open", open_, methods=["POST"]),
    ]


async def _change(
    request: Request, change: Callable[[Path], Any], library: FileLibrary, status: int
) -> JSONResponse:
    """Add or remove the request's path; the new state, or why it could not be done."""
    path = await _path(request, "Send the folder's path.")
    if isinstance(path, JSONResponse):
        return path

    def changed() -> dict[str, Any]:
        change(Path(path.strip()))  # as pasted: spaces around it are not part of it
        return library.state()

    try:
        answer = await asyncio.to_thread(changed)
    except SourceRefused as refused:
        return error_response(400, str(refused))
    return JSONResponse(answer, status_code=status, headers=NO_STORE)


async def _path(request: Request, missing: str) -> str | JSONResponse:
    """The request's `path`, or the error to answer with (`missing` when there is none)."""
    body = await json_body(request)
    if isinstance(body, JSONResponse):
        return body
    path = body.get("path")
    if not isinstance(path, str) or not path.strip():
        return error_response(400, missing)
    if "\0" in path:  # no file has one; the path functions would raise
        return error_response(400, "That is not a path.")
    return path
