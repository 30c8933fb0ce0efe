"""Every Chainlit internal the chat relies on, beyond Chainlit's documented API, behind one door.

The rest of the chat uses only Chainlit's documented API (`cl.Message`, `cl.Action`,
`cl.user_session`, `cl.ChatSettings`, the decorators, `chainlit.input_widget`, `ThreadDict`);
what it needs of Chainlit's insides it asks of this module, in words of its own. `INTERNALS`
names each internal used here, and `tests/test_chat.py::test_the_chainlit_internals_the_chat_uses`
checks each, failing with the name of the one a Chainlit release changed. They are Chainlit
2.12's, the minor version pyproject.toml pins.

Importing this module imports no Chainlit: Chainlit reads (and writes) its configuration in its
app root when it is first imported, which the chat server prepares first (`config_text`), and the
history's tables are made before (`HISTORY_SCHEMA`). Each function imports what it uses.

Why each is used:

- Deferred imports (`UNUSED_IMPORTS`): the modules Chainlit imports but the chat never uses (over
  half of the chat server's start); which names Chainlit takes from each is Chainlit's inside.
- The server: our setup view's routes go ahead of Chainlit's route that serves its page at every
  path; Socket.IO's message limit is raised for the longest message the chat takes; a page that
  says how to build ours replaces Chainlit's page renderer when ours is not built.
- Sign-in: the page comes signed in, through Chainlit's own `_authenticate_user`.
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
- The history: the tables Chainlit's SQLAlchemy data layer writes (it makes none), its
  `execute_sql` (where writes wait for each other), and its answer for a chat that is not there.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from desktop.chat import deferred

if TYPE_CHECKING:
    import chainlit as cl
    from chainlit.data.base import BaseDataLayer
    from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
    from chainlit.session import WebsocketSession
    from fastapi import FastAPI
    from starlette.requests import Request
    from starlette.routing import BaseRoute

log = logging.getLogger(__name__)

Handler = Callable[..., Coroutine[Any, Any, Any]]
DataLayer: TypeAlias = "BaseDataLayer"
"""Chainlit's data layer, for annotations (importing it would import Chainlit)."""

INTERNALS = (
    "deferred imports: chainlit.server imports with UNUSED_IMPORTS' stand-ins",
    "config.toml: project.allow_origins, UI.custom_build",
    "chainlit.server.app.router.routes (its page's route last)",
    "chainlit.server.sio.eio.max_http_buffer_size",
    "chainlit.server.get_html_template(root_path)",
    "config.run.host/port/headless",
    "chainlit.auth.ensure_jwt_secret()",
    "chainlit.markdown.init_markdown(config.root)",
    "chainlit.server._authenticate_user(request, user) -> Response",
    "config.code.header_auth_callback",
    "chainlit.auth.cookie.get_token_from_cookies(cookies)",
    "wrap_user_function(with_task=...)",
    "config.code.on_message/on_chat_start/on_chat_resume/on_settings_update",
    "sio handler 'stop'",
    "WebsocketSession.current_task/thread_id/emit",
    "WebsocketSession.get(socket_id)",
    "chainlit.session.ws_sessions_id",
    "chainlit.context.init_ws_context(session)",
    "context.session.thread_id/current_task/chat_settings",
    "chainlit.socket.persist_user_session(thread_id, metadata), session.to_persistable()",
    "ChainlitEmitter.task_start/task_end",
    "socket events 'new_message' and 'resume_thread_error'",
    "SQLAlchemyDataLayer.execute_sql(query, parameters)",
    "SQLAlchemyDataLayer.get_thread_author raises ValueError for no such chat",
    "HISTORY_SCHEMA: the tables SQLAlchemyDataLayer writes",
    "chainlit.data.get_data_layer()",
    "chainlit.utils.utc_now()",
)
"""The internals this module relies on, each checked by the contract test under this name."""


# --- Before Chainlit is imported --------------------------------------------------------------

