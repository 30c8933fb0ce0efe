"""A stand-in "remote" OpenAI-compatible endpoint on 127.0.0.1 that counts what it is asked.

Streams a fixed answer for any chat request, so routing tests can tell which endpoint answered
and assert that local-only never contacted it; or, with `failure` set, refuses it as an endpoint
does (an HTTP status and an OpenAI-style error body).
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from desktop.config import Settings
from desktop.runtime.control import send_json
from tests.conftest import free_port

REMOTE_ANSWER = "Remote stand-in answering."
REMOTE_MODEL = "remote-model"


class RemoteStandIn:
    def __init__(self) -> None:
        self.requests: list[str] = []
        self.bodies: list[dict[str, Any]] = []
        """The JSON of each chat request, in order."""
        self.answer = REMOTE_ANSWER
        """What it streams, word by word."""
        self.failure: tuple[int, str] | None = None
        """(status, message) to answer chat requests with instead of an answer."""
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def answering_all(self, **more: Any) -> Settings:
        """Settings under which the chat asks this stand-in for every message (rules routing with
        every task type remote, no local model): it sees exactly what a model would get."""
        return Settings(
            model="no-such-model",
            allow_download=False,
            runtime_port=free_port(),
            remote_base_url=self.base_url,
            remote_model=REMOTE_MODEL,
            routing="rules",
            remote_tasks="chat,code,long",
            **more,
        )

    def __enter__(self) -> RemoteStandIn:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                standin.requests.append(f"GET {self.path}")
                send_json(
                    self, HTTPStatus.OK, {"object": "list", "data": [{"id": REMOTE_MODEL, "object": "model"}]}
                )

            def do_POST(self) -> None:
                standin.requests.append(f"POST {self.path}")
                standin.bodies.append(
                    json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                )
                if standin.failure is not None:
                    status, message = standin.failure
                    error = {"error": {"message": message, "type": "server_error", "code": None}}
                    send_json(self, HTTPStatus(status), error)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for word in standin.answer.split(" "):
                    self._event({"delta": {"content": word + " "}, "index": 0, "finish_reason": None})
                self._event({"delta": {}, "index": 0, "finish_reason": "stop"})
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

            def _event(self, choice: dict[str, Any]) -> None:
                chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": REMOTE_MODEL}
                chunk["choices"] = [choice]
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
