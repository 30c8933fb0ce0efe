"""Only the user reaches the chat: every request must show the run's secret (`runsecret`).

The chat signs its one local user in without a password, so without this gate any program on
the machine, of any account, could read every chat over HTTP. The gate lets a request through
when it carries the run's session cookie or `Authorization: Bearer <secret>`; a GET with a link
token (`?token=`, one-time, made in this run, after this server started) gets the cookie
(HttpOnly, SameSite=Strict) and is sent on to the same address without the token. Anything else:
a short page that says where to open the chat (a browser asking for a page), 401 (the API), or a
refused handshake (Socket.IO's WebSocket). `/health` stays open: it holds nothing.
"""

from __future__ import annotations

import html
import json
from urllib.parse import urlencode

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from desktop.runsecret import TOKEN_PARAM, OneTimeLinks, RunSecret

COOKIE_NAME = "foundry_desk_session"
PUBLIC_PATHS = frozenset({"/health"})
OPEN_FROM_TRAY = (
    "Open the chat from the Foundry Desk icon in the tray (or the menu bar), or with the address "
    "`foundry-desk --headless --chat` printed."
)


class RunSecretGate:
    """ASGI middleware: requests without the run's secret go no further."""

    def __init__(self, app: ASGIApp, secret: RunSecret) -> None:
        self.app = app
        self.secret = secret
        self.links = OneTimeLinks(secret)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        if self._admits(connection):
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # before accept: HTTP 403
        elif TOKEN_PARAM in connection.query_params and scope["method"] == "GET":
            await self._redeem(connection, send)
        elif scope["method"] == "GET" and _wants_page(connection):
            await _respond(send, 403, "text/html; charset=utf-8", _page(OPEN_FROM_TRAY))
        else:
            body = json.dumps({"error": "This needs the run's secret. " + OPEN_FROM_TRAY})
            await _respond(send, 401, "application/json", body)

    def _admits(self, connection: HTTPConnection) -> bool:
        return self.secret.accepts_cookie(connection.cookies.get(COOKIE_NAME)) or (
            self.secret.accepts_authorization(connection.headers.get("authorization"))
        )

    async def _redeem(self, connection: HTTPConnection, send: Send) -> None:
        """Exchange a link's one-time token for the session cookie, and go on without it."""
        if not self.links.redeem(connection.query_params[TOKEN_PARAM]):
            reason = "This link has been used already, or is from an earlier run. " + OPEN_FROM_TRAY
            await _respond(send, 403, "text/html; charset=utf-8", _page(reason))
            return
        query = urlencode([(k, v) for k, v in connection.query_params.multi_items() if k != TOKEN_PARAM])
        location = connection.url.path + (f"?{query}" if query else "")
        cookie = f"{COOKIE_NAME}={self.secret.session_cookie}; Path=/; HttpOnly; SameSite=Strict"
        headers = [(b"location", location.encode()), (b"set-cookie", cookie.encode())]
        await _respond(send, 303, "text/plain", "", headers)


def _wants_page(connection: HTTPConnection) -> bool:
    return "text/html" in connection.headers.get("accept", "")


def _page(message: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Foundry Desk</title></head>"
        "<body style='font-family: system-ui, sans-serif; margin: 3rem; max-width: 40rem'>"
        f"<h1>This chat is private</h1><p>{html.escape(message)}</p></body></html>"
    )


async def _respond(
    send: Send, status: int, content_type: str, body: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    data = body.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(data)).encode()),
                (b"cache-control", b"no-store"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
