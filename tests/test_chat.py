"""The chat's pure parts (context fitting, routing, states) and its history database, without a browser."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from desktop.chat import deferred, trimming
from desktop.chat.endpoint import LOCAL, REMOTE, classify_task, describe_runtime, plan
from desktop.chat.history import auth_secret, conninfo, create_schema
from desktop.chat.server import (
    BUILD_COMMAND,
    frontend_dir,
    frontend_missing,
    not_built_page,
    settings_from_env,
    settings_to_env,
)
from desktop.config import Settings, SettingsError
from desktop.probe import wait_for
from desktop.runtime.status import RuntimeState, RuntimeStatus


def turns(*texts: str) -> list[trimming.Message]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)]


def test_a_short_conversation_is_sent_whole_with_the_answer_budget_shrunk_to_fit() -> None:
    fitted = trimming.fit("sys", turns("hi", "hello", "how are you?"), 512, 1024)
    assert fitted.fits and fitted.dropped == 0
    assert [m["role"] for m in fitted.messages] == ["system", "user", "assistant", "user"]
    used = sum(trimming.message_tokens(m) for m in fitted.messages)
    assert fitted.max_tokens == 512 - used


def test_a_long_conversation_drops_whole_turns_from_the_oldest_end() -> None:
    long = "x" * 600  # ~200 tokens each
    conversation = turns(long, long, long, long, "newest question")
    fitted = trimming.fit("sys", conversation, 512, 1024)
    assert fitted.fits and fitted.dropped > 0
    assert fitted.messages[0]["role"] == "system"
    assert fitted.messages[1]["role"] == "user", "a kept turn starts with the user's message"
    assert fitted.messages[-1]["content"] == "newest question"
    assert fitted.max_tokens == 256
    assert sum(trimming.message_tokens(m) for m in fitted.messages) + fitted.max_tokens <= 512


def test_a_message_too_long_on_its_own_does_not_fit() -> None:
    fitted = trimming.fit("sys", turns("y" * 3000), 512, 1024)
    assert not fitted.fits


def test_unknown_context_sends_everything() -> None:
    fitted = trimming.fit("", turns("a", "b", "c"), None, 99)
    assert fitted == trimming.Fitted(turns("a", "b", "c"), 0, 99, True)


def test_drop_oldest_turn_keeps_the_system_prompt_and_stops_at_the_newest_message() -> None:
    messages = [{"role": "system", "content": "s"}, *turns("1", "2", "3", "4", "5")]
    shorter = trimming.drop_oldest_turn(messages)
    assert shorter is not None
    remaining, dropped = shorter
    assert dropped == 2 and [m["content"] for m in remaining] == ["s", "3", "4", "5"]
    assert trimming.drop_oldest_turn([{"role": "system", "content": "s"}, *turns("only")]) is None


def test_the_endpoint_s_own_token_arithmetic_is_read() -> None:
    message = (
        "search_options.cc:108 request requires 1813 total tokens (1803 input + 10 output), which "
        "exceeds the model's maximum context length of 512 tokens"
    )
    assert trimming.is_context_error(400, message)
    assert trimming.is_context_error(None, message)  # the same, as an error event in a stream
    budget = trimming.parse_budget(message)
    assert budget == trimming.Budget(1803, 10, 512) and budget.answer_room == 512 - 1803
    assert trimming.parse_budget("Model not loaded") is None
    assert not trimming.is_context_error(400, "Model not loaded")


@pytest.mark.parametrize(
    ("status", "message", "does_not_fit"),
    [
        (400, "This model's maximum context length is 4096 tokens. However, you requested 5000", True),
        (400, "the request exceeds the available context size, try increasing it", True),
        (413, "Prompt is too long", True),
        (500, "KV cache capacity (436) must be at least local_window_size (512)", False),
        (500, "Error in the context of the generator: exceeded the maximum tokens", False),
        (400, "Invalid value for 'temperature': must be within the model's context", False),
        (404, "Model not found", False),
    ],
)
def test_only_a_refusal_that_says_the_prompt_does_not_fit_reads_as_too_long(
    status: int, message: str, does_not_fit: bool
) -> None:
    """A runtime's other errors are shown as they are, not as "your message is too long"."""
    assert trimming.is_context_error(status, message) is does_not_fit


def test_blank_and_over_long_messages_are_not_answered() -> None:
    empty = "Your message is empty: there is nothing to answer."
    assert trimming.refusal("\u200b") == trimming.refusal(" \n\u2060\ufeff ") == empty
    assert trimming.refusal("hi\u200b") is None
    assert "Shorten it" in (trimming.refusal("x" * (trimming.MAX_MESSAGE_CHARS + 1)) or "")


