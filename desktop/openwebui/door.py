"""One click to Open WebUI, signed in: a small page of the app's on 127.0.0.1.

Open WebUI's sign-in page (`/auth`) takes a session from a cookie named `token` that its script
can read: that is how its own OAuth sign-in hands a session over (0.12.4: utils/oauth.py sets
`token` with httponly=False and redirects to `/auth`; the page reads `document.cookie`, checks
the token with `GET /api/v1/auths/`, and keeps it in its localStorage). A cookie belongs to a
host, not to a port, so a page of ours on 127.0.0.1 can set it for Open WebUI on 127.0.0.1.

So a link to this page signs in with the app's account at the moment it is opened, sets that
cookie and sends the browser on to Open WebUI's `/auth`. The cookie lasts a minute, and Open
WebUI replaces it with its own HttpOnly one as soon as its page has checked it. The link opens
it once: it carries a token signed with the run's secret (as the chat's links do), which no web
page can make, and a page that reaches this server by DNS rebinding is refused by its Host header.
"""

from __future__ import annotations

import html
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from desktop.errors import FoundryDeskError
from desktop.loopback import addressed_to_loopback
from desktop.openwebui.account import Session
from desktop.runsecret import TOKEN_PARAM, OneTimeLinks, RunSecret

PATH = "/open-webui"
HANDOVER_S = 60
"""How long the handed-over session waits in the cookie for Open WebUI's page to take it."""
USE_THE_TRAY = (
    "Open it from the Foundry Desk icon in the tray (Open WebUI ▸ Open), or get a new link with "
    "`foundry-desk --status`."
)


class SignInError(FoundryDeskError, RuntimeError):
    """The app could not sign in to Open WebUI; the message says why and what to do."""


SignIn = Callable[[], tuple[str, Session]]
"""Signs in now; returns Open WebUI's address and the session, or raises `SignInError`."""


def link(door_url: str, secret: RunSecret) -> str:
    """A new link that opens Open WebUI signed in, once."""
    return f"{door_url}{PATH}?{TOKEN_PARAM}={secret.link_token()}"


class SignInDoor:
    """The page's server, on its own thread, on a port the system picks."""

    def __init__(self, secret: RunSecret, sign_in: SignIn) -> None:
        self.secret = secret
        self.sign_in = sign_in
        self.links = OneTimeLinks(secret)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="door", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def link(self) -> str:
        return link(self.url, self.secret)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(door: SignInDoor) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            token = urllib.parse.parse_qs(parts.query).get(TOKEN_PARAM, [""])[0]
            if not addressed_to_loopback(self.headers.get("Host")) or parts.path != PATH:
                self._page(404, "Not here.")
            elif not door.links.redeem(token):
                self._page(403, "This link has been used already, or is from an earlier run. " + USE_THE_TRAY)
            else:
                self._sign_in()

        def _sign_in(self) -> None:
            try:
                url, session = door.sign_in()
            except SignInError as error:
                self._page(503, f"Foundry Desk could not sign you in to Open WebUI: {error}")
                return
            cookie = f"token={session.token}; Path=/; SameSite=Lax; Max-Age={HANDOVER_S}"
            self.send_response(303)
            self.send_header("Location", f"{url}/auth")
            self.send_header("Set-Cookie", cookie)
            self._common_headers()
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _page(self, status: int, text: str) -> None:
            body = (
                "<!doctype html><meta charset='utf-8'><title>Open WebUI — Foundry Desk</title>"
                f"<p style='font:16px system-ui;margin:3em auto;max-width:36em'>{html.escape(text)}</p>"
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self._common_headers()
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _common_headers(self) -> None:
            self.send_header("Cache-Control", "no-store")
            self.send_header("Referrer-Policy", "no-referrer")

        def log_message(self, *args: object) -> None:
            pass

    return Handler
