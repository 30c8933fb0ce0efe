"""Shared fixtures: real processes on 127.0.0.1, stopped and checked at teardown."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from desktop.paths import AppPaths
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


@pytest.fixture
def app_paths(tmp_path: Path) -> AppPaths:
    return AppPaths.under(tmp_path / "app").create()


@pytest.fixture
def no_leftover_children() -> Iterator[None]:
    """Fail the test if it leaves any child process of the test runner behind."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    after = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    _, alive = psutil.wait_procs(after, timeout=3)
    for proc in alive:
        proc.kill()
    assert not alive, f"processes left behind: {[p.pid for p in alive]}"


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
