"""Open WebUI: the Docker path against a stand-in `docker` CLI (no engine here), and the pip path
with a real supervised `open-webui` stand-in."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from desktop.config import DEFAULT_OPEN_WEBUI_IMAGE, Settings
from desktop.headless import OpenWebUIFollower
from desktop.openwebui.docker import DockerCli
from desktop.openwebui.service import (
    CONTAINER_NAME,
    DockerBackend,
    Endpoint,
    OpenWebUI,
    OpenWebUIState,
    OpenWebUIStatus,
    PipBackend,
    choose_backend,
)
from desktop.paths import AppPaths
from desktop.probe import http_ok, wait_for
from desktop.supervisor import RestartPolicy
from tests.conftest import SUPPORT, TinyModels, free_port
from tests.support.headless_app import Headless

ENDPOINT = Endpoint("http://127.0.0.1:5282/v1", "secret-key")
IMAGE = DEFAULT_OPEN_WEBUI_IMAGE
STANDIN_OWN = {"PATH", "ARGV", "CWD", "LC_CTYPE"}
"""What the stand-in's environment holds beyond what the container was given."""


def write_executable(folder: Path, name: str, script: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$@"\n')
    path.chmod(0o755)
    return path


@dataclass
class FakeDocker:
    """The stand-in CLI, first on PATH, and what it recorded."""

    state: Path
    monkeypatch: pytest.MonkeyPatch

    def mode(self, mode: str) -> None:
        self.monkeypatch.setenv("FAKE_DOCKER_MODE", mode)

    def calls(self) -> list[list[str]]:
        path = self.state / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def containers(self) -> dict[str, Any]:
        path = self.state / "containers.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def container_env(self, name: str = CONTAINER_NAME) -> dict[str, str]:
        env_file = self.state / f"{name}.env.json"
        assert wait_for(env_file.exists, timeout_s=5)
        recorded = json.loads(env_file.read_text())
        return {k: v for k, v in recorded.items() if k not in STANDIN_OWN}

    def user_runs(self, *args: str) -> None:
        """A container the user started themselves, not the app."""
        subprocess.run(["docker", "run", "-d", *args], check=True, capture_output=True)


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDocker]:
    bin_dir = tmp_path / "bin"
    write_executable(bin_dir, "docker", SUPPORT / "fake_docker.py")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER_STATE", str(tmp_path / "docker-state"))
    fake = FakeDocker(tmp_path / "docker-state", monkeypatch)
    yield fake
    leftovers = [c["pid"] for c in fake.containers().values() if psutil.pid_exists(c["pid"])]
    for pid in leftovers:
        os.kill(pid, signal.SIGKILL)


def docker_backend(host_network: bool = True, port: int | None = None) -> DockerBackend:
    cli = DockerCli.find()
    assert cli is not None
    return DockerBackend(cli, IMAGE, port or free_port(), host_network=host_network, start_timeout_s=20)


def run_call(fake: FakeDocker) -> list[str]:
    [call] = [c for c in fake.calls() if c[:1] == ["run"]]
    return call


def listening_on(port: int) -> str:
    """The address the server on `port` listens on (loopback only, or every interface)."""
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr[1] == port:
            return str(conn.laddr[0])
    raise AssertionError(f"nothing listens on {port}")


def test_linux_container_shares_the_host_network_listens_on_loopback_and_uses_the_endpoint(
    fake_docker: FakeDocker,
) -> None:
    backend = docker_backend(host_network=True)
    status = backend.start(ENDPOINT)

    assert status.state is OpenWebUIState.RUNNING, status
    assert status.url == f"http://127.0.0.1:{backend.port}" and http_ok(f"{status.url}/health")
    env = {
        "ANONYMIZED_TELEMETRY": "False",
        "DO_NOT_TRACK": "True",
        "ENABLE_OLLAMA_API": "False",
        "ENABLE_OPENAI_API": "True",
        "ENABLE_PERSISTENT_CONFIG": "False",
        "HF_HUB_OFFLINE": "1",
        "HOST": "127.0.0.1",
        "OFFLINE_MODE": "True",
        "OPENAI_API_BASE_URL": "http://127.0.0.1:5282/v1",
        "OPENAI_API_KEY": "secret-key",
        "PORT": str(backend.port),
        "SCARF_NO_ANALYTICS": "True",
        "WEBUI_AUTH": "False",
    }
    assert run_call(fake_docker) == [
        "run", "-d",
        "--name", CONTAINER_NAME,
        "--label", "io.foundry-desk.owner=foundry-desk",
        "--network", "host",
        "--volume", "foundry-desk-open-webui:/app/backend/data",
        *[arg for key, value in sorted(env.items()) for arg in ("--env", f"{key}={value}")],
        IMAGE,
    ]  # fmt: skip
    assert fake_docker.container_env() == env
    assert listening_on(backend.port) == "127.0.0.1"
    backend.stop()


