"""The local user arrives signed in: the chat page comes with its sign-in cookie.

A header-auth user is signed in by a request of the page's (Chainlit's own page went through
its /login page and loaded twice: about 1.4 s of blank window at the app's first start; ours
would need one more round trip before it could connect). This middleware adds the sign-in
cookie to the page itself when the browser has none, made by Chainlit's own sign-in (the user is
stored, the token is Chainlit's), so the page starts signed in; it signs in again by itself only
if the cookie is gone. Only requests that passed the run's secret gate (`gate`) get this far.
Only the chat server imports this module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from desktop.chat import chainlit_compat

SignIn = Callable[[Request], Awaitable[list[tuple[bytes, bytes]]]]
"""Signs the local user in for a request; returns the Set-Cookie headers
(`chainlit_compat.header_sign_in`)."""


class SignedInPage:
    """ASGI middleware: an HTML page sent to a browser without a session carries a new one."""

    def __init__(self, app: ASGIApp, sign_in: SignIn) -> None:
        self.app = app
        self.sign_in = sign_in

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if chainlit_compat.sign_in_token(dict(request.cookies)):
            await self.app(scope, receive, send)
            return

        async def send_signed_in(message: Message) -> None:
            if message["type"] == "http.response.start" and _is_html(message["headers"]):
                message = {**message, "headers": [*message["headers"], *await self.sign_in(request)]}
            await send(message)

        await self.app(scope, receive, send_signed_in)


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name.lower() == b"content-type" and value.startswith(b"text/html") for name, value in headers)