def test_routing_policies() -> None:
    local_only = Settings()
    assert plan(local_only, "write a python script", remote_available=True) == [LOCAL]
    first = Settings(routing="local-first")
    assert plan(first, "hi", remote_available=True) == [LOCAL, REMOTE]
    assert plan(first, "hi", remote_available=False) == [LOCAL]
    rules = Settings(routing="rules", remote_tasks="code")
    assert plan(rules, "Fix this: ```x = 1```", remote_available=True) == [REMOTE]
    assert plan(rules, "How is the weather?", remote_available=True) == [LOCAL]
    assert classify_task("word " * 2000) == "long"
    with pytest.raises(SettingsError):
        Settings(routing="everywhere")
    with pytest.raises(SettingsError):
        Settings(remote_tasks="poetry")


def status(state: RuntimeState, **changes: object) -> RuntimeStatus:
    return RuntimeStatus(state, **changes)  # type: ignore[arg-type]


def test_each_runtime_state_becomes_a_sentence_or_a_target() -> None:
    assert "starting" in describe_runtime(None, "k").message
    downloading = describe_runtime(status(RuntimeState.DOWNLOADING, progress=42.4, message="phi"), "k")
    assert downloading.target is None and "42 %" in downloading.message and downloading.transient
    no_model = describe_runtime(status(RuntimeState.NO_MODEL, message="No model available: set X."), "k")
    assert not no_model.transient and no_model.message == "No model available: set X."
    dead = describe_runtime(status(RuntimeState.READY, pid=2**22 + 12345, base_url="u", model_id="m"), "k")
    assert "restarting" in dead.message
    ready = describe_runtime(
        status(RuntimeState.READY, base_url="http://127.0.0.1:1/v1", model_id="m", context_length=512), "k"
    )
    assert ready.target is not None and ready.target.context_length == 512 and ready.target.where == LOCAL


def in_chainlit_child(script: str, app_root: Path, *args: str) -> str:
    """Run `script` in a child process (importing Chainlit reads, and writes, a config in its
    app root); returns what it printed."""
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script, *args],
        env={**os.environ, "CHAINLIT_APP_ROOT": str(app_root)},
        cwd=app_root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_history_schema_takes_what_chainlit_s_data_layer_writes(tmp_path: Path) -> None:
    database = tmp_path / "history.sqlite3"
    create_schema(database)
    create_schema(database)  # idempotent
    assert in_chainlit_child(ROUNDTRIP, tmp_path, conninfo(database)).strip() == "['hi']"


def test_history_writes_wait_for_an_answer_s_first_words_and_all_land(tmp_path: Path) -> None:
    """A user's message holds its chat's writes until the answer's first words are sent (or at
    most the store's limit), so they do not delay them; then every write is stored."""
    database = tmp_path / "history.sqlite3"
    create_schema(database)
    printed = in_chainlit_child(HELD_WRITES, tmp_path, str(database)).splitlines()
    assert printed == ["held", "['question']", "held", "['question', 'another']", "at once"]


HELD_WRITES = """
import asyncio, sys, time
from pathlib import Path
import chainlit
from chainlit.context import init_http_context
from desktop.chat import store as store_module

def step(step_id, text):
    return {"id": step_id, "threadId": "t1", "name": "local", "type": "user_message", "output": text,
            "streaming": False, "metadata": {}, "createdAt": f"2026-01-01T00:00:0{step_id}Z"}

async def stored(store):
    return [s["output"] for s in (await store.layer.get_thread("t1"))["steps"]]

async def held(store, writing, text):
    try:
        await asyncio.wait_for(asyncio.shield(writing), 0.5)
    except TimeoutError:
        return "held" if text not in await stored(store) else "written early"
    return "written"

async def main():
    init_http_context()
    store_module.HOLD_S = 5.0  # longer than the checks below: only the first words end the hold
    store = store_module.ChatStore(Path(sys.argv[1]))
    layer = store.layer
    user = await layer.create_user(chainlit.User(identifier="local"))
    await layer.update_thread("t1", name="a chat", user_id=user.id)
    writing = asyncio.create_task(layer.create_step(step(1, "question")))
    print(await held(store, writing, "question"))
    store.first_words_sent("t1")  # the answer started: the write goes
    await writing
    print(await stored(store))
    store_module.HOLD_S = 1.0  # no first words (a slow model): writes wait no longer than this
    writing = asyncio.create_task(layer.create_step(step(2, "another")))
    print(await held(store, writing, "another"))
    await asyncio.wait_for(writing, 5)
    print(await stored(store))
    started = time.monotonic()
    await layer.update_thread("t1", name="renamed")  # the hold is over: no more waiting
    print("at once" if time.monotonic() - started < 0.5 else "waited")
    await layer.engine.dispose()

asyncio.run(main())
"""


