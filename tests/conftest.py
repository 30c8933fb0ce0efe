"""Shared fixtures: real processes on 127.0.0.1, stopped and checked at teardown."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from desktop.paths import AppPaths
from tests.support.webgpu_browser import CHROMIUM, launch
from tests.tinymodel import build_model

SUPPORT = Path(__file__).parent / "support"
ALPHA_ANSWER = "Hello from the tiny model."
BETA_ANSWER = "Beta speaks now, not alpha."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_command(port: int, *flags: str) -> list[str]:
    """The command line of tests/support/service.py."""
    return [sys.executable, str(SUPPORT / "service.py"), "--port", str(port), *flags]


def app_command(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`foundry-desk …` from source, as a user runs it, with the app's folders under `home`."""
    return subprocess.run(
        [sys.executable, "-m", "desktop", *args],
        env={**os.environ, "FOUNDRY_DESK_HOME": str(home), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def not_private(root: Path) -> list[str]:
    """Files and folders below `root` that others than their owner can use, with their modes."""
    return [
        f"{path} {oct(stat.S_IMODE(path.lstat().st_mode))}"
        for path in root.rglob("*")
        if not path.is_symlink() and path.lstat().st_mode & 0o077
    ]


@pytest.fixture
def app_paths(tmp_path: Path) -> AppPaths:
    return AppPaths.under(tmp_path / "app").create()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, driven by Playwright (never a browser of Playwright's own), offline; one
    per test module. Skips where Chromium is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"needs Chromium at {CHROMIUM}")
    with sync_playwright() as driver:
        browser = launch(driver)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page in the module's browser; at the end, none of its requests may have left
    127.0.0.1."""
    from tests.support.chat_browser import logged_page  # which imports this module

    with logged_page(browser) as page:
        yield page


@contextlib.contextmanager
def nothing_left_behind(timeout_s: float = 3.0) -> Iterator[None]:
    """Fail if child processes of the test runner started inside are still running `timeout_s`
    after its end (they are killed, so that they do not disturb the next tests)."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    after = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    _, alive = psutil.wait_procs(after, timeout=timeout_s)
    for proc in alive:
        proc.kill()
    assert not alive, f"processes left behind: {[p.pid for p in alive]}"


@pytest.fixture
def no_leftover_children() -> Iterator[None]:
    """Fail the test if it leaves any child process of the test runner behind."""
    with nothing_left_behind():
        yield


@dataclass(frozen=True)
class TinyModels:
    """Real ONNX Runtime GenAI model folders with known answers, built by the tests."""

    alpha: Path
    beta: Path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    root = tmp_path_factory.mktemp("models")
    return TinyModels(
        alpha=build_model(root / "alpha", ALPHA_ANSWER),
        beta=build_model(root / "beta", BETA_ANSWER),
    )