def test_docker_desktop_container_publishes_on_loopback_and_reaches_the_host(fake_docker: FakeDocker) -> None:
    backend = docker_backend(host_network=False)
    status = backend.start(ENDPOINT)

    assert status.state is OpenWebUIState.RUNNING, status
    call = run_call(fake_docker)
    assert call[call.index("--publish") + 1] == f"127.0.0.1:{backend.port}:8080"
    assert call[call.index("--add-host") + 1] == "host.docker.internal:host-gateway"
    assert "--network" not in call
    env = fake_docker.container_env()
    assert env["OPENAI_API_BASE_URL"] == "http://host.docker.internal:5282/v1"
    assert "HOST" not in env and "PORT" not in env
    assert listening_on(backend.port) == "127.0.0.1"
    backend.stop()


def test_a_restart_picks_up_the_new_endpoint(fake_docker: FakeDocker) -> None:
    backend = docker_backend()
    backend.start(ENDPOINT)
    first_pid = fake_docker.containers()[CONTAINER_NAME]["pid"]

    moved = Endpoint("http://127.0.0.1:6001/catalogs/local/v1", "secret-key")
    assert backend.start(moved).state is OpenWebUIState.RUNNING
    assert fake_docker.container_env()["OPENAI_API_BASE_URL"] == moved.base_url
    assert list(fake_docker.containers()) == [CONTAINER_NAME]
    assert not psutil.pid_exists(first_pid) or psutil.Process(first_pid).status() == psutil.STATUS_ZOMBIE
    backend.stop()


def test_stop_removes_only_the_apps_container(fake_docker: FakeDocker) -> None:
    fake_docker.user_runs("--name", "my-own-webui", "--publish", f"127.0.0.1:{free_port()}:8080", IMAGE)
    backend = docker_backend()
    backend.start(ENDPOINT)

    stopped = backend.stop()
    assert stopped.state is OpenWebUIState.STOPPED and stopped.message == "Open WebUI stopped."
    assert list(fake_docker.containers()) == ["my-own-webui"]
    touched = [c[-1] for c in fake_docker.calls() if c[:1] in (["stop"], ["rm"])]
    assert touched == [CONTAINER_NAME, CONTAINER_NAME]
    assert backend.stop().message == "Open WebUI was not running."


def test_a_container_with_our_name_but_not_ours_is_left_alone(fake_docker: FakeDocker) -> None:
    fake_docker.user_runs("--name", CONTAINER_NAME, "--publish", f"127.0.0.1:{free_port()}:8080", IMAGE)
    backend = docker_backend()

    status = backend.start(ENDPOINT)
    assert status.state is OpenWebUIState.FAILED
    assert "Foundry Desk did not create" in status.message
    assert backend.stop().state is OpenWebUIState.FAILED
    assert fake_docker.containers()[CONTAINER_NAME]["status"] == "running"
    assert not [c for c in fake_docker.calls() if c[:1] in (["stop"], ["rm"])]


def test_engine_not_running_says_how_to_start_it(fake_docker: FakeDocker) -> None:
    fake_docker.mode("daemon-down")
    status = docker_backend().start(ENDPOINT)
    assert status.state is OpenWebUIState.UNAVAILABLE
    assert "engine is not running" in status.message and "Start Docker Desktop" in status.message
    assert not [c for c in fake_docker.calls() if c[:1] == ["run"]]


def test_missing_image_offline_gives_the_pull_command_without_trying(fake_docker: FakeDocker) -> None:
    fake_docker.mode("no-image")
    status = docker_backend().start(ENDPOINT)
    assert status.state is OpenWebUIState.UNAVAILABLE
    assert f"docker pull {IMAGE}" in status.message
    assert [c[0] for c in fake_docker.calls()] == ["version", "image"]


def test_container_that_exits_is_reported_with_its_last_log_lines(fake_docker: FakeDocker) -> None:
    fake_docker.mode("crash")
    status = docker_backend().start(ENDPOINT)
    assert status.state is OpenWebUIState.FAILED
    assert "exited" in status.message
    assert any("database is locked" in line for line in status.log_tail)


def test_busy_port_falls_back_to_a_free_one_and_says_so(fake_docker: FakeDocker) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy = squatter.getsockname()[1]
        backend = docker_backend(port=busy)
        status = backend.start(ENDPOINT)
        assert status.state is OpenWebUIState.RUNNING
        assert backend.port != busy and f"(port {busy} is in use)" in status.message
        backend.stop()


def test_neither_docker_nor_pip_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    service = OpenWebUI(Settings(), AppPaths.under(tmp_path))
    status = service.status()
    assert status.state is OpenWebUIState.UNAVAILABLE
    assert "Install Docker" in status.message and "pip install open-webui" in status.message
    assert not service.open()


