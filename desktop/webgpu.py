"""The in-browser digit recogniser (`webgpu/`): served on 127.0.0.1, opened in a browser or window.

The page runs its model with ONNX Runtime Web, whose files a build step copies into
`webgpu/ort/` (`npm ci && npm run build` in that folder; the packaged app ships the result).
Until that step has run, the server answers the page with an explanation of the command to run.

    server = serve_webgpu(webgpu_root())
    open_in_browser(server.url)
    ...
    server.close()
"""

from __future__ import annotations

import html
import json
import logging
import os
import posixpath
import threading
import urllib.parse
import webbrowser
from dataclasses import dataclass
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from desktop.loopback import addressed_to_loopback
from desktop.paths import resource_root
from desktop.ports import LoopbackHTTPServer, listen_loopback

log = logging.getLogger(__name__)

DEFAULT_WEBGPU_PORT = 5284
"""Pinned port of the page on 127.0.0.1 (stable address, so the browser's cache works across
runs); a free one is used when it is busy."""
BUILD_COMMAND = "npm ci && npm run build"
"""What to run in the `webgpu/` folder to fill `webgpu/ort/`."""
ORT_MANIFEST = "ort/manifest.json"
"""Written by the build step: the ONNX Runtime Web version and the files it copied."""

MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
"""Explicit, so a platform's MIME registry (Windows maps `.js` to `text/plain` on some machines)
cannot break module scripts or WebAssembly streaming compilation."""

_HIDDEN_PARTS = frozenset({"node_modules"})


class _Server(LoopbackHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A browser that drops a connection (a reload, a cancelled preload) is not an error.
        log.debug("request from %s failed", client_address, exc_info=True)


def webgpu_root() -> Path:
    """The page's folder: `webgpu/` beside the source checkout, or inside the frozen bundle."""
    return resource_root() / "webgpu"


def missing_build_files(root: Path) -> list[str]:
    """The ONNX Runtime Web files the page needs that are not in `root/ort/` (empty: built)."""
    manifest = root / ORT_MANIFEST
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return [ORT_MANIFEST]
    return [f"ort/{name}" for name in files if not (root / "ort" / str(name)).is_file()]


@dataclass(frozen=True)
class WebGpuServer:
    """A running server for the page; `close()` stops it and waits for its thread."""

    server: ThreadingHTTPServer
    thread: threading.Thread
    root: Path

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        """The page's address, e.g. `http://127.0.0.1:5284/`."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def built(self) -> bool:
        """True when the ONNX Runtime Web files are in place (else the page explains the fix)."""
        return not missing_build_files(self.root)

    def close(self, timeout_s: float = 5.0) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout_s)

    def __enter__(self) -> WebGpuServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_webgpu(root: Path | None = None, port: int = DEFAULT_WEBGPU_PORT) -> WebGpuServer:
    """Serve `root` (default: `webgpu_root()`) on 127.0.0.1:`port` from a daemon thread.

    When `port` is taken, a free port is used instead (`port=0`: always a free one). Raises
    `FileNotFoundError` when `root` has no `index.html`. A missing build step does not raise:
    it is logged, and the page explains it to whoever opens it.
    """
    root = (root or webgpu_root()).resolve()
    if not (root / "index.html").is_file():
        raise FileNotFoundError(f"no index.html in {root}")
    missing = missing_build_files(root)
    if missing:
        log.warning("webgpu page not built (%s missing): run `%s` in %s", missing[0], BUILD_COMMAND, root)
    server = _Server(listen_loopback(port), _handler_for(root))
    thread = threading.Thread(target=server.serve_forever, name="webgpu-page", daemon=True)
    thread.start()
    return WebGpuServer(server=server, thread=thread, root=root)


def open_in_browser(url: str) -> bool:
    """Open `url` in the user's default browser; False when no browser could be started."""
    try:
        return webbrowser.open(url, new=2)
    except webbrowser.Error:
        log.exception("could not open a browser for %s", url)
        return False


def not_built_page(root: Path, missing: list[str]) -> bytes:
    """The page served in place of `index.html` until the build step has run."""
    folder = html.escape(str(root))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Digit recogniser: not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; line-height: 1.5">
<h1>The digit recogniser is not built yet</h1>
<p>ONNX Runtime Web, which runs the model in this page, is copied from its npm package by a
build step that has not run ({html.escape(missing[0])} is missing). In a terminal:</p>
<pre style="background: #f2f3f5; padding: 1rem; border-radius: 8px">cd {folder}
{html.escape(BUILD_COMMAND)}</pre>
<p>then reload this page.</p>
</body></html>
""".encode()


def _handler_for(root: Path) -> type[SimpleHTTPRequestHandler]:
    directory = str(root)

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=directory, **kwargs)

        def do_GET(self) -> None:
            if self._allowed():
                super().do_GET()

        def do_HEAD(self) -> None:
            if self._allowed():
                super().do_HEAD()

        def _allowed(self) -> bool:
            """Loopback host names only (no DNS rebinding); no hidden files, node_modules or
            directory listings; the explanation page while the build step has not run."""
            if not addressed_to_loopback(self.headers.get("Host")):
                self.send_error(HTTPStatus.FORBIDDEN, "only 127.0.0.1 / localhost is served")
                return False
            path = posixpath.normpath(urllib.parse.unquote(urllib.parse.urlsplit(self.path).path))
            parts = [part for part in path.split("/") if part]
            if any(part.startswith(".") or part in _HIDDEN_PARTS for part in parts):
                self.send_error(HTTPStatus.NOT_FOUND)
                return False
            if path in ("/", "/index.html"):
                missing = missing_build_files(root)
                if missing:
                    self._send_page(HTTPStatus.SERVICE_UNAVAILABLE, not_built_page(root, missing))
                    return False
            return True

        def _send_page(self, status: HTTPStatus, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", MIME_TYPES[".html"])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def list_directory(self, path: str | os.PathLike[str]) -> None:
            self.send_error(HTTPStatus.NOT_FOUND)

        def guess_type(self, path: str | os.PathLike[str]) -> str:
            return MIME_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")

        def end_headers(self) -> None:
            # Revalidate every file (cheap on loopback; a rebuilt page is never stale), and
            # isolate the page: precise timers for the benchmark, nothing cross-origin.
            self.send_header("Cache-Control", "no-cache")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
            super().end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    return Handler
