"""Open WebUI: the Docker path against a stand-in `docker` CLI (no engine here), and the pip path
with a real supervised `open-webui` stand-in; both stand-ins behave as Open WebUI 0.12.4 does in
what the app relies on (tests/support/open_webui_standin.py): its login, its CORS, its data."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from playwright.sync_api import Browser, expect

from desktop.config import DEFAULT_OPEN_WEBUI_IMAGE, Settings
from desktop.openwebui.docker import DockerCli
from desktop.openwebui.service import (
    CONTAINER_NAME,
    VOLUME_NAME,
    Access,
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
from desktop.process import process_alive
from desktop.runsecret import RunSecret
from desktop.stack import ServiceStack
from desktop.supervisor import RestartPolicy
from tests.conftest import SUPPORT, TinyModels, free_port
from tests.support.docker_cli import FakeDocker as DockerStandIn
from tests.support.docker_cli import write_executable
from tests.support.headless_app import Headless
from tests.support.openai_standin import RemoteStandIn

ENDPOINT = Endpoint("http://127.0.0.1:5282/v1", "secret-key")
ACCESS = Access("the-secret-key", signup_open=True)
IMAGE = DEFAULT_OPEN_WEBUI_IMAGE
SIGN_IN = "/api/v1/auths/signin"


@dataclass
class FakeDocker(DockerStandIn):
    """The stand-in CLI, first on this process's PATH."""

    monkeypatch: pytest.MonkeyPatch

    def mode(self, mode: str) -> None:
        self.monkeypatch.setenv("FAKE_DOCKER_MODE", mode)

    def user_runs(self, *args: str) -> None:
        """A container the user started themselves, not the app."""
        subprocess.run(["docker", "run", "-d", *args], check=True, capture_output=True)


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDocker]:
    installed = DockerStandIn.install(tmp_path)
    for name, value in installed.env().items():
        monkeypatch.setenv(name, value)
    fake = FakeDocker(installed.bin_dir, installed.state, monkeypatch)
    yield fake
    fake.kill_containers()


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
    status = backend.start(ENDPOINT, ACCESS)

    assert status.state is OpenWebUIState.RUNNING, status
    assert status.url == f"http://127.0.0.1:{backend.port}" and http_ok(f"{status.url}/health")
    env = {
        "ANONYMIZED_TELEMETRY": "False",
        "CORS_ALLOW_ORIGIN": f"http://127.0.0.1:{backend.port};http://localhost:{backend.port}",
        "DO_NOT_TRACK": "True",
        "ENABLE_OLLAMA_API": "False",
        "ENABLE_OPENAI_API": "True",
        "ENABLE_PERSISTENT_CONFIG": "False",
        "ENABLE_SIGNUP": "True",
        "HF_HUB_OFFLINE": "1",
        "HOST": "127.0.0.1",
        "JWT_EXPIRES_IN": "4w",
        "OFFLINE_MODE": "True",
        "OPENAI_API_BASE_URL": "http://127.0.0.1:5282/v1",
        "OPENAI_API_KEY": "secret-key",
        "PORT": str(backend.port),
        "SCARF_NO_ANALYTICS": "True",
        "WEBUI_AUTH": "True",
        "WEBUI_SECRET_KEY": "the-secret-key",
    }
    given = [f"{key}={value}" if key != "WEBUI_SECRET_KEY" else key for key, value in sorted(env.items())]
    assert run_call(fake_docker) == [
        "run", "-d",
        "--name", CONTAINER_NAME,
        "--label", "io.foundry-desk.owner=foundry-desk",
        "--network", "host",
        "--volume", "foundry-desk-open-webui:/app/backend/data",
        *[arg for setting in given for arg in ("--env", setting)],
        IMAGE,
    ]  # fmt: skip
    assert fake_docker.container_env() == env, "the secret key reaches the container by name only"
    assert listening_on(backend.port) == "127.0.0.1"
    backend.stop()


def test_docker_desktop_container_publishes_on_loopback_and_reaches_the_host(fake_docker: FakeDocker) -> None:
    backend = docker_backend(host_network=False)
    status = backend.start(ENDPOINT, ACCESS)

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
    backend.start(ENDPOINT, ACCESS)
    first_pid = fake_docker.containers()[CONTAINER_NAME]["pid"]

    moved = Endpoint("http://127.0.0.1:6001/catalogs/local/v1", "secret-key")
    assert backend.start(moved, ACCESS).state is OpenWebUIState.RUNNING
    assert fake_docker.container_env()["OPENAI_API_BASE_URL"] == moved.base_url
    assert list(fake_docker.containers()) == [CONTAINER_NAME]
    assert not process_alive(first_pid)
    backend.stop()