ROUNDTRIP = """
import asyncio, sys
import chainlit
from chainlit.data.sql_alchemy import SQLAlchemyDataLayer

async def roundtrip():
    layer = SQLAlchemyDataLayer(conninfo=sys.argv[1])
    user = await layer.create_user(chainlit.User(identifier="local"))
    await layer.update_thread("t1", name="first chat", user_id=user.id)
    step = {"id": "s1", "threadId": "t1", "name": "local", "type": "user_message", "output": "hi",
            "streaming": False, "metadata": {}, "createdAt": "2026-01-01T00:00:00Z"}
    await SQLAlchemyDataLayer.create_step.__wrapped__(layer, step)  # outside a chat session
    thread = await layer.get_thread("t1")
    print([s["output"] for s in thread["steps"]])
    await layer.engine.dispose()

asyncio.run(roundtrip())
"""


def test_the_auth_secret_is_made_once_and_kept_private(tmp_path: Path) -> None:
    path = tmp_path / "chat" / "auth-secret"
    first = auth_secret(path)
    assert len(first) >= 32 and auth_secret(path) == first
    if os.name == "posix":
        assert path.stat().st_mode & 0o077 == 0


def test_settings_travel_to_the_chat_server_unchanged(tmp_path: Path) -> None:
    settings = Settings(model_path=tmp_path, temperature=0.2, routing="rules", remote_model="gpt")
    assert settings_from_env(settings_to_env(settings)) == settings


def test_an_unbuilt_chat_page_says_how_to_build_it(tmp_path: Path) -> None:
    assert frontend_missing(frontend_dir()) is None, "the test run builds the page (tests/run.sh)"
    (tmp_path / "index.html").write_text("<!doctype html>")
    reason = frontend_missing(tmp_path)
    assert reason is not None and BUILD_COMMAND in reason and str(tmp_path) in reason
    page = not_built_page(reason)("")
    assert "The chat is not ready" in page and "npm ci --ignore-scripts &amp;&amp; npm run build" in page


def test_a_killed_runtime_host_not_yet_reaped_reads_as_restarting() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        child.kill()
        wait_for(lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE, timeout_s=10)
        ready_but_dead = status(RuntimeState.READY, pid=child.pid, base_url="u", model_id="m")
        assert "restarting" in describe_runtime(ready_but_dead, "k").message
    finally:
        child.wait()


def test_a_deferred_module_is_imported_only_when_first_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """How the chat server skips importing what Chainlit never uses (over half of its start)."""
    package = tmp_path / "heavy_for_test"
    package.mkdir()
    (package / "__init__.py").write_text("loaded = True\nclass Tracer:\n    level = 3\n")
    (package / "light.py").write_text("value = 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("heavy_for_test", "heavy_for_test.light"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert deferred.defer({"heavy_for_test": ("Tracer",), "not_installed_anywhere": ("X",)}) == [
        "heavy_for_test"
    ]
    try:
        import heavy_for_test.light  # type: ignore[import-not-found]
        from heavy_for_test import Tracer

        assert heavy_for_test.light.value == 7, "a submodule of a deferred package must still import"
        assert not hasattr(sys.modules["heavy_for_test"], "loaded"), "imported before it was used"
        assert Tracer.level == 3
        assert sys.modules["heavy_for_test"].loaded
    finally:
        for name in ("heavy_for_test", "heavy_for_test.light"):
            sys.modules.pop(name, None)


