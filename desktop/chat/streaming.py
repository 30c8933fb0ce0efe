"""Streaming an answer into the page, and keeping what was shown in the history.

The first piece of text goes to the page the moment the model gives it; after it, what arrives
within `PACE_S` (two frames of the page) goes as one message, as the answer is read
(`desktop.completions`). The chat page (`resources/chainlit/frontend`) redraws once per animation
frame anyway, and a Socket.IO message per token was most of the chat server's CPU on a fast model
(two, when comparing). What was shown is written to the history every
`PERSIST_S` while the answer streams, so a crash of the chat server loses at most that much.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from desktop.chat import chainlit_compat
from desktop.completions import PACE_S

if TYPE_CHECKING:  # Chainlit reads its config when imported: only the chat server imports it
    import chainlit as cl

log = logging.getLogger(__name__)

PERSIST_S = 1.0
"""How often the partial answer is written to the history while it streams."""


class AnswerStream:
    """Sends an answer's text to the page as it comes and saves it now and then; `end` sends
    the whole message once, which also ends its stream in the page, and stores it."""

    def __init__(self, message: cl.Message) -> None:
        self.message = message
        self.streamed = False
        self.last_persist = time.monotonic()
        self._unsent = ""
        """Text that arrived after the last message to the page (sent `PACE_S` after it came)."""
        self._sending: asyncio.Task[None] | None = None
        """Sends `_unsent` once `PACE_S` has passed (`_waiting`), then until it is sent."""
        self._waiting = False
        self._saving: asyncio.Task[None] | None = None

    async def add(self, text: str) -> None:
        if not text:
            return
        if not self.streamed:  # the first words show at once
            self.streamed = True
            await self.message.stream_token(text)
            return
        self._unsent += text
        if self._sending is None:
            self._send_soon()
        saving = self._saving is not None and not self._saving.done()
        if not saving and time.monotonic() - self.last_persist > PERSIST_S:
            self.last_persist = time.monotonic()
            self._saving = asyncio.create_task(persist(self.message))

    def _send_soon(self) -> None:
        self._waiting = True
        self._sending = asyncio.create_task(self._send_unsent())

    async def _send_unsent(self) -> None:
        await asyncio.sleep(PACE_S)
        self._waiting = False
        text, self._unsent = self._unsent, ""
        await self.message.stream_token(text)
        self._sending = None
        if self._unsent:  # what came while it was sent goes at the next pace (none after `settle`)
            self._send_soon()

    def settle(self) -> str:
        """Stop sending pieces: the text not sent yet joins the message (which `end` sends whole).
        Synchronous, so it also runs when the answer is cancelled (Stop); returns the text."""
        if self._sending is not None and self._waiting:
            self._sending.cancel()
            self._sending = None
        self.message.content += self._unsent
        self._unsent = ""
        return self.message.content

    async def end(self) -> None:
        self.settle()
        if self._sending is not None:  # a piece on its way: before the whole message, not after it
            await asyncio.shield(self._sending)
        if self._saving is not None:
            # Let a save under way finish, so that it cannot land after (and undo) the final one.
            await asyncio.shield(self._saving)
        await (self.message.update() if self.streamed else self.message.send())
        # Chainlit stores the message in a task of its own; this write is awaited, so the answer
        # is only done (and the page's Stop button gone) once what the user sees is stored.
        await persist(self.message)


async def persist(message: cl.Message) -> None:
    """Write the message as it is now to the history (a partial answer: without ending its
    stream in the page)."""
    data_layer = chainlit_compat.history()
    if data_layer is not None:
        try:
            await data_layer.update_step(message.to_dict())
        except Exception:
            log.exception("could not save the answer")