def test_stop_removes_only_the_apps_container(fake_docker: FakeDocker) -> None:
    fake_docker.user_runs("--name", "my-own-webui", "--publish", f"127.0.0.1:{free_port()}:8080", IMAGE)
    backend = docker_backend()
    backend.start(ENDPOINT, ACCESS)

    stopped = backend.stop()
    assert stopped.state is OpenWebUIState.STOPPED and stopped.message == "Open WebUI stopped."
    assert list(fake_docker.containers()) == ["my-own-webui"]
    touched = [c[-1] for c in fake_docker.calls() if c[:1] in (["stop"], ["rm"])]
    assert touched == [CONTAINER_NAME, CONTAINER_NAME]
    assert backend.stop().message == "Open WebUI was not running."


def test_a_container_with_our_name_but_not_ours_is_left_alone(fake_docker: FakeDocker) -> None:
    fake_docker.user_runs("--name", CONTAINER_NAME, "--publish", f"127.0.0.1:{free_port()}:8080", IMAGE)
    backend = docker_backend()

    status = backend.start(ENDPOINT, ACCESS)
    assert status.state is OpenWebUIState.FAILED
    assert "Foundry Desk did not create" in status.message
    assert backend.stop().state is OpenWebUIState.FAILED
    assert fake_docker.containers()[CONTAINER_NAME]["status"] == "running"
    assert not [c for c in fake_docker.calls() if c[:1] in (["stop"], ["rm"])]


def test_engine_not_running_says_how_to_start_it(fake_docker: FakeDocker) -> None:
    fake_docker.mode("daemon-down")
    status = docker_backend().start(ENDPOINT, ACCESS)
    assert status.state is OpenWebUIState.UNAVAILABLE
    assert "engine is not running" in status.message and "Start Docker Desktop" in status.message
    assert not [c for c in fake_docker.calls() if c[:1] == ["run"]]


def test_missing_image_offline_gives_the_pull_command_without_trying(fake_docker: FakeDocker) -> None:
    fake_docker.mode("no-image")
    status = docker_backend().start(ENDPOINT, ACCESS)
    assert status.state is OpenWebUIState.UNAVAILABLE
    assert f"docker pull {IMAGE}" in status.message
    assert [c[0] for c in fake_docker.calls()] == ["version", "image"]


def test_container_that_exits_is_reported_with_its_last_log_lines(fake_docker: FakeDocker) -> None:
    fake_docker.mode("crash")
    status = docker_backend().start(ENDPOINT, ACCESS)
    assert status.state is OpenWebUIState.FAILED
    assert "exited" in status.message
    assert any("database is locked" in line for line in status.log_tail)


def test_busy_port_falls_back_to_a_free_one_and_says_so(fake_docker: FakeDocker) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy = squatter.getsockname()[1]
        backend = docker_backend(port=busy)
        status = backend.start(ENDPOINT, ACCESS)
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
    status = backend.start(ENDPOINT, ACCESS)
    assert status.state is OpenWebUIState.RUNNING, status
    assert http_ok(f"{backend.url}/health") and listening_on(backend.port) == "127.0.0.1"

    recorded = json.loads((tmp_path / "standin-env.json").read_text())
    assert json.loads(recorded["ARGV"]) == ["serve", "--host", "127.0.0.1", "--port", str(backend.port)]
    assert recorded["OPENAI_API_BASE_URL"] == ENDPOINT.base_url
    assert recorded["ENABLE_PERSISTENT_CONFIG"] == "False" and recorded["ENABLE_OLLAMA_API"] == "False"
    assert (recorded["WEBUI_AUTH"], recorded["WEBUI_SECRET_KEY"]) == ("True", "the-secret-key")
    assert recorded["CORS_ALLOW_ORIGIN"] == f"{backend.url};http://localhost:{backend.port}"
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
        link = app.wait_for_line(r"open-webui: open it signed in \(the link works once\): (\S+)").group(1)
        assert fake_docker.container_env()["OPENAI_API_BASE_URL"] == base_url
        assert http_ok(f"http://127.0.0.1:{ui_port}/health")
        signed_in = httpx.get(link, timeout=10)
        assert (
            signed_in.status_code == 303
            and signed_in.headers["location"] == f"http://127.0.0.1:{ui_port}/auth"
        )
        assert session_of(f"http://127.0.0.1:{ui_port}", signed_in.cookies["token"])["role"] == "admin"
    finally:
        code = app.finish()
    assert code == 0
    assert "open-webui: Open WebUI stopped." in app.seen
    assert fake_docker.containers() == {}


