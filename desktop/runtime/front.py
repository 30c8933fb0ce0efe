"""The model endpoint's front: a thin HTTP relay on the published port, before the runtime's web
service, so that a request that names no answer length still gets an answer.

Foundry Local (2.2.1) keeps 2048 tokens for the answer of a request that names none, whatever the
model, and refuses the request when that does not fit the model's context ("request requires 2059
total tokens (11 input + 2048 output), which exceeds the model's maximum context length of 1024
tokens"). Nothing in the runtime changes that number: not a registration's `max_output_tokens`,
not the model's genai_config (`search.max_length`), not a setting. Open WebUI, curl and many tools
send no answer length, so the front fills one in that fits the served model's context
(`answer_room`). Everything else is relayed unchanged; answers stream through as they come, and a
client that hangs up closes the runtime's connection too, which stops the model.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from desktop.ports import LoopbackHTTPServer, serve_http
from desktop.runtime.control import send_json

RUNTIME_ANSWER_ROOM = 2048
"""Tokens the runtime keeps for the answer of a request that names no answer length."""
ANSWER_LENGTH_FIELDS = {
    "/chat/completions": ("max_tokens", "max_completion_tokens"),
    "/responses": ("max_output_tokens",),
}
"""The routes whose requests get an answer length, by how their path ends, and the fields that
name one there (the first is the one filled in)."""
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
)
"""Headers that describe one connection, not the message: each side of the front sets its own."""
OWN_HEADERS = HOP_BY_HOP | {"content-length", "expect"}
"""Headers of a request that the front sets itself for the runtime (it answers `Expect` itself)."""
RUNTIME_SILENCE_S = 600.0
"""How long the runtime may say nothing before its request is given up: a long prompt on a slow
CPU takes minutes before the first word."""
RESTART_WAIT_S = 10.0
"""How long a request waits for a runtime that is starting or restarting (a catalog retry restarts
it, in about a second) before it is refused."""
CLIENT_IDLE_S = 300.0
"""How long a client's idle connection is kept open."""
PIECE_BYTES = 65536
SHUTDOWN_ROUTE = "/shutdown"
"""The runtime's web service stops for a request here from anyone (a form on any web page could
post it): the front does not pass it on."""

AnswerRoom = Callable[[str], "int | None"]
"""The answer length to fill in for a model id, or None to leave the request as it is."""


class Upstream:
    """Where the runtime's web service listens: it moves to a new free port at every (re)start."""

    def __init__(self) -> None:
        self._address: tuple[str, int] | None = None
        self._changed = threading.Condition()

    def set(self, address: tuple[str, int] | None) -> None:
        """The runtime listens at `address` now; None while it is stopped."""
        with self._changed:
            self._address = address
            self._changed.notify_all()

    def wait(self, timeout_s: float) -> tuple[str, int] | None:
        """The runtime's address, waiting up to `timeout_s` for one that is (re)starting."""
        with self._changed:
            self._changed.wait_for(lambda: self._address is not None, timeout_s)
            return self._address


def answer_room(context_length: int | None) -> int | None:
    """Half the context when the runtime's own 2048 tokens would leave the prompt less than that
    (or no room at all); None (the runtime's default) for larger models, and when not known."""
    if not context_length or context_length >= 2 * RUNTIME_ANSWER_ROOM:
        return None
    return max(1, context_length // 2)


def with_answer_room(path: str, body: bytes, room_for: AnswerRoom) -> bytes:
    """`body` with an answer length when it is a generation request that names none and its model
    needs one (`room_for`); otherwise `body` itself, byte for byte."""
    route = urlsplit(path).path.rstrip("/")
    fields = next((names for end, names in ANSWER_LENGTH_FIELDS.items() if route.endswith(end)), None)
    if fields is None:
        return body
    try:
        request = json.loads(body)
    except ValueError:
        return body  # the runtime says what is wrong with it
    if not isinstance(request, dict) or not isinstance(request.get("model"), str):
        return body
    if any(request.get(name) is not None for name in fields):
        return body
    room = room_for(request["model"])
    if room is None:
        return body
    return json.dumps({**request, fields[0]: room}, ensure_ascii=False).encode()


def serve_front(port: int, upstream: Upstream, room_for: AnswerRoom) -> LoopbackHTTPServer:
    """Serve the front on 127.0.0.1:`port`, or on a free port when that one is taken (0: always),
    in a thread."""
    return serve_http(port, _handler_for(upstream, room_for), "front")


def _handler_for(upstream: Upstream, room_for: AnswerRoom) -> type[BaseHTTPRequestHandler]:
    class Relay(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = CLIENT_IDLE_S

        def do_GET(self) -> None:
            self._relay()

        do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET  # noqa: N815

        def _relay(self) -> None:
            if urlsplit(self.path).path.rstrip("/") == SHUTDOWN_ROUTE:
                self.close_connection = True
                self._fail(HTTPStatus.FORBIDDEN, "The model runtime is stopped from Foundry Desk, not here.")
                return
            try:
                body = self._read_body()
            except ValueError:  # a length or chunk size that is not a number
                self.close_connection = True
                self._fail(HTTPStatus.BAD_REQUEST, "The request's body is malformed.")
                return
            if self.command == "POST":
                body = with_answer_room(self.path, body, room_for)
            address = upstream.wait(RESTART_WAIT_S)
            if address is None:
                self._fail(HTTPStatus.SERVICE_UNAVAILABLE, "The model runtime is not running now.")
                return
            runtime = http.client.HTTPConnection(*address, timeout=RUNTIME_SILENCE_S)
            try:
                try:
                    runtime.request(self.command, self.path, body=body or None, headers=self._headers(body))
                    response = runtime.getresponse()
                except OSError as error:
                    self._fail(HTTPStatus.BAD_GATEWAY, f"The model runtime did not answer: {error}")
                    return
                self._pass_on(response)
            except OSError:  # the client hung up, or the runtime went silent: end both
                self.close_connection = True
            finally:
                runtime.close()

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                return self._read_chunks()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _read_chunks(self) -> bytes:
            pieces = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                pieces.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers
                pass
            return b"".join(pieces)

        def _headers(self, body: bytes) -> dict[str, str]:
            headers = {name: value for name, value in self.headers.items() if name.lower() not in OWN_HEADERS}
            if body or self.command in ("POST", "PUT", "PATCH"):
                headers["Content-Length"] = str(len(body))
            return headers

        def _pass_on(self, response: http.client.HTTPResponse) -> None:
            """Status, headers and body as the runtime sent them; a body of unknown length is sent
            in chunks as it comes (an answer streams), one of known length as it is."""
            self.send_response_only(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            bodiless = self.command == "HEAD" or response.status in (204, 304) or response.status < 200
            streamed = not bodiless and response.length is None
            if streamed:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if bodiless:
                return
            while piece := response.read1(PIECE_BYTES):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if streamed else piece)
                self.wfile.flush()
            if streamed:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _fail(self, status: HTTPStatus, message: str) -> None:
            """An error in the OpenAI shape, which every client shows."""
            send_json(self, status, {"error": {"message": message, "type": "runtime_unavailable"}})

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Relay
