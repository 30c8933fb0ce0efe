"""The setup view's HTTP routes on the chat server (Starlette routes; Chainlit's app is Starlette's).

GET  /setup/state                          200 the view's state (see `ModelSetup.state`)
POST /setup/model-folder {"path": "..."}   200 {"model_path", "settings_file", "state"}: served and saved
POST /setup/download     {}                202 the state (the download runs; its progress is in it)
POST /setup/retry        {}                202 the state (the runtime asks the catalog again)

Errors are JSON, `{"error": "<a sentence for the page>"}`: 400 for a folder that cannot be used,
409 when the action does not apply now, 415 for a POST that is not JSON. Requiring JSON keeps
other web pages out: a page elsewhere can post a plain form to 127.0.0.1 without asking, but not
JSON (that needs a CORS preflight, which the chat server grants only to its own address); the
chat server also refuses requests not addressed to a loopback name (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from desktop.chat.setup import ModelSetup, SetupRefused

NO_STORE = {"Cache-Control": "no-store"}


def setup_routes(setup: ModelSetup) -> list[Route]:
    """The routes, each calling `setup` off the event loop."""

    async def state(request: Request) -> JSONResponse:
        return JSONResponse(await asyncio.to_thread(setup.state), headers=NO_STORE)

    async def model_folder(request: Request) -> JSONResponse:
        return await _act(request, lambda body: setup.choose_folder(body.get("path")), 200)

    async def download(request: Request) -> JSONResponse:
        return await _act(request, lambda body: setup.download(), 202)

    async def retry(request: Request) -> JSONResponse:
        return await _act(request, lambda body: setup.retry(), 202)

    return [
        Route("/setup/state", state, methods=["GET"]),
        Route("/setup/model-folder", model_folder, methods=["POST"]),
        Route("/setup/download", download, methods=["POST"]),
        Route("/setup/retry", retry, methods=["POST"]),
    ]


async def _act(
    request: Request, action: Callable[[dict[str, Any]], dict[str, Any]], status: int
) -> JSONResponse:
    """Run `action` with the request's JSON object; its answer, or the refusal as JSON."""
    body = await json_body(request)
    if isinstance(body, JSONResponse):
        return body
    try:
        answer = await asyncio.to_thread(action, body)
    except SetupRefused as refused:
        return error_response(refused.status, str(refused))
    return JSONResponse(answer, status_code=status, headers=NO_STORE)


async def json_body(request: Request) -> dict[str, Any] | JSONResponse:
    """The request's JSON object, or the error to answer with."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return error_response(415, "Send the request as JSON (Content-Type: application/json).")
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        body = None
    return body if isinstance(body, dict) else error_response(400, "Send a JSON object.")


def error_response(status: int, message: str) -> JSONResponse:
    """An error for the page: `{"error": message}`, never cached."""
    return JSONResponse({"error": message}, status_code=status, headers=NO_STORE)