class RecordingBackend:
    """A real backend implementation that records what it was asked to do (no Docker needed)."""

    name = "recording"
    poll_interval_s = 0.05
    restarts_itself = True
    log_location = "nowhere"
    data_place = "nowhere"

    def __init__(self) -> None:
        self.started: list[str] = []
        self.stops = 0

    def has_data(self) -> bool:
        return False

    def start(self, endpoint: Endpoint, access: Access) -> OpenWebUIStatus:
        self.started.append(endpoint.base_url)
        return OpenWebUIStatus(OpenWebUIState.RUNNING, "running", "http://127.0.0.1:1", self.name)

    def stop(self) -> OpenWebUIStatus:
        self.stops += 1
        return OpenWebUIStatus(OpenWebUIState.STOPPED, "Open WebUI stopped.", backend=self.name)

    def status(self) -> OpenWebUIStatus:
        return OpenWebUIStatus(OpenWebUIState.RUNNING, "running", "http://127.0.0.1:1", self.name)

    def logs(self, lines: int) -> list[str]:
        return []


def test_the_stack_restarts_open_webui_when_the_endpoint_changes(tmp_path: Path) -> None:
    """Open WebUI follows the endpoint: started once it is known, started again on the new one
    when it moves (attach mode here: the endpoint is the setting), stopped with the stack."""
    backend = RecordingBackend()
    paths = AppPaths.under(tmp_path).create()
    settings = Settings(base_url="http://127.0.0.1:5282/v1")
    stack = ServiceStack(settings, paths, chat_factory=None, open_webui=OpenWebUI(settings, paths, backend))
    try:
        stack.start_open_webui()
        stack.start()
        assert wait_for(lambda: backend.started == ["http://127.0.0.1:5282/v1"], timeout_s=10)
        stack.restart_with(replace(settings, base_url="http://127.0.0.1:6000/v1"))
        assert wait_for(lambda: stack.status.open_webui.state is OpenWebUIState.RUNNING, timeout_s=10)
        assert wait_for(lambda: len(backend.started) == 2, timeout_s=10)
    finally:
        stack.stop()
    assert backend.started == ["http://127.0.0.1:5282/v1", "http://127.0.0.1:6000/v1"]
    final = stack.status.open_webui
    assert backend.stops == 1 and final.state is OpenWebUIState.STOPPED