@pytest.fixture
def open_webui_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in `open-webui` executable on PATH that records its environment."""
    monkeypatch.setenv("STANDIN_ENV_FILE", str(tmp_path / "standin-env.json"))
    path = write_executable(tmp_path / "pip-bin", "open-webui", SUPPORT / "open_webui_standin.py")
    monkeypatch.setenv("PATH", f"{path.parent}{os.pathsep}{os.environ['PATH']}")
    return path


@pytest.mark.usefixtures("no_leftover_children")
def test_pip_install_is_supervised_on_loopback_and_stops_cleanly(
    open_webui_command: Path, tmp_path: Path
) -> None:
    paths = AppPaths.under(tmp_path / "app").create()
    backend = PipBackend(str(open_webui_command), free_port(), paths, RestartPolicy(backoff_base_s=0.1))
    status = backend.start(ENDPOINT)
    assert status.state is OpenWebUIState.RUNNING, status
    assert http_ok(f"{backend.url}/health") and listening_on(backend.port) == "127.0.0.1"

    recorded = json.loads((tmp_path / "standin-env.json").read_text())
    assert json.loads(recorded["ARGV"]) == ["serve", "--host", "127.0.0.1", "--port", str(backend.port)]
    assert recorded["OPENAI_API_BASE_URL"] == ENDPOINT.base_url
    assert recorded["ENABLE_PERSISTENT_CONFIG"] == "False" and recorded["ENABLE_OLLAMA_API"] == "False"
    assert recorded["DATA_DIR"] == recorded["CWD"] == str(paths.data_dir / "open-webui")

    assert backend._supervisor is not None
    first = backend._supervisor.status.pid or 0
    os.kill(first, signal.SIGKILL)
    assert wait_for(lambda: backend.status().state is OpenWebUIState.RUNNING and backend._supervisor
                    and backend._supervisor.status.pid != first, timeout_s=20)  # fmt: skip

    assert backend.stop().state is OpenWebUIState.STOPPED
    assert not http_ok(f"{backend.url}/health")


def test_auto_uses_pip_when_docker_cannot_run_the_image(
    fake_docker: FakeDocker, open_webui_command: Path, tmp_path: Path
) -> None:
    paths = AppPaths.under(tmp_path)
    fake_docker.mode("no-image")
    assert getattr(choose_backend(Settings(), paths), "name", None) == "pip"
    fake_docker.mode("ok")
    assert getattr(choose_backend(Settings(), paths), "name", None) == "docker"
    assert getattr(choose_backend(Settings(open_webui_backend="pip"), paths), "name", None) == "pip"


@pytest.mark.usefixtures("no_leftover_children")
def test_headless_runs_open_webui_on_the_runtime_endpoint_and_stops_it(
    fake_docker: FakeDocker, tiny_models: TinyModels, tmp_path: Path
) -> None:
    ui_port = free_port()
    app = Headless(
        tmp_path / "home",
        {
            "FOUNDRY_DESK_MODEL_PATH": str(tiny_models.alpha),
            "FOUNDRY_DESK_RUNTIME_PORT": str(free_port()),
            "FOUNDRY_DESK_OPEN_WEBUI_PORT": str(ui_port),
        },
        "--open-webui",
    )
    try:
        base_url, _ = app.endpoint()
        app.wait_for_line(rf"open-webui: running: Open WebUI is running at http://127\.0\.0\.1:{ui_port}")
        assert fake_docker.container_env()["OPENAI_API_BASE_URL"] == base_url
        assert http_ok(f"http://127.0.0.1:{ui_port}/health")
    finally:
        code = app.finish()
    assert code == 0
    assert "open-webui: Open WebUI stopped." in app.seen
    assert fake_docker.containers() == {}


class RecordingBackend:
    """A real backend implementation that records what it was asked to do (no Docker needed)."""

    name = "recording"

    def __init__(self) -> None:
        self.started: list[str] = []
        self.stops = 0

    def start(self, endpoint: Endpoint) -> OpenWebUIStatus:
        self.started.append(endpoint.base_url)
        return OpenWebUIStatus(OpenWebUIState.RUNNING, "running", "http://127.0.0.1:1", self.name)

    def stop(self) -> OpenWebUIStatus:
        self.stops += 1
        return OpenWebUIStatus(OpenWebUIState.STOPPED, "Open WebUI stopped.", backend=self.name)

    def status(self) -> OpenWebUIStatus:
        return OpenWebUIStatus(OpenWebUIState.RUNNING, "running", "http://127.0.0.1:1", self.name)

    def logs(self, lines: int) -> list[str]:
        return []


def test_follower_restarts_open_webui_when_the_endpoint_changes(tmp_path: Path) -> None:
    backend = RecordingBackend()
    said: list[str] = []
    follower = OpenWebUIFollower(OpenWebUI(Settings(), AppPaths.under(tmp_path), backend), "key", said.append)

    for base_url in (
        None,
        "http://127.0.0.1:5282/v1",
        "http://127.0.0.1:5282/v1",
        "http://127.0.0.1:6000/v1",
    ):
        follower.follow(base_url)
        assert follower._thread is not None or base_url is None
        if follower._thread is not None:
            follower._thread.join(timeout=5)
    follower.stop()

    assert backend.started == ["http://127.0.0.1:5282/v1", "http://127.0.0.1:6000/v1"]
    assert backend.stops == 1 and said[-1] == "open-webui: Open WebUI stopped."