UNUSED_IMPORTS: dict[str, tuple[str, ...]] = {
    "traceloop.sdk": ("Traceloop",),
    "literalai.api": ("AsyncLiteralAPI", "LiteralAPI"),
    "mcp": ("ClientSession",),
    "socketio.client": ("Client",),
    "socketio.simple_client": ("SimpleClient",),
    "socketio.async_client": ("AsyncClient",),
    "socketio.async_simple_client": ("AsyncSimpleClient",),
    "engineio.client": ("Client",),
    "engineio.async_client": ("AsyncClient",),
}
"""Module → the names Chainlit's imports (and its dependencies') take from it: clients it only
uses with features this app turns off (LiteralAI's cloud and Traceloop's tracer, MCP, Socket.IO's
and Engine.IO's clients; Chainlit is only a server)."""


def defer_unused_imports() -> list[str]:
    """Put stand-ins for `UNUSED_IMPORTS` in place before Chainlit is imported (see `deferred`);
    returns which were deferred."""
    return deferred.defer(UNUSED_IMPORTS)


def config_text(template: str, origins: Sequence[str], frontend: Path) -> str:
    """Chainlit's config.toml for this run, from ours (resources/chainlit/config.toml): only pages
    from `origins` may call the server (CORS), and the page is the one in `frontend` (Chainlit's
    "custom build"), both set where the template says."""
    text = template.replace('allow_origins = ["http://127.0.0.1"]', f"allow_origins = {json.dumps(origins)}")
    return text.replace('custom_build = "frontend"', f"custom_build = {json.dumps(str(frontend))}")