CHAINLIT_INTERNALS = """
import asyncio, inspect, sys, tomllib
from pathlib import Path

from desktop.chat import chainlit_compat, deferred
from desktop.paths import resource_root

chainlit_compat.defer_unused_imports()  # before Chainlit is imported, as the chat server does
try:
    import chainlit.server
    takes_stand_ins = True
except ImportError:
    takes_stand_ins = False
    for name in [n for n, m in sys.modules.items() if n.startswith("chainlit")
                 or isinstance(m, deferred.DeferredModule)]:
        del sys.modules[name]
    import chainlit.server

from chainlit.auth import ensure_jwt_secret
from chainlit.auth.cookie import get_token_from_cookies
from chainlit.config import ProjectSettings, UISettings, config
from chainlit.context import ChainlitContext, init_http_context, init_ws_context
from chainlit.data import get_data_layer
from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
from chainlit.emitter import ChainlitEmitter
from chainlit.markdown import init_markdown
from chainlit.session import BaseSession, WebsocketSession, ws_sessions_id
from chainlit.socket import persist_user_session
from chainlit.utils import utc_now, wrap_user_function
from desktop.chat.history import conninfo, create_schema

def parameters(function):
    return list(inspect.signature(function).parameters)

def config_toml():
    template = (resource_root() / "resources" / "chainlit" / "config.toml").read_text(encoding="utf-8")
    toml = tomllib.loads(chainlit_compat.config_text(template, ["http://127.0.0.1:1"], Path("/page")))
    return (
        "allow_origins" in ProjectSettings.model_fields and "custom_build" in UISettings.model_fields
        and toml["project"]["allow_origins"] == ["http://127.0.0.1:1"]
        and toml["UI"]["custom_build"] == "/page"
    )

def page_route_last():
    page = chainlit.server.router.routes[-1]  # included in the app after all its other routes
    return (
        isinstance(chainlit.server.app.router.routes, list)
        and page.path.endswith("/{full_path:path}")
        and "get_html_template(root_path)" in inspect.getsource(page.endpoint)
    )

async def history_layer():
    database = Path(sys.argv[1]) / "history.sqlite3"
    create_schema(database)
    layer = SQLAlchemyDataLayer(conninfo=conninfo(database))
    try:
        try:
            await layer.get_thread_author("no such chat")
        except ValueError:
            return True
        return False
    finally:
        await layer.engine.dispose()

async def schema_takes_writes():
    init_http_context()
    database = Path(sys.argv[1]) / "written.sqlite3"
    create_schema(database)
    layer = SQLAlchemyDataLayer(conninfo=conninfo(database))
    try:
        user = await layer.create_user(chainlit.User(identifier="local"))
        await layer.update_thread("t1", name="a chat", user_id=user.id)
        step = {"id": "s1", "threadId": "t1", "name": "local", "type": "assistant_message", "output": "hi",
                "streaming": False, "metadata": {"answer": True}, "createdAt": "2026-01-01T00:00:00Z"}
        await SQLAlchemyDataLayer.create_step.__wrapped__(layer, step)  # outside a chat session
        await SQLAlchemyDataLayer.update_step.__wrapped__(layer, {**step, "output": "hi there"})
        written = [s["output"] for s in (await layer.get_thread("t1"))["steps"]] == ["hi there"]
        await layer.delete_thread("t1")
        return written and await layer.get_thread("t1") is None
    finally:
        await layer.engine.dispose()

checks = {
    "deferred imports: chainlit.server imports with UNUSED_IMPORTS' stand-ins": lambda: takes_stand_ins,
    "config.toml: project.allow_origins, UI.custom_build": config_toml,
    "chainlit.server.app.router.routes (its page's route last)": page_route_last,
    "chainlit.server.sio.eio.max_http_buffer_size": lambda: isinstance(
        chainlit.server.sio.eio.max_http_buffer_size, int
    ),
    "chainlit.server.get_html_template(root_path)": lambda: parameters(chainlit.server.get_html_template)
    == ["root_path"],
    "config.run.host/port/headless": lambda: all(
        hasattr(config.run, name) for name in ("host", "port", "headless")
    ),
    "chainlit.auth.ensure_jwt_secret()": lambda: parameters(ensure_jwt_secret) == [],
    "chainlit.markdown.init_markdown(config.root)": lambda: parameters(init_markdown) == ["root"]
    and isinstance(config.root, str),
    "chainlit.server._authenticate_user(request, user) -> Response": lambda: parameters(
        chainlit.server._authenticate_user
    )[:2] == ["request", "user"],
    "config.code.header_auth_callback": lambda: hasattr(config.code, "header_auth_callback"),
    "chainlit.auth.cookie.get_token_from_cookies(cookies)": lambda: parameters(get_token_from_cookies)
    == ["cookies"],
    "wrap_user_function(with_task=...)": lambda: "with_task" in parameters(wrap_user_function),
    "config.code.on_message/on_chat_start/on_chat_resume/on_settings_update": lambda: all(
        hasattr(config.code, name)
        for name in ("on_message", "on_chat_start", "on_chat_resume", "on_settings_update")
    ),
    "sio handler 'stop'": lambda: "stop" in chainlit.server.sio.handlers.get("/", {}),
    "WebsocketSession.current_task/thread_id/emit": lambda: all(
        name in parameters(WebsocketSession.__init__) for name in ("thread_id", "emit")
    ) and hasattr(WebsocketSession, "current_task"),
    "WebsocketSession.get(socket_id)": lambda: callable(getattr(WebsocketSession, "get", None)),
    "chainlit.session.ws_sessions_id": lambda: isinstance(ws_sessions_id, dict),
    "chainlit.context.init_ws_context(session)": lambda: parameters(init_ws_context) == ["session_or_sid"],
    "context.session.thread_id/current_task/chat_settings": lambda: all(
        f"self.{name}" in inspect.getsource(BaseSession.__init__) for name in ("thread_id", "chat_settings")
    ) and hasattr(BaseSession, "current_task") and all(
        f"self.{name}" in inspect.getsource(ChainlitContext.__init__) for name in ("session", "emitter")
    ),
    "chainlit.socket.persist_user_session(thread_id, metadata), session.to_persistable()": lambda: parameters(
        persist_user_session
    ) == ["thread_id", "metadata"] and callable(getattr(BaseSession, "to_persistable", None))
    and "self.has_first_interaction" in inspect.getsource(BaseSession.__init__),
    "ChainlitEmitter.task_start/task_end": lambda: all(
        callable(getattr(ChainlitEmitter, name, None)) for name in ("task_start", "task_end")
    ),
    "socket events 'new_message' and 'resume_thread_error'": lambda: all(
        f'"{event}"' in inspect.getsource(ChainlitEmitter) for event in ("new_message", "resume_thread_error")
    ),
    "SQLAlchemyDataLayer.execute_sql(query, parameters)": lambda: parameters(SQLAlchemyDataLayer.execute_sql)
    == ["self", "query", "parameters"],
    "SQLAlchemyDataLayer.get_thread_author raises ValueError for no such chat": lambda: asyncio.run(
        history_layer()
    ),
    "HISTORY_SCHEMA: the tables SQLAlchemyDataLayer writes": lambda: asyncio.run(schema_takes_writes()),
    "chainlit.data.get_data_layer()": lambda: parameters(get_data_layer) == [],
    "chainlit.utils.utc_now()": lambda: isinstance(utc_now(), str) and utc_now().endswith("Z"),
}

def holds(check):
    try:
        return "" if check() else "no longer as the chat expects"
    except Exception as error:
        return f"{type(error).__name__}: {error}"

for name in chainlit_compat.INTERNALS:
    if name not in checks:
        print(f"{name}: not checked here")
    elif problem := holds(checks[name]):
        print(f"{name}: {problem}")
for name in checks.keys() - set(chainlit_compat.INTERNALS):
    print(f"{name}: checked but not in chainlit_compat.INTERNALS")
"""