def session_of(url: str, token: str) -> dict[str, Any]:
    """Who `token` signs in as at Open WebUI on `url` (its `GET /api/v1/auths/`)."""
    answer = httpx.get(f"{url}/api/v1/auths/", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def sign_in(url: str, email: str, password: str, **headers: str) -> httpx.Response:
    body = {"email": email, "password": password}
    return httpx.post(f"{url}{SIGN_IN}", json=body, headers=headers, timeout=10)


def service_for(paths: AppPaths, backend: DockerBackend | PipBackend) -> OpenWebUI:
    return OpenWebUI(Settings(), paths, backend, secret=RunSecret.new())


def keys_of(paths: AppPaths, backend: str = "docker") -> dict[str, str]:
    return dict(json.loads((paths.data_dir / f"open-webui-{backend}-keys.json").read_text()))


def preflight(url: str, origin: str) -> httpx.Response:
    """What a browser asks before a page of `origin` may POST JSON with the user's cookies."""
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    return httpx.options(f"{url}{SIGN_IN}", headers=headers, timeout=10)


@pytest.mark.usefixtures("no_leftover_children")
def test_no_other_web_page_can_act_as_the_user(fake_docker: FakeDocker, app_paths: AppPaths) -> None:
    """The app used to start Open WebUI with its login off and CORS open to all: any web page
    could sign in as its admin, with the browser's credentials. Now only Open WebUI's own page
    is let in, and a session needs the app's password."""
    backend = docker_backend()
    service = service_for(app_paths, backend)
    status = service.start(ENDPOINT)
    assert status.state is OpenWebUIState.RUNNING and status.url is not None, status
    url, port = status.url, backend.port
    env = fake_docker.container_env()
    assert env["WEBUI_AUTH"] == "True"
    assert env["CORS_ALLOW_ORIGIN"] == f"http://127.0.0.1:{port};http://localhost:{port}"
    for origin in ("https://evil.example", f"http://127.0.0.1:{free_port()}"):
        asked = preflight(url, origin)
        assert asked.status_code == 400 and "access-control-allow-origin" not in asked.headers
        refused = sign_in(url, "", "", Origin=origin)
        assert refused.status_code == 400 and "token" not in refused.json()
        assert "access-control-allow-origin" not in refused.headers
        chats = httpx.get(f"{url}/api/v1/chats/", headers={"Origin": origin}, timeout=10)
        assert chats.status_code == 401 and "access-control-allow-origin" not in chats.headers
    # A page of another site reaching 127.0.0.1 under its own name (DNS rebinding) is on its own
    # origin: no CORS needed, but no session of the user's, no password, and no signup.
    rebound = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
    assert httpx.get(f"{url}/api/v1/chats/", headers=rebound, timeout=10).status_code == 401
    assert sign_in(url, "admin@localhost", "admin", **rebound).status_code == 400
    signup = {"name": "Evil", "email": "evil@example.com", "password": "evil"}
    signed_up = httpx.post(f"{url}/api/v1/auths/signup", json=signup, headers=rebound, timeout=10)
    assert signed_up.status_code == 403
    for own in (url, f"http://localhost:{port}"):  # Open WebUI's own page, by either name
        asked = preflight(url, own)
        assert asked.status_code == 200, asked.text
        assert asked.headers["access-control-allow-origin"] == own
        assert asked.headers["access-control-allow-credentials"] == "true"
    service.stop()


@pytest.mark.usefixtures("no_leftover_children")
def test_the_apps_account_is_made_once_kept_private_and_reused(
    fake_docker: FakeDocker, app_paths: AppPaths
) -> None:
    backend = docker_backend()
    service = service_for(app_paths, backend)
    first = service.start(ENDPOINT)
    assert first.state is OpenWebUIState.RUNNING and first.url is not None, first
    assert "Foundry Desk made its own account in Open WebUI" in first.message
    key_file = app_paths.data_dir / "open-webui-docker-keys.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    keys = keys_of(app_paths)
    assert keys["email"] == "foundry-desk@localhost" and len(keys["password"]) >= 32
    env = fake_docker.container_env()
    assert env["WEBUI_SECRET_KEY"] == keys["secret_key"] and env["ENABLE_SIGNUP"] == "True"  # empty volume
    assert not any(keys["secret_key"] in arg for call in fake_docker.calls() for arg in call)
    signed_in = sign_in(first.url, keys["email"], keys["password"])
    assert signed_in.json()["role"] == "admin"
    signup = {"name": "Someone", "email": "someone@example.com", "password": "theirs"}
    assert httpx.post(f"{first.url}/api/v1/auths/signup", json=signup, timeout=10).status_code == 403

    service.stop()
    again = service.start(ENDPOINT)
    assert again.state is OpenWebUIState.RUNNING and again.url == first.url, again
    assert "account" not in again.message
    assert keys_of(app_paths) == keys
    env = fake_docker.container_env()
    assert env["WEBUI_SECRET_KEY"] == keys["secret_key"] and env["ENABLE_SIGNUP"] == "False"
    # the same key signs sessions: a browser signed in before the restart still is
    assert session_of(again.url, signed_in.json()["token"])["email"] == keys["email"]
    service.stop()


def test_the_one_click_link_signs_the_browser_in_once(
    browser: Browser, open_webui_command: Path, app_paths: AppPaths
) -> None:
    service = service_for(app_paths, PipBackend(str(open_webui_command), free_port(), app_paths))
    status = service.start(ENDPOINT)
    assert status.state is OpenWebUIState.RUNNING and status.url is not None, status
    link = service.link()
    assert link is not None and "/open-webui?token=" in link and not link.startswith(status.url)
    # reached by another name (DNS rebinding), the door stays shut, and the link still works
    rebound = httpx.get(link, headers={"Host": "evil.example"}, timeout=10)
    assert rebound.status_code == 404 and "set-cookie" not in rebound.headers

    users_browser = browser.new_context()
    page = users_browser.new_page()
    page.goto(link)
    expect(page.locator("#user")).to_have_text("Signed in as Foundry Desk (foundry-desk@localhost, admin)")
    assert page.url == f"{status.url}/"
    token = page.evaluate("localStorage.token")
    assert session_of(status.url, token)["role"] == "admin"
    [cookie] = [c for c in users_browser.cookies() if c.get("name") == "token"]
    assert cookie.get("httpOnly") is True, "the handed-over session is no longer readable by scripts"

    another_browser = browser.new_context()
    other = another_browser.new_page()
    other.goto(link)
    expect(other.locator("p")).to_contain_text("This link has been used already")
    other.goto(status.url)
    expect(other.locator("body")).to_have_attribute("data-state", "sign-in form")
    users_browser.close()
    another_browser.close()
    service.stop()
    assert service.link() is None
    # (not `no_leftover_children`: the browser's own processes come and go)
    assert status.pid is not None and not process_alive(status.pid)


def old_open_webui(fake_docker: FakeDocker, *env: str) -> str:
    """Open WebUI on the app's volume as an earlier version of the app (or the user) ran it."""
    port = free_port()
    fake_docker.user_runs(
        "--name", "earlier-open-webui", "--publish", f"127.0.0.1:{port}:8080",
        "--volume", f"{VOLUME_NAME}:/app/backend/data", *[a for e in env for a in ("--env", e)], IMAGE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    assert wait_for(lambda: http_ok(f"{url}/health"), timeout_s=20)
    return url


def remove_old_open_webui() -> None:
    subprocess.run(["docker", "rm", "--force", "earlier-open-webui"], check=True, capture_output=True)


@pytest.mark.usefixtures("no_leftover_children")
def test_data_made_with_the_login_off_is_taken_over(fake_docker: FakeDocker, app_paths: AppPaths) -> None:
    old = old_open_webui(fake_docker, "WEBUI_AUTH=False")
    anyone = sign_in(old, "", "")  # with its login off, whoever asks is its admin
    assert (anyone.json()["email"], anyone.json()["role"]) == ("admin@localhost", "admin")
    remove_old_open_webui()

    service = service_for(app_paths, docker_backend())
    status = service.start(ENDPOINT)
    assert status.state is OpenWebUIState.RUNNING and status.url is not None, status
    assert "was made with its login off" in status.message and "your chats are kept" in status.message
    assert fake_docker.container_env()["ENABLE_SIGNUP"] == "False"
    keys = keys_of(app_paths)
    assert keys["email"] == "admin@localhost" and keys["password"] != "admin"
    assert sign_in(status.url, "admin@localhost", "admin").status_code == 400
    assert sign_in(status.url, keys["email"], keys["password"]).json()["role"] == "admin"
    link = service.link()
    assert link is not None
    assert session_of(status.url, httpx.get(link, timeout=10).cookies["token"])["email"] == "admin@localhost"
    service.stop()


@pytest.mark.usefixtures("no_leftover_children")
def test_data_with_accounts_the_app_did_not_make_is_reported(
    fake_docker: FakeDocker, app_paths: AppPaths
) -> None:
    old = old_open_webui(fake_docker, "WEBUI_AUTH=True", "WEBUI_SECRET_KEY=theirs")
    signup = {"name": "Me", "email": "me@example.com", "password": "my own"}
    assert httpx.post(f"{old}/api/v1/auths/signup", json=signup, timeout=10).json()["role"] == "admin"
    remove_old_open_webui()

    service = service_for(app_paths, docker_backend())
    status = service.start(ENDPOINT)
    assert status.state is OpenWebUIState.RUNNING and status.url is not None, status
    assert f"Open WebUI's data (the Docker volume {VOLUME_NAME}) has accounts" in status.message
    assert "move that data away" in status.message
    assert service.link() == status.url, "the plain address: the user signs in with their own account"
    assert sign_in(status.url, "me@example.com", "my own").status_code == 200
    service.stop()


@pytest.mark.usefixtures("no_leftover_children")
def test_the_next_launch_removes_the_container_a_killed_run_left(
    fake_docker: FakeDocker, tmp_path: Path
) -> None:
    """A container is the Docker engine's, not the app's child: killed hard, the app leaves it
    running; the run record names it, so the next launch finds it and removes it."""
    with RemoteStandIn() as endpoint:
        env = {"BASE_URL": endpoint.base_url, "FOUNDRY_DESK_OPEN_WEBUI_PORT": str(free_port())}
        killed = Headless(tmp_path / "home", env, "--open-webui")
        try:
            killed.wait_for_line(r"open-webui: running: ")
        finally:
            killed.finish(signal.SIGKILL)
        left = fake_docker.containers()[CONTAINER_NAME]["pid"]
        assert psutil.Process(left).status() != psutil.STATUS_ZOMBIE

        next_launch = Headless(tmp_path / "home", env, "--open-webui")
        try:
            next_launch.wait_for_line(
                rf"Removed Open WebUI's container {CONTAINER_NAME}, left running by a run that crashed\."
            )
            next_launch.wait_for_line(r"open-webui: running: ")
        finally:
            code = next_launch.finish()
    assert code == 0 and fake_docker.containers() == {}
    assert not process_alive(left)