HISTORY_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    "id" TEXT PRIMARY KEY,
    "identifier" TEXT NOT NULL UNIQUE,
    "metadata" TEXT NOT NULL,
    "createdAt" TEXT
);
CREATE TABLE IF NOT EXISTS threads (
    "id" TEXT PRIMARY KEY,
    "createdAt" TEXT,
    "name" TEXT,
    "userId" TEXT,
    "userIdentifier" TEXT,
    "tags" TEXT,
    "metadata" TEXT,
    FOREIGN KEY ("userId") REFERENCES users("id") ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS steps (
    "id" TEXT PRIMARY KEY,
    "name" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "threadId" TEXT NOT NULL,
    "parentId" TEXT,
    "streaming" BOOLEAN NOT NULL,
    "waitForAnswer" BOOLEAN,
    "isError" BOOLEAN,
    "metadata" TEXT,
    "tags" TEXT,
    "input" TEXT,
    "output" TEXT,
    "createdAt" TEXT,
    "command" TEXT,
    "modes" TEXT,
    "start" TEXT,
    "end" TEXT,
    "generation" TEXT,
    "showInput" TEXT,
    "language" TEXT,
    "indent" INT,
    "defaultOpen" BOOLEAN,
    "autoCollapse" BOOLEAN,
    FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS elements (
    "id" TEXT PRIMARY KEY,
    "threadId" TEXT,
    "type" TEXT,
    "url" TEXT,
    "chainlitKey" TEXT,
    "name" TEXT NOT NULL,
    "display" TEXT,
    "objectKey" TEXT,
    "size" TEXT,
    "page" INT,
    "language" TEXT,
    "forId" TEXT,
    "mime" TEXT,
    "props" TEXT,
    "autoPlay" BOOLEAN,
    "playerConfig" TEXT,
    FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS feedbacks (
    "id" TEXT PRIMARY KEY,
    "forId" TEXT NOT NULL,
    "threadId" TEXT NOT NULL,
    "value" INT NOT NULL,
    "comment" TEXT,
    FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE
);
"""
"""The history's tables: Chainlit's SQLAlchemy data layer makes none. Columns are those it writes
in Chainlit 2.12 (JSON values are stored as text)."""


# --- The server ---------------------------------------------------------------------------------


def server_app() -> FastAPI:
    """Chainlit's web app (importing it starts Chainlit: its configuration is read)."""
    from chainlit.server import app

    return app


def limit_socket_messages(max_bytes: int) -> None:
    """The longest message Socket.IO takes from the page (at its default, 1,000,000, a longer
    one closed the page's connection and was lost without a word)."""
    from chainlit.server import sio

    sio.eio.max_http_buffer_size = max_bytes


def serve_first(routes: Sequence[BaseRoute]) -> None:
    """Serve `routes` ahead of Chainlit's: its last route serves its page at every path a GET
    asks for."""
    from chainlit.server import app

    app.router.routes[0:0] = routes


def replace_page(render: Callable[[str], str]) -> None:
    """Serve `render(root_path)` where Chainlit serves its page (ours, or Chainlit's)."""
    import chainlit.server

    chainlit.server.get_html_template = render


def listen_headless(host: str, port: int) -> None:
    """Where Chainlit says it listens, and that it opens no browser."""
    from chainlit.config import config

    config.run.host = host
    config.run.port = port
    config.run.headless = True


def finish_start() -> None:
    """What Chainlit's own `run` does before serving: checks the sign-in secret is set, and
    reads chainlit.md (the page's readme) from the app root."""
    from chainlit.auth import ensure_jwt_secret
    from chainlit.config import config
    from chainlit.markdown import init_markdown

    ensure_jwt_secret()  # type: ignore[no-untyped-call]
    init_markdown(config.root)


# --- Sign-in ------------------------------------------------------------------------------------


def sign_in_token(cookies: dict[str, str]) -> str | None:
    """The sign-in token among a request's cookies (Chainlit splits a long one in chunks)."""
    from chainlit.auth.cookie import get_token_from_cookies

    return get_token_from_cookies(cookies)


def header_sign_in() -> Callable[[Request], Awaitable[list[tuple[bytes, bytes]]]]:
    """Sign a request's user in with Chainlit's header-auth callback and its own
    `_authenticate_user` (which stores the user and makes the token), keeping only the
    Set-Cookie headers of its response. Call once the chat's handlers are installed."""
    from chainlit.config import config
    from chainlit.server import _authenticate_user

    authenticate = _authenticate_user
    callback: Any = config.code.header_auth_callback

    async def sign_in(request: Request) -> list[tuple[bytes, bytes]]:
        response = await authenticate(request, await callback(request.headers))
        return [(name, value) for name, value in response.raw_headers if name.lower() == b"set-cookie"]

    return sign_in


# --- Handlers -----------------------------------------------------------------------------------


def install_handlers(
    *, on_message: Handler, on_chat_start: Handler, on_chat_resume: Handler, on_settings_update: Handler
) -> None:
    """Chainlit's handlers, none of which tells the page an answer is running: only a message
    does (Chainlit's own `process_message` says so around `on_message`), and our `run_answer`.
    Not `cl.on_message`, which wraps each answer in a "run" step: one more message to the page
    and one more write to the history before the model is asked; this page shows no runs."""
    from chainlit.config import config
    from chainlit.server import sio
    from chainlit.utils import wrap_user_function

    config.code.on_message = wrap_user_function(on_message)
    config.code.on_chat_start = wrap_user_function(on_chat_start)
    config.code.on_chat_resume = wrap_user_function(on_chat_resume)
    config.code.on_settings_update = wrap_user_function(on_settings_update)
    sio.on("stop")(_stop)


async def _stop(sid: str) -> None:
    """Stop the session's answer; the answer itself says it was stopped."""
    from chainlit.context import init_ws_context
    from chainlit.session import WebsocketSession

    session = WebsocketSession.get(sid)
    if session is not None and session.current_task is not None:
        init_ws_context(session)
        session.current_task.cancel()


# --- Sessions -----------------------------------------------------------------------------------


def answer_running() -> bool:
    """Whether the current session is making an answer now."""
    from chainlit.context import context

    task = context.session.current_task
    return task is not None and not task.done()


def current_thread() -> str:
    """The id of the chat the current session shows (a new chat's id before it is stored)."""
    from chainlit.context import context

    return str(context.session.thread_id)


def saved_chat_settings() -> dict[str, Any]:
    """The settings stored with the chat the current session resumes (Chainlit restores them
    before `on_chat_resume` runs); empty if none."""
    from chainlit.context import context

    return context.session.chat_settings or {}


async def keep_chat_settings() -> None:
    """Save the current chat's settings with it now. Chainlit saves them when the page's
    connection closes, and a page that comes back to the chat at once (New chat, then the chat)
    could read the chat before that save, and lose them."""
    from chainlit.context import context
    from chainlit.socket import persist_user_session

    session = context.session
    if session.thread_id and session.has_first_interaction:
        await persist_user_session(session.thread_id, session.to_persistable())


def sessions_on(thread_id: str) -> list[WebsocketSession]:
    """The sessions showing a chat (each tab on it)."""
    from chainlit.session import ws_sessions_id

    return [session for session in list(ws_sessions_id.values()) if session.thread_id == thread_id]


async def show_in_other_tabs(message: cl.Message) -> None:
    """Show `message` (new or changed) in every other session showing its chat."""
    from chainlit.context import context

    await _tell_sessions(message.thread_id, "new_message", message.to_dict(), but=context.session)


async def turn_away(thread_id: str, reason: str) -> None:
    """Tell every session showing a chat that it cannot show it any more: the page moves to a
    new chat (as when Chainlit cannot resume one)."""
    await _tell_sessions(thread_id, "resume_thread_error", reason)


async def _tell_sessions(thread_id: str, event: str, data: Any, but: object = None) -> None:
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
    from chainlit.context import context

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


# --- The history --------------------------------------------------------------------------------


class HistoryWrites(Protocol):
    """What the chat decides about the history's writes (`store.ChatStore`)."""

    writing: asyncio.Lock
    """Held by each write (not by reads), so writes go one at a time."""

    async def before_step(self, thread_id: str | None, user_message: bool) -> bool:
        """A step (a message) is about to be written: wait if need be; whether to write it."""
        ...

    async def before_thread_update(self, thread_id: str) -> bool:
        """A chat is about to be written: wait if need be; whether to write it."""
        ...

    async def before_delete(self, thread_id: str) -> None:
        """A chat is about to be deleted."""
        ...


def history_layer(database_url: str, writes: HistoryWrites) -> SQLAlchemyDataLayer:
    """Chainlit's SQLAlchemy data layer on `database_url`, whose writes `writes` decides on.
    A chat that is not there has no owner ("", which Chainlit answers with 404; its own data
    layer raises, a 500)."""
    from chainlit.data.sql_alchemy import SQLAlchemyDataLayer

    class HistoryLayer(SQLAlchemyDataLayer):
        async def execute_sql(self, query: str, parameters: dict[str, Any]) -> Any:
            if query.lstrip().upper().startswith("SELECT"):
                return await super().execute_sql(query, parameters)
            async with writes.writing:
                return await super().execute_sql(query, parameters)

        async def create_step(self, step_dict: Any) -> None:
            thread_id = step_dict.get("threadId")
            if await writes.before_step(thread_id, step_dict.get("type") == "user_message"):
                await super().create_step(step_dict)

        async def update_thread(self, thread_id: str, *args: Any, **kwargs: Any) -> None:
            if await writes.before_thread_update(thread_id):
                await super().update_thread(thread_id, *args, **kwargs)

        async def delete_thread(self, thread_id: str) -> None:
            await writes.before_delete(thread_id)
            await super().delete_thread(thread_id)

        async def get_thread_author(self, thread_id: str) -> str:
            try:
                return await super().get_thread_author(thread_id)
            except ValueError:
                return ""

    return HistoryLayer(conninfo=database_url)


def history() -> DataLayer | None:
    """The data layer the chat's history is in (None: none is set)."""
    from chainlit.data import get_data_layer

    layer: DataLayer | None = get_data_layer()  # type: ignore[no-untyped-call]
    return layer


def timestamp() -> str:
    """Now, as Chainlit stamps a message it sends (`created_at`)."""
    from chainlit.utils import utc_now

    stamp: str = utc_now()  # type: ignore[no-untyped-call]
    return stamp
