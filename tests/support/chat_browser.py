"""The chat stack for tests: a supervised runtime host, a supervised chat server, and helpers
that drive the chat page in Debian's Chromium (offline) and wait on what it shows.

Shared by tests/test_chat_browser.py and tests/benchmark_chat.py.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from playwright.sync_api import Browser, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from desktop.chat.service import ChatServer
from desktop.config import Settings
from desktop.paths import AppPaths
from desktop.runsecret import RunSecret
from desktop.runtime.service import RuntimeClient, RuntimeRequestError, runtime_spec
from desktop.runtime.status import RuntimeState, RuntimeStatus
from desktop.supervisor import RestartPolicy, ServiceState, Supervisor
from tests.conftest import free_port
from tests.support.webgpu_browser import RequestLog

FAST = RestartPolicy(backoff_base_s=0.1, probe_interval_s=0.2)
ANSWER = '[data-step-type="assistant_message"]'
USER = '[data-step-type="user_message"]'


@dataclass
class ChatStack:
    """A runtime host and a chat server, both supervised, sharing one app folder."""

    paths: AppPaths
    runtime: Supervisor
    client: RuntimeClient
    chat: ChatServer

    @classmethod
    def start(
        cls, root: Path, settings: Settings, with_runtime: bool = True, ask_before_download: bool = False
    ) -> ChatStack:
        """`ask_before_download`: the runtime host as the desktop app starts it."""
        paths = AppPaths.under(root).create()
        secret = RunSecret.create(paths.state_dir)
        settings = replace(settings, chat_port=free_port())
        spec = runtime_spec(settings, paths, secret, ask_before_download=ask_before_download)
        runtime = Supervisor(spec, paths.log_dir, FAST)
        if with_runtime:
            runtime.start()
        chat = ChatServer(settings, paths, secret, policy=FAST)
        chat.start()
        return cls(paths, runtime, RuntimeClient(paths.runtime_status_file, secret), chat)

    @property
    def url(self) -> str:
        """The chat's address: without the run's secret it opens nothing (see `link`)."""
        return self.chat.url

    def link(self) -> str:
        """A new one-time link that opens the chat in a browser, as the app's window gets it."""
        return self.chat.link()

    @property
    def authorization(self) -> dict[str, str]:
        """The header of a program that holds the run's secret."""
        return {"Authorization": self.chat.secret.authorization}

    def ready(self, timeout_s: float = 60.0) -> RuntimeStatus:
        """Wait until both the chat server and the current runtime host are ready."""
        assert self.chat.supervisor is not None
        chat = self.chat.supervisor.wait_for_state(ServiceState.RUNNING, timeout_s=timeout_s)
        assert chat.state is ServiceState.RUNNING, chat
        self.runtime.wait_for_state(ServiceState.RUNNING, timeout_s=timeout_s)
        return self.client.wait(
            lambda s: s.state is RuntimeState.READY and s.pid == self.runtime.status.pid, timeout_s
        )

    def select(self, model: str, timeout_s: float = 60.0) -> RuntimeStatus:
        """Switch the runtime's model, waiting out a switch already under way."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.client.select(model, timeout_s)
            except RuntimeRequestError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def chat_ready(self, timeout_s: float = 60.0) -> None:
        assert self.chat.supervisor is not None
        status = self.chat.supervisor.wait_for_state(ServiceState.RUNNING, timeout_s=timeout_s)
        assert status.state is ServiceState.RUNNING, status

    def stop(self) -> None:
        self.chat.stop()
        self.runtime.stop()


@contextlib.contextmanager
def logged_page(browser: Browser) -> Iterator[Page]:
    """A fresh page whose requests are all logged: at the end, none may have left 127.0.0.1."""
    context = browser.new_context()
    page = context.new_page()
    log = RequestLog()
    page.on("request", log.record)
    yield page
    context.close()
    assert log.urls, "the page made no request at all"
    assert not log.outside(), f"requests left 127.0.0.1: {log.outside()}"


def open_chat(page: Page, url: str) -> None:
    """Open the chat (the local user is signed in by itself) and wait until it takes messages."""
    page.goto(url)
    page.wait_for_selector("#app[data-ready='true']", timeout=20_000)  # signed in, live, started


def send(page: Page, text: str) -> float:
    """Type `text` and press Enter once; returns the time it was sent (perf_counter). The page
    takes it, or the test fails: a message pressed Enter on is never lost."""
    before = page.locator(USER).count()
    wait_idle(page)
    page.fill("#chat-input", text)
    sent = time.perf_counter()
    page.keyboard.press("Enter")
    try:
        page.wait_for_function(
            "([selector, before]) => document.querySelectorAll(selector).length > before",
            arg=[USER, before],
            timeout=10_000,
        )
    except PlaywrightTimeoutError:
        raise AssertionError(f"the chat did not take the message {text[:40]!r}") from None
    return sent


def answers(page: Page) -> list[str]:
    return [text.strip() for text in page.locator(ANSWER).all_inner_texts()]


def wait_for_answer(page: Page, text: str, count: int = 1, timeout_ms: int = 30_000) -> None:
    """Wait until `count` assistant messages contain `text`."""
    try:
        page.wait_for_function(
            """([selector, text, count]) => [...document.querySelectorAll(selector)]
                .filter(e => e.innerText.includes(text)).length >= count""",
            arg=[ANSWER, text, count],
            timeout=timeout_ms,
        )
    except PlaywrightTimeoutError:
        raise AssertionError(f"no {count} answer(s) with {text!r}; the chat shows {answers(page)}") from None


def wait_idle(page: Page, timeout_ms: int = 30_000) -> None:
    """Wait until no answer is running (the Stop button is gone)."""
    page.wait_for_selector("#stop-button", state="hidden", timeout=timeout_ms)
