"""The chat history's store: Chainlit's SQLAlchemy data layer on our SQLite file, whose writes
step aside while an answer starts. This module decides when a write goes; the data layer that
asks it is in `chainlit_compat` (`history_layer`).

Every write is a few SQLAlchemy transactions, each several hops between the event loop and
aiosqlite's thread. Chainlit writes the user's message (and a new chat's name) the moment the
answer starts, so those writes used to compete with the model request for the event loop and
the CPU, and delayed the answer's first words (measured: by about 6 ms of 40 on a 2-core
laptop). So a user's message opens a hold on its chat: writes wait until the answer's first
words are on their way (`first_words_sent`), at most `HOLD_S`, then go in the order they came.
Reads never wait. The hold is short: when a model takes longer than that to start, a few
milliseconds do not matter, and the user's message must be stored in case the server dies.

Writes also go one at a time (`writing`). Each is a transaction on a connection of its own,
and while the event loop is busy (twenty answers streaming on a 2-core laptop) one can hold
SQLite's write lock for seconds; the others gave up after SQLite's 5 s and Chainlit only logged
it: a user's message, or a whole chat, went missing from the history.

A deleted chat stays deleted: its answers are stopped first (`on_delete`), and no later write
for it is made (a running answer's last save used to bring it back, with no owner).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from desktop.chat import chainlit_compat
from desktop.chat.history import conninfo

log = logging.getLogger(__name__)

HOLD_S = 0.25
"""The longest writes wait for an answer's first words."""


class ChatStore:
    """The chat's history: Chainlit's SQLAlchemy data layer (`layer`), holding its writes while
    an answer starts (`chainlit_compat.HistoryWrites`)."""

    def __init__(self, database: Path) -> None:
        self._starting: set[str] = set()
        """Chats whose answer has not sent its first words yet."""
        self._quiet = asyncio.Event()
        self._quiet.set()
        self.writing = asyncio.Lock()
        self._deleted: set[str] = set()
        self.on_delete: Callable[[str], Awaitable[None]] | None = None
        """Called before a chat is deleted (to stop its answers)."""
        self.layer = chainlit_compat.history_layer(conninfo(database), self)
        """The data layer Chainlit reads and writes the history through."""

    def first_words_sent(self, thread_id: str) -> None:
        """The answer in `thread_id` has started (or will not): its chat's writes may go."""
        self._starting.discard(thread_id)
        if not self._starting:
            self._quiet.set()

    async def _after_first_words(self) -> None:
        if self._quiet.is_set():
            return
        try:
            await asyncio.wait_for(self._quiet.wait(), HOLD_S)
        except TimeoutError:
            log.debug("no first words after %.2f s: the history is written without waiting", HOLD_S)
            self._starting.clear()
            self._quiet.set()

    async def before_step(self, thread_id: str | None, user_message: bool) -> bool:
        """A user's message holds its chat's writes; a deleted chat's steps are not written."""
        if user_message and thread_id:
            self._starting.add(thread_id)
            self._quiet.clear()
        await self._after_first_words()
        return thread_id not in self._deleted

    async def before_thread_update(self, thread_id: str) -> bool:
        await self._after_first_words()
        return thread_id not in self._deleted

    async def before_delete(self, thread_id: str) -> None:
        self._deleted.add(thread_id)
        if self.on_delete is not None:
            await self.on_delete(thread_id)
