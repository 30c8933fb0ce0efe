"""The Chainlit 2.12 internals the chat's answers rely on, beyond Chainlit's public API.

Each is named by `tests/test_chat.py::test_the_chainlit_internals_the_chat_uses`, which fails
naming the one a Chainlit release changed:

- `config.code.on_*` set through `wrap_user_function` without a task: Chainlit's decorators wrap
  a chat's start, its resumption and a settings change in `task_start`/`task_end`, which is the
  page's "an answer is running" signal. A settings change during an answer ended it in the page
  (its Stop button went away while the model went on), and a new chat's start said an answer was
  running, so Enter right after "New chat" was ignored.
- the socket's `stop` handler, replaced: Chainlit's posts "Task manually stopped." beside the
  answer's own "(stopped)".
- `WebsocketSession`'s registry and `current_task`: the sessions showing a chat (another tab on
  it is told of new messages; deleting it stops its answer), and whether an answer is running.
- `context.emitter.task_start`/`task_end`: Retry and Continue run as answers (Stop stops them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from chainlit.config import config
from chainlit.context import context, init_ws_context
from chainlit.server import sio
from chainlit.session import WebsocketSession, ws_sessions_id
from chainlit.utils import wrap_user_function

log = logging.getLogger(__name__)

Handler = Callable[..., Coroutine[Any, Any, Any]]


def install_handlers(
    *, on_message: Handler, on_chat_start: Handler, on_chat_resume: Handler, on_settings_update: Handler
) -> None:
    """Chainlit's handlers, none of which tells the page an answer is running: only a message
    does (Chainlit's own `process_message` says so around `on_message`), and our `run_answer`.
    Not `cl.on_message`, which wraps each answer in a "run" step: one more message to the page
    and one more write to the history before the model is asked; this page shows no runs."""
    config.code.on_message = wrap_user_function(on_message)
    config.code.on_chat_start = wrap_user_function(on_chat_start)
    config.code.on_chat_resume = wrap_user_function(on_chat_resume)
    config.code.on_settings_update = wrap_user_function(on_settings_update)
    sio.on("stop")(_stop)


async def _stop(sid: str) -> None:
    """Stop the session's answer; the answer itself says it was stopped."""
    session = WebsocketSession.get(sid)
    if session is not None and session.current_task is not None:
        init_ws_context(session)
        session.current_task.cancel()


def answer_running() -> bool:
    """Whether the current session is making an answer now."""
    task = context.session.current_task
    return task is not None and not task.done()


def current_thread() -> str:
    """The id of the chat the current session shows (a new chat's id before it is stored)."""
    return str(context.session.thread_id)


def sessions_on(thread_id: str) -> list[WebsocketSession]:
    return [session for session in list(ws_sessions_id.values()) if session.thread_id == thread_id]


async def tell_others(thread_id: str, event: str, data: Any) -> None:
    """Send an event to every other session showing the same chat (another tab on it)."""
    await tell_sessions(thread_id, event, data, but=context.session)


async def tell_sessions(thread_id: str, event: str, data: Any, but: object = None) -> None:
    """Send an event to every session showing a chat (but one)."""
    for session in sessions_on(thread_id):
        if session is not but:
            try:
                await session.emit(event, data)  # type: ignore[misc]  # typed as returning None
            except Exception:  # a tab that just went away
                log.debug("could not tell session %s", session.id, exc_info=True)


async def stop_answers(thread_id: str, timeout_s: float) -> None:
    """Stop every answer being made in a chat and wait (up to `timeout_s`) until they end."""
    tasks = [
        task
        for session in sessions_on(thread_id)
        if (task := session.current_task) is not None
        and not task.done()
        and task is not asyncio.current_task()
    ]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=timeout_s)


def run_answer(work: Coroutine[Any, Any, Any]) -> None:
    """Run `work` as the session's answer, as Chainlit runs a message: the page shows it as
    running, and Stop cancels it."""
    emitter, session = context.emitter, context.session

    async def run() -> None:
        await emitter.task_start()  # type: ignore[no-untyped-call]
        try:
            await work
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("an answer failed")
        finally:
            await emitter.task_end()  # type: ignore[no-untyped-call]

    session.current_task = asyncio.create_task(run())
