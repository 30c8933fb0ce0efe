"""Streaming an answer into the page only as fast as the page paints it.

Chainlit's page re-renders the whole conversation, markdown included, at every update it gets,
so a model faster than the page would leave it seconds behind (one update per token did: 13 s
behind a 1,000-token answer). So the page reports each answer it has painted
(`resources/chainlit/public/paint-reports.js` posts to `PAINTED_PATH`), and the next piece of
the answer is sent only after that report and at least a frame after the last piece: a fast
laptop gets smooth 25 updates per second, a slow one as many as it can paint, and neither falls
behind. A hidden window paints nothing, so it gets an update every `PAINT_WAIT_S`; a client
without the script, every `SILENT_FRAME_S`. What was shown is written to the history every
`PERSIST_S`, so a crash of the chat server loses at most that much.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Chainlit reads its config when imported: only the chat server imports it
    from chainlit.message import Message

log = logging.getLogger(__name__)

PAINTED_PATH = "/foundry-desk/painted"
"""Where the page reports a painted answer (the message id as the body)."""
PAINT_WAIT_S = 1.0
"""The longest a piece waits for the page to report the last one painted (a hidden window
paints nothing: it gets one update per second)."""
FIRST_REPORT_WAIT_S = 0.5
"""How long to wait for a session's first report before taking it for a page that never reports
(a client without the script); such a session gets an update every `SILENT_FRAME_S`."""
SILENT_FRAME_S = 0.25
PERSIST_S = 1.0
"""How often the partial answer is written to the history while it streams."""


class PaintReports:
    """The page's reports of painted answers, for the answers being streamed, and which browser
    sessions are known to report (or known not to)."""

    def __init__(self) -> None:
        self._waiting: dict[str, tuple[str, asyncio.Event]] = {}
        self._sessions: dict[str, bool] = {}

    def watch(self, message_id: str, session_id: str) -> asyncio.Event:
        """An event set whenever the page reports `message_id` painted (clear it to wait again)."""
        return self._waiting.setdefault(message_id, (session_id, asyncio.Event()))[1]

    def forget(self, message_id: str) -> None:
        self._waiting.pop(message_id, None)

    def report(self, message_id: str) -> None:
        session_id, event = self._waiting.get(message_id, ("", None))
        if event is not None:
            self._sessions[session_id] = True
            event.set()

    def reporting(self, session_id: str) -> bool | None:
        """Whether the session's page reports paints; None while not known yet."""
        return self._sessions.get(session_id)

    def silent(self, session_id: str) -> None:
        self._sessions.setdefault(session_id, False)


class StreamPainter:
    """Sends streamed text to the page when the page is ready for it; keeps the history up to date.

    The first piece goes at once: it is what the user waits for. On leaving, what is still
    pending is added to the message without being sent; `end` sends the whole message once.
    """

    def __init__(self, message: Message, session_id: str, frame_s: float, reports: PaintReports) -> None:
        self.message = message
        self.session_id = session_id
        self.frame_s = frame_s
        self.reports = reports
        self.pending = ""
        self.sent_any = False
        self.sent_at = 0.0
        self.last_persist = time.monotonic()
        self._painted = reports.watch(message.id, session_id)
        self._task: asyncio.Task[None] | None = None
        self._saving: asyncio.Task[None] | None = None

    async def __aenter__(self) -> StreamPainter:
        self._task = asyncio.create_task(self._frames())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.message.content += self.pending
        self.pending = ""
        if self._saving is not None:
            # Let a save under way finish, so that it cannot land after (and undo) the final one.
            await asyncio.shield(self._saving)

    async def add(self, text: str) -> None:
        self.pending += text
        if not self.sent_any or self.frame_s <= 0:
            await self.flush()

    async def flush(self) -> None:
        if not self.pending:
            return
        text, self.pending = self.pending, ""
        self.sent_any = True
        self._painted.clear()
        self.sent_at = time.monotonic()
        await self.message.stream_token(text)

    async def end(self, wait_for_paint: bool) -> None:
        """Send the whole message, which also ends its stream in the page (or sends it, if no
        token ever came). With `wait_for_paint`, the page first paints what it has and then this
        waits for it to paint the end: what Chainlit sends after an answer (the end of its run)
        would otherwise be rendered before the page gets to paint the answer's last words."""
        try:
            if wait_for_paint and self.sent_any:
                await self.page_ready()
            self._painted.clear()
            await (self.message.update() if self.sent_any else self.message.send())
            if wait_for_paint:
                await self.page_ready()
        finally:
            self.reports.forget(self.message.id)

    async def page_ready(self) -> None:
        """Wait (bounded) until the page has painted the last thing it was sent; a page that
        does not report is not waited for."""
        reporting = self.reports.reporting(self.session_id)
        if reporting is False:
            return
        try:
            await asyncio.wait_for(self._painted.wait(), PAINT_WAIT_S if reporting else FIRST_REPORT_WAIT_S)
        except TimeoutError:
            self.reports.silent(self.session_id)

    async def _frames(self) -> None:
        while True:
            if self.frame_s <= 0:  # one update per token: sent by `add`
                await asyncio.sleep(PERSIST_S)
            else:
                await self.page_ready()
                frame_s = self.frame_s if self.reports.reporting(self.session_id) else SILENT_FRAME_S
                wait = self.sent_at + frame_s - time.monotonic() if self.pending else frame_s
                await asyncio.sleep(max(wait, 0.0))
                await self.flush()
            self._persist_now_and_then()

    def _persist_now_and_then(self) -> None:
        saving = self._saving is not None and not self._saving.done()
        if not saving and time.monotonic() - self.last_persist > PERSIST_S:
            self.last_persist = time.monotonic()
            self._saving = asyncio.create_task(persist(self.message))


async def persist(message: Message) -> None:
    """Write the message as it is now to the history (without ending its stream in the page)."""
    from chainlit.data import get_data_layer

    data_layer = get_data_layer()
    if data_layer is not None:
        try:
            await data_layer.update_step(message.to_dict())
        except Exception:
            log.exception("could not save the partial answer")
