"""The run's secret: what proves that a caller is the user's own window, browser or tool.

Every start of the app makes a new one. It is written to `run-secret` in the state folder (0600:
the user's alone, for the user's tools) and given to the app's children in their environment
(which only the same user can read). It opens:

- the chat, in a browser: a link carries a one-time token signed with the secret
  (`link_token`), which the chat server exchanges for an HttpOnly cookie (`session_cookie`);
- the runtime host's control API and the chat server, for programs: `Authorization: Bearer`.

Tokens and cookies are HMACs of the secret, so the chat server needs no store of them, and a
cookie or a token is worth nothing after the run that made it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from desktop.files import write_text_atomic

SECRET_ENV = "FOUNDRY_DESK_RUN_SECRET"
FILE_NAME = "run-secret"
TOKEN_PARAM = "token"
"""The query parameter of a chat link that carries its one-time token."""


@dataclass(frozen=True)
class LinkToken:
    """A link token whose signature is good: when it was made, and its nonce (used once)."""

    issued_at: float
    nonce: str


class OneTimeLinks:
    """A server's redemption of link tokens: each good one once, and none made before the server
    started (which tokens were used is known only to the server that took them)."""

    def __init__(self, secret: RunSecret) -> None:
        self.secret = secret
        self.since = int(time.time() * 1000) / 1000
        """In whole milliseconds, as a token's time is: one made in the same millisecond is not older."""
        self._used: set[str] = set()
        self._lock = threading.Lock()

    def redeem(self, token: str) -> bool:
        """True the first time a good token of this run, made since the server started, is shown."""
        checked = self.secret.check_link_token(token)
        if checked is None or checked.issued_at < self.since:
            return False
        with self._lock:
            if checked.nonce in self._used:
                return False
            self._used.add(checked.nonce)
        return True


@dataclass(frozen=True)
class RunSecret:
    value: str = field(repr=False)
    """Never in a log: a repr shows `RunSecret()`."""

    @classmethod
    def new(cls) -> RunSecret:
        return cls(secrets.token_urlsafe(32))

    @classmethod
    def create(cls, state_dir: Path) -> RunSecret:
        """A new secret for this run, saved where `read` finds it."""
        return cls.new().save(state_dir)

    def save(self, state_dir: Path) -> RunSecret:
        """Write the secret for the user's tools (0600, by `mkstemp`); only once this run owns the
        state folder (a second launch must not replace the first one's)."""
        write_text_atomic(state_dir / FILE_NAME, self.value)
        return self

    @classmethod
    def read(cls, state_dir: Path) -> RunSecret | None:
        """The running app's secret, or None when no app has written one."""
        try:
            value = (state_dir / FILE_NAME).read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return cls(value) if value else None

    def discard(self, state_dir: Path) -> None:
        """At quit: the file goes, if it is still this run's (a run that ended opens nothing; a
        launch that found the app running must not take the running app's secret away)."""
        if RunSecret.read(state_dir) == self:
            (state_dir / FILE_NAME).unlink(missing_ok=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RunSecret | None:
        value = environ.get(SECRET_ENV, "")
        return cls(value) if value else None

    @property
    def env(self) -> dict[str, str]:
        """The environment that hands the secret to a child process."""
        return {SECRET_ENV: self.value}

    @functools.cached_property
    def authorization(self) -> str:
        """The Authorization header value of a program that holds the secret."""
        return f"Bearer {self.value}"

    def accepts_authorization(self, header: str | None) -> bool:
        return hmac.compare_digest((header or "").encode(), self.authorization.encode())

    @functools.cached_property
    def session_cookie(self) -> str:
        """The value of the chat's session cookie in this run (computed once: every request of
        the chat's compares with it)."""
        return self._sign("session")

    def accepts_cookie(self, value: str | None) -> bool:
        return hmac.compare_digest((value or "").encode(), self.session_cookie.encode())

    def link_token(self) -> str:
        """A new one-time token for a chat link: `<issued ms>.<nonce>.<signature>`."""
        payload = f"{int(time.time() * 1000)}.{secrets.token_urlsafe(12)}"
        return f"{payload}.{self._sign(payload)}"

    def check_link_token(self, token: str) -> LinkToken | None:
        """The token's time and nonce when this secret signed it, else None. Whether it was used
        already is the server's to know."""
        payload, _, signature = token.rpartition(".")
        issued, _, nonce = payload.partition(".")
        signed = hmac.compare_digest(signature.encode(), self._sign(payload).encode())
        if not (signed and issued.isdigit() and nonce):
            return None
        return LinkToken(int(issued) / 1000, nonce)

    def chat_link(self, base_url: str) -> str:
        """A URL that opens the chat in any browser of the user's, once."""
        return f"{base_url}/?{TOKEN_PARAM}={self.link_token()}"

    def _sign(self, message: str) -> str:
        digest = hmac.new(self.value.encode(), message.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