def test_the_chainlit_internals_the_chat_uses(tmp_path: Path) -> None:
    """Each Chainlit internal `desktop/chat/chainlit_compat.py` relies on (its `INTERNALS`) is
    still there; a Chainlit release that changes one fails here, naming it."""
    missing = in_chainlit_child(CHAINLIT_INTERNALS, tmp_path, str(tmp_path)).strip()
    assert not missing, f"Chainlit changed what the chat relies on:\n{missing}"


RESUMED = """
from desktop.chat.app import conversation_from_thread

def step(id, type, output, metadata=None, at="2026-01-01T00:00:0%d"):
    return {"id": id, "type": type, "output": output, "metadata": metadata or {}, "createdAt": at % int(id)}

thread = {"id": "t", "steps": [
    step("1", "user_message", "Tell me"),
    step("2", "assistant_message", "Once upon *(cut off at Max tokens)*\\n\\n— *computed on this computer*",
         '{"answer": true, "ending": "cut"}'),
    step("3", "assistant_message", " a time *(stopped)*",
         {"answer": True, "continues": True, "ending": "stopped"}),
    step("4", "assistant_message", "Switching to beta.", {"notice": True}),
    step("5", "user_message", "And?"),
    step("6", "assistant_message", "The end", {"answer": True, "ending": "from a future version"}),
]}
conversation = conversation_from_thread(thread)
print(conversation.turns)
print(conversation.last_answer, conversation.last_ending.name)
"""


def test_a_resumed_chat_joins_a_continued_answer_and_knows_how_its_newest_ended(tmp_path: Path) -> None:
    turns, last = in_chainlit_child(RESUMED, tmp_path).strip().splitlines()
    assert turns == str(
        [
            {"role": "user", "content": "Tell me"},
            {"role": "assistant", "content": "Once upon a time"},
            {"role": "user", "content": "And?"},
            {"role": "assistant", "content": "The end"},
        ]
    )
    assert last == "6 DONE"
