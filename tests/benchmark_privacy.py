"""Benchmark of what privacy costs a user: the run's secret, and offline mode.

    .venv/bin/python tests/benchmark_privacy.py [--runs 10]

1. The gate (`desktop/chat/gate.py`): its cost per HTTP request, in-process, an app that answers
   at once with and without the gate in front. Socket.IO messages do not pass it (it sees only
   the connection's handshake), so Enter to first token cannot change: `benchmark_chat.py` before
   and after it says the same.
2. Page open to message box ready (connected, the box enabled) for a link to the chat, with the
   catalog unreachable (offline here), in the normal mode and in offline mode. Target: the same.
3. A catalog alias that is not downloaded: from the runtime host's start to its "no model"
   message, in offline mode and in the normal mode with the catalog unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
from playwright.sync_api import Browser, sync_playwright
from starlette.types import ASGIApp, Message, Receive, Scope, Send

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from desktop.chat.gate import COOKIE_NAME, RunSecretGate
from desktop.config import Settings
from desktop.paths import AppPaths
from desktop.runsecret import RunSecret
from desktop.runtime.status import RuntimeState, read_status
from tests.conftest import free_port
from tests.support.chat_browser import ChatStack, open_chat
from tests.support.headless_app import Headless
from tests.support.webgpu_browser import launch
from tests.tinymodel import build_model

LOOKING = re.compile(r"^(\S+ \S+) INFO runtime starting Looking for model", re.MULTILINE)


def gate_cost_us(requests: int = 20_000) -> tuple[float, float]:
    """Microseconds per request: an app that answers at once, alone and behind the gate."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    secret = RunSecret.new()
    cookie = f"{COOKIE_NAME}={secret.session_cookie}; access_token=x".encode()
    scope: Scope = {"type": "http", "method": "GET", "path": "/user", "query_string": b""}
    scope["headers"] = [(b"cookie", cookie)]

    async def received() -> Message:
        return {"type": "http.request", "body": b""}

    async def sent(message: Message) -> None:
        return None

    async def timed(handler: ASGIApp) -> float:
        started = time.perf_counter()
        for _ in range(requests):
            await handler(dict(scope), received, sent)
        return (time.perf_counter() - started) / requests * 1e6

    async def both() -> tuple[float, float]:
        return await timed(app), await timed(RunSecretGate(app, secret))

    return asyncio.run(both())


def page_ready_ms(browser: Browser, stack: ChatStack, runs: int) -> float:
    """Median ms from opening a fresh link in a fresh browser profile to the message box ready."""
    times = []
    for _ in range(runs + 1):
        context = browser.new_context()
        page = context.new_page()
        started = time.perf_counter()
        open_chat(page, stack.link())
        page.wait_for_selector("#chat-input:not([disabled])")
        times.append((time.perf_counter() - started) * 1000)
        context.close()
    return statistics.median(times[1:])


def no_model_s(root: Path, offline: bool) -> tuple[float, float]:
    """For an alias not downloaded: seconds from the runtime host's start to its "no model"
    status, and from its looking for the model (its log) to that status."""
    env = {"MODEL": "phi-4-mini", "FOUNDRY_DESK_RUNTIME_PORT": str(free_port())}
    app = Headless(root, env, *(("--offline",) if offline else ()))
    paths = AppPaths.under(root)
    try:
        app.wait_for_line(r"no model: ", timeout_s=60)
        status = read_status(paths.runtime_status_file)
        assert status is not None and status.state is RuntimeState.NO_MODEL
        started = psutil.Process(status.pid).create_time()
    finally:
        app.finish()
    logged = LOOKING.search((paths.log_dir / "runtime.log").read_text(encoding="utf-8"))
    assert logged is not None, "the runtime host logged no lookup"
    looking = datetime.datetime.strptime(logged.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return status.updated_at - started, status.updated_at - looking


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    alone, gated = gate_cost_us()
    print(
        f"the gate: {gated - alone:.1f} µs per HTTP request ({alone:.1f} µs without it, {gated:.1f} with it)"
    )
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        model = build_model(root / "models" / "alpha", "Hello from the tiny model.")
        ready: dict[bool, float] = {}
        with sync_playwright() as driver:
            browser = launch(driver)
            for offline in (False, True):
                settings = Settings(model_path=model, runtime_port=free_port(), offline=offline)
                stack = ChatStack.start(root / f"app-{offline}", settings)
                try:
                    stack.ready()
                    ready[offline] = page_ready_ms(browser, stack, args.runs)
                finally:
                    stack.stop()
            browser.close()
        print(
            f"page open to message box ready (median of {args.runs}): normal mode, catalog unreachable "
            f"{ready[False]:.0f} ms; offline mode {ready[True]:.0f} ms"
        )
        for offline in (True, False):
            whole, lookup = no_model_s(root / f"alias-{offline}", offline)
            mode = "offline mode" if offline else "normal mode, catalog unreachable"
            print(
                f"an alias not downloaded, {mode}: 'no model' {whole:.2f} s after the host started, "
                f"{lookup * 1000:.0f} ms after it looked for it"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
