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
from typing import Any

from chainlit.auth.cookie import get_token_from_cookies
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SignIn = Callable[[Request], Awaitable[list[tuple[bytes, bytes]]]]
"""Signs the local user in for a request; returns the Set-Cookie headers."""


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
        if get_token_from_cookies(dict(request.cookies)):
            await self.app(scope, receive, send)
            return

        async def send_signed_in(message: Message) -> None:
            if message["type"] == "http.response.start" and _is_html(message["headers"]):
                message = {**message, "headers": [*message["headers"], *await self.sign_in(request)]}
            await send(message)

        await self.app(scope, receive, send_signed_in)


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name.lower() == b"content-type" and value.startswith(b"text/html") for name, value in headers)


def chainlit_sign_in(authenticate: Callable[[Request, Any], Awaitable[Any]], callback: Any) -> SignIn:
    """Sign in with Chainlit's header-auth callback and its own `_authenticate_user` (which
    stores the user and makes the token), keeping only the cookies of its response."""

    async def sign_in(request: Request) -> list[tuple[bytes, bytes]]:
        response = await authenticate(request, await callback(request.headers))
        return [(name, value) for name, value in response.raw_headers if name.lower() == b"set-cookie"]

    return sign_in
