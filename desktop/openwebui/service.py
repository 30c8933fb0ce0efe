"""Open WebUI as a service of the app: start, stop, status, open and logs, with or without a GUI.

Two ways to run it, one behaviour: the Docker image (a named container the app creates, labels,
and alone removes) or an `open-webui` pip install (a child process under the supervisor). Either
way it listens on 127.0.0.1 only, talks to the app's OpenAI-compatible endpoint, and reads that
endpoint from its environment on every start (persistent config off), so a new model or port is
picked up by a restart. It never probes for Ollama and never downloads anything by itself.

Only the user gets in: its login is on, with an account the app makes and signs in with
(`account`, `door`: one click from the tray), and no other web page may use it from the browser
(CORS allows Open WebUI's own address only). Its state, address and process (or container) are in
the run record, for `--status` and for the next launch.
"""

from __future__ import annotations

import enum
import threading
import time
import webbrowser
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from desktop import compat
from desktop.config import Settings
from desktop.openwebui import door
from desktop.openwebui.account import AccountCheck, ApiError, AuthApi, KeyFile, Session, ensure_account
from desktop.openwebui.docker import DockerCli, DockerError
from desktop.paths import AppPaths
from desktop.ports import in_use_note, pick_port
from desktop.probe import child_serves, http_ok
from desktop.runrecord import RunRecord, live_services
from desktop.runsecret import RunSecret
from desktop.supervisor import RestartPolicy, ServiceSpec, ServiceState, Supervisor

CONTAINER_NAME = "foundry-desk-open-webui"
VOLUME_NAME = "foundry-desk-open-webui"
"""Named volume for Open WebUI's data: chats survive restarts and re-creation of the container."""
OWNER_LABEL = "io.foundry-desk.owner"
CONTAINER_PORT = 8080
START_TIMEOUT_S = 300.0
"""Open WebUI's first start (database migrations) takes a while on a laptop."""
SERVICE_NAME = "open-webui"
"""Its name in the run record and in the pip backend's log file."""
SECRET_SETTINGS = ("WEBUI_SECRET_KEY",)
"""Settings given to Docker by name only, so that no command line shows them."""
TRY_AGAIN = "Fix what its log says, then start it again (the tray: Restart Open WebUI)."


class OpenWebUIState(enum.Enum):
    UNAVAILABLE = "unavailable"
    """Neither Docker nor an `open-webui` command can run it; the message says what to install."""
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    """It stopped by itself and is started again after a pause (pip: its supervisor does)."""
    FAILED = "failed"


@dataclass(frozen=True)
class OpenWebUIStatus:
    state: OpenWebUIState
    message: str = ""
    url: str | None = None
    backend: str | None = None
    log_tail: tuple[str, ...] = ()
    pid: int | None = None
    """The `open-webui serve` process (pip), while it runs."""
    container: str | None = None
    """The container's name (Docker), while it exists."""
    restarts: int = 0
    """Times it stopped by itself lately and was started again (pip)."""


@dataclass(frozen=True)
class Endpoint:
    """The OpenAI-compatible endpoint Open WebUI should use."""

    base_url: str
    api_key: str


@dataclass(frozen=True)
class Access:
    """Who gets into Open WebUI: the app's account only."""

    secret_key: str = field(repr=False)
    """Signs Open WebUI's sessions; the same at every start (`account.KeyFile`)."""
    signup_open: bool = False
    """Only when Open WebUI has no data yet: the app's account is then its first, and Open WebUI
    turns signup off by itself once it has one (and older versions let no first account in
    without signup)."""


def open_webui_environment(base_url: str, api_key: str, port: int, access: Access) -> dict[str, str]:
    """Settings for Open WebUI: our endpoint, nothing else, nothing remembered, nothing sent out;
    its login on, and no web page but its own (on `port`) let in by CORS."""
    return {
        "OPENAI_API_BASE_URL": base_url,
        "OPENAI_API_KEY": api_key,
        "ENABLE_OPENAI_API": "True",
        "ENABLE_OLLAMA_API": "False",
        "ENABLE_PERSISTENT_CONFIG": "False",
        "WEBUI_AUTH": "True",
        "WEBUI_SECRET_KEY": access.secret_key,
        "ENABLE_SIGNUP": str(access.signup_open),
        "JWT_EXPIRES_IN": "4w",
        "CORS_ALLOW_ORIGIN": f"http://127.0.0.1:{port};http://localhost:{port}",
        "OFFLINE_MODE": "True",
        "HF_HUB_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "DO_NOT_TRACK": "True",
        "SCARF_NO_ANALYTICS": "True",
    }


class Backend(Protocol):
    name: str
    poll_interval_s: float
    restarts_itself: bool
    """True when the backend starts Open WebUI again after it stopped by itself (pip: its
    supervisor); else the stack does (`stack.ServiceStack`), with the same policy."""
    """How often a watcher may ask `status()` (Docker's costs two `docker` commands)."""

    @property
    def log_location(self) -> str:
        """Where its log is: a file, or the command that shows it."""
        ...

    @property
    def data_place(self) -> str:
        """Where its data (accounts, chats) is, in words."""
        ...

    def has_data(self) -> bool:
        """Whether Open WebUI has started here before (it has a database)."""
        ...

    def start(self, endpoint: Endpoint, access: Access) -> OpenWebUIStatus: ...

    def stop(self) -> OpenWebUIStatus: ...

    def status(self) -> OpenWebUIStatus: ...

    def logs(self, lines: int) -> list[str]: ...


class DockerBackend:
    """Open WebUI in a container named `CONTAINER_NAME`, labelled as ours."""

    name = "docker"
    poll_interval_s = 2.0
    restarts_itself = False
    log_location = f"docker logs {CONTAINER_NAME}"
    data_place = f"the Docker volume {VOLUME_NAME}"

    def __init__(
        self,
        cli: DockerCli,
        image: str,
        port: int,
        host_network: bool = compat.DOCKER_USES_HOST_NETWORK,
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        self.cli = cli
        self.image = image
        self.preferred_port = port
        self.port = port
        self.host_network = host_network
        self.start_timeout_s = start_timeout_s

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def has_data(self) -> bool:
        try:
            return self.cli.has_volume(VOLUME_NAME)
        except DockerError:
            return False

    def start(self, endpoint: Endpoint, access: Access) -> OpenWebUIStatus:
        try:
            self.cli.engine_version()
        except DockerError as error:
            return self._failed(str(error), state=OpenWebUIState.UNAVAILABLE)
        try:
            if not self.cli.has_image(self.image):
                return self._failed(
                    f"The Open WebUI image is not on this machine (the app never downloads it by itself). "
                    f"While online, run: docker pull {self.image}",
                    state=OpenWebUIState.UNAVAILABLE,
                )
            self._remove_ours()  # a new container, so the current endpoint is what it reads
            self.port = pick_port(self.preferred_port)
            note = in_use_note(self.preferred_port, self.port)
            environment = self.environment(endpoint, access)
            secrets = {key: environment[key] for key in SECRET_SETTINGS}
            self.cli.run_detached(self.run_arguments(environment), env=secrets)
        except DockerError as error:
            return self._failed(str(error))
        return self._wait_until_healthy(note)

    def environment(self, endpoint: Endpoint, access: Access) -> dict[str, str]:
        """The container's settings: on the host's network it is told to listen on 127.0.0.1 only;
        published, it reaches the host's endpoint by Docker Desktop's name for the host."""
        environment = open_webui_environment(endpoint.base_url, endpoint.api_key, self.port, access)
        if self.host_network:
            return environment | {"HOST": "127.0.0.1", "PORT": str(self.port)}
        return environment | {"OPENAI_API_BASE_URL": as_seen_from_container(endpoint.base_url)}

    def run_arguments(self, environment: Mapping[str, str]) -> list[str]:
        """Everything after `docker run -d`: loopback only, our label, our volume, our settings
        (secret ones by name only: the `docker` command takes their values from its environment)."""
        arguments = ["--name", CONTAINER_NAME, "--label", f"{OWNER_LABEL}=foundry-desk"]
        if self.host_network:
            # Shares the host's network: the endpoint on 127.0.0.1 is reachable as it is.
            arguments += ["--network", "host"]
        else:
            arguments += [
                "--publish", f"127.0.0.1:{self.port}:{CONTAINER_PORT}",
                "--add-host", "host.docker.internal:host-gateway",
            ]  # fmt: skip
        arguments += ["--volume", f"{VOLUME_NAME}:/app/backend/data"]
        for key, value in sorted(environment.items()):
            arguments += ["--env", key if key in SECRET_SETTINGS else f"{key}={value}"]
        return [*arguments, self.image]

    def _wait_until_healthy(self, note: str) -> OpenWebUIStatus:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if http_ok(f"{self.url}/health", timeout_s=2.0):
                message = f"Open WebUI is running at {self.url}{note}"
                return OpenWebUIStatus(
                    OpenWebUIState.RUNNING, message, self.url, self.name, container=CONTAINER_NAME
                )
            state = self.cli.inspect(CONTAINER_NAME)
            if state is None or not state.running:
                code = f" with code {state.exit_code}" if state else ""
                return self._failed(f"Open WebUI's container exited{code} while starting.")
            time.sleep(0.5)
        return self._failed(
            f"Open WebUI did not answer at {self.url}/health within {self.start_timeout_s:.0f} s."
        )

    def stop(self) -> OpenWebUIStatus:
        try:
            removed = self._remove_ours()
        except DockerError as error:
            return self._failed(str(error))
        message = "Open WebUI stopped." if removed else "Open WebUI was not running."
        return OpenWebUIStatus(OpenWebUIState.STOPPED, message, backend=self.name)

    def status(self) -> OpenWebUIStatus:
        try:
            self.cli.engine_version()
            state = self.cli.inspect(CONTAINER_NAME)
        except DockerError as error:
            return OpenWebUIStatus(OpenWebUIState.UNAVAILABLE, str(error), backend=self.name)
        if state is None or not self._is_ours(state.labels):
            return OpenWebUIStatus(OpenWebUIState.STOPPED, "Open WebUI is not running.", backend=self.name)
        if not state.running:
            failed = self._failed(f"Open WebUI's container exited with code {state.exit_code}.")
            return replace(failed, container=CONTAINER_NAME)
        running = http_ok(f"{self.url}/health", timeout_s=2.0)
        return OpenWebUIStatus(
            OpenWebUIState.RUNNING if running else OpenWebUIState.STARTING,
            f"Open WebUI is running at {self.url}" if running else "Open WebUI is starting.",
            self.url,
            self.name,
            container=CONTAINER_NAME,
        )

    def logs(self, lines: int) -> list[str]:
        try:
            return self.cli.logs(CONTAINER_NAME, lines)
        except DockerError as error:
            return [str(error)]

    def _remove_ours(self) -> bool:
        return remove_our_container(self.cli)

    @staticmethod
    def _is_ours(labels: Mapping[str, str]) -> bool:
        return is_ours(labels)

    def _failed(self, message: str, state: OpenWebUIState = OpenWebUIState.FAILED) -> OpenWebUIStatus:
        tail = tuple(self.logs(20)) if state is OpenWebUIState.FAILED else ()
        return OpenWebUIStatus(state, message, backend=self.name, log_tail=tail)


def is_ours(labels: Mapping[str, str]) -> bool:
    return labels.get(OWNER_LABEL) == "foundry-desk"


def remove_our_container(cli: DockerCli) -> bool:
    """Stop and remove our container; refuse to touch a container of the same name not ours."""
    state = cli.inspect(CONTAINER_NAME)
    if state is None:
        return False
    if not is_ours(state.labels):
        raise DockerError(
            f"A container named {CONTAINER_NAME} exists that Foundry Desk did not create; "
            "it was left alone. Rename or remove it to run Open WebUI from Foundry Desk."
        )
    if state.running:
        cli.stop(CONTAINER_NAME)
    cli.remove(CONTAINER_NAME)
    return True


def as_seen_from_container(base_url: str) -> str:
    """The host's loopback, as a container under Docker Desktop reaches it."""
    parts = urlsplit(base_url)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        return base_url
    netloc = "host.docker.internal" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class PipBackend:
    """`open-webui serve` as a supervised child process of the app, kept in the run record."""

    name = "pip"
    poll_interval_s = 0.2
    restarts_itself = True

    def __init__(
        self,
        executable: str,
        port: int,
        paths: AppPaths,
        policy: RestartPolicy | None = None,
        record: RunRecord | None = None,
    ) -> None:
        self.executable = executable
        self.preferred_port = port
        self.port = port
        self.paths = paths
        self.policy = policy or RestartPolicy()
        self.record = record
        self._supervisor: Supervisor | None = None
        self._note = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.paths.data_dir / "open-webui"

    @property
    def log_location(self) -> str:
        return str(self.paths.log_dir / f"{SERVICE_NAME}.log")

    @property
    def data_place(self) -> str:
        return str(self.data_dir)

    def has_data(self) -> bool:
        return (self.data_dir / "webui.db").exists()

    def start(self, endpoint: Endpoint, access: Access) -> OpenWebUIStatus:
        self.stop()
        self.port = pick_port(self.preferred_port)
        self._note = in_use_note(self.preferred_port, self.port)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        url = self.url
        environment = open_webui_environment(endpoint.base_url, endpoint.api_key, self.port, access)
        record = self.record
        spec = ServiceSpec(
            name=SERVICE_NAME,
            command=[self.executable, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            probe=lambda pid: child_serves(pid, f"{url}/health", timeout_s=2.0),
            env={**environment, "DATA_DIR": str(self.data_dir), **(record.child_env if record else {})},
            cwd=self.data_dir,
            start_timeout_s=START_TIMEOUT_S,
        )
        self._supervisor = Supervisor(
            spec,
            self.paths.log_dir,
            self.policy,
            on_spawn=record.add_child if record else None,
            on_exit=record.remove_child if record else None,
        )
        self._supervisor.start()
        self._supervisor.wait_for_state(
            ServiceState.RUNNING, ServiceState.FAILED, ServiceState.BACKOFF, timeout_s=START_TIMEOUT_S
        )
        return self.status()

    def stop(self) -> OpenWebUIStatus:
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is None:
            return OpenWebUIStatus(OpenWebUIState.STOPPED, "Open WebUI was not running.", backend=self.name)
        supervisor.stop()
        return OpenWebUIStatus(OpenWebUIState.STOPPED, "Open WebUI stopped.", backend=self.name)

    def status(self) -> OpenWebUIStatus:
        if self._supervisor is None:
            return OpenWebUIStatus(OpenWebUIState.STOPPED, "Open WebUI is not running.", backend=self.name)
        service = self._supervisor.status
        seen = OpenWebUIStatus(
            OpenWebUIState.STARTING, "", self.url, self.name, pid=service.pid, restarts=service.restarts
        )
        if service.state is ServiceState.RUNNING:
            message = f"Open WebUI is running at {self.url}{self._note}"
            return replace(seen, state=OpenWebUIState.RUNNING, message=message)
        if service.state is ServiceState.BACKOFF:
            message = f"Open WebUI stopped by itself ({service.message})"
            return replace(seen, state=OpenWebUIState.RESTARTING, message=message, pid=None)
        if service.state is ServiceState.FAILED:
            message = f"Open WebUI failed: {service.message}"
            return replace(seen, state=OpenWebUIState.FAILED, message=message, url=None, pid=None,
                           log_tail=service.log_tail)  # fmt: skip
        return replace(seen, message=f"Open WebUI is {service.state.value}.")

    def logs(self, lines: int) -> list[str]:
        from desktop.process import read_tail

        return read_tail(Path(self.log_location), lines)


NOTHING_TO_RUN_IT = (
    "Open WebUI needs Docker or a pip install. Install Docker (Docker Desktop, or docker.io on "
    "Linux) and run `docker pull {image}` while online, or `pip install open-webui` "
    "(Python 3.11/3.12) and set open_webui_command if it is not on PATH."
)


class OpenWebUI:
    """The service the app and the tray use; picks the backend on first use.

    With the run's `secret` it opens Open WebUI signed in (`link`); with the run's `record` it
    keeps Open WebUI's state, address and process there at every change it sees."""

    def __init__(
        self,
        settings: Settings,
        paths: AppPaths,
        backend: Backend | None = None,
        *,
        secret: RunSecret | None = None,
        record: RunRecord | None = None,
    ) -> None:
        self.settings = settings
        self.paths = paths
        self.secret = secret
        self.record = record
        self._backend = backend
        self._choosing = threading.Lock()
        self._account = AccountCheck(None, "Open WebUI is not running.")
        self._door: door.SignInDoor | None = None
        self._published: dict[str, Any] | None = None

    def backend(self) -> Backend | None:
        """Docker when it can run the image, else an installed `open-webui`, else Docker for its
        messages; None when neither is installed. Chosen once, whichever thread asks first."""
        with self._choosing:
            if self._backend is None:
                self._backend = choose_backend(self.settings, self.paths, self.record)
            return self._backend

    @property
    def poll_interval_s(self) -> float:
        backend = self.backend()
        return backend.poll_interval_s if backend else 5.0

    @property
    def restarts_itself(self) -> bool:
        backend = self.backend()
        return backend.restarts_itself if backend else True

    @property
    def log_location(self) -> str:
        backend = self.backend()
        return backend.log_location if backend else ""

    def key_file(self, backend: Backend) -> KeyFile:
        """The app's keys for the data of `backend` (a Docker volume and a pip install's folder
        are two Open WebUIs, each with its accounts)."""
        return KeyFile(self.paths.data_dir / f"open-webui-{backend.name}-keys.json")

    def start(self, endpoint: Endpoint) -> OpenWebUIStatus:
        backend = self.backend()
        if backend is None:
            return self._unavailable()
        self._close_door()
        key_file = self.key_file(backend)
        access = Access(key_file.load().secret_key, signup_open=not backend.has_data())
        status = backend.start(endpoint, access)
        if status.state is OpenWebUIState.RUNNING and status.url is not None:
            status = self._sign_in_account(status, key_file, backend.data_place)
        return self._publish(status)

    def _sign_in_account(
        self, status: OpenWebUIStatus, key_file: KeyFile, data_place: str
    ) -> OpenWebUIStatus:
        """Make sure the app's account opens it, and open the door for one-click sign-ins."""
        assert status.url is not None
        try:
            self._account = ensure_account(AuthApi(status.url), key_file, data_place)
        except ApiError as error:
            self._account = AccountCheck(None, f"Foundry Desk could not sign in to Open WebUI: {error}")
        if self._account.account is not None and self.secret is not None:
            self._door = door.SignInDoor(self.secret, self._sign_in_now)
        notice = self._account.message
        return replace(status, message=f"{status.message}. {notice}") if notice else status

    def _sign_in_now(self) -> tuple[str, Session]:
        """For the door: a new session of the app's account, at the moment of a click."""
        status = self.status()
        account = self._account.account
        if status.state is not OpenWebUIState.RUNNING or status.url is None:
            raise door.SignInError(f"it is not running now ({status.message}).")
        if account is None:
            raise door.SignInError(self._account.message)
        try:
            session = AuthApi(status.url).sign_in(account)
        except ApiError as error:
            raise door.SignInError(str(error)) from None
        if session is None:
            raise door.SignInError(f"Open WebUI refused the app's account {account.email}.")
        return status.url, session

    def stop(self) -> OpenWebUIStatus:
        backend = self.backend()
        self._close_door()
        return self._publish(backend.stop()) if backend else self._unavailable()

    def status(self) -> OpenWebUIStatus:
        backend = self.backend()
        return self._publish(backend.status()) if backend else self._unavailable()

    def logs(self, lines: int = 50) -> list[str]:
        backend = self.backend()
        return backend.logs(lines) if backend else []

    def link(self) -> str | None:
        """What opens Open WebUI in a browser: a one-time link that signs the user in, or its
        plain address when the app cannot sign in; None when it is not running."""
        status = self.status()
        if status.state is not OpenWebUIState.RUNNING or status.url is None:
            return None
        return self._door.link() if self._door is not None else status.url

    def open(self) -> bool:
        """Open the UI in the user's browser, signed in; False when it is not running."""
        link = self.link()
        return link is not None and webbrowser.open(link)

    def _close_door(self) -> None:
        entrance, self._door = self._door, None
        if entrance is not None:
            entrance.close()

    def _publish(self, status: OpenWebUIStatus) -> OpenWebUIStatus:
        """Keep what `status` says in the run record (only when it changed); gone when stopped."""
        if self.record is None:
            return status
        entry: dict[str, Any] | None = None
        if status.state not in (OpenWebUIState.STOPPED, OpenWebUIState.UNAVAILABLE):
            entry = {
                "state": status.state.value,
                "message": status.message,
                "url": status.url,
                "backend": status.backend,
                "pid": status.pid,
                "container": status.container,
                "log": self.log_location,
                "door": self._door.url if self._door is not None else None,
            }
            entry = {key: value for key, value in entry.items() if value is not None}
        if entry != self._published:
            self._published = entry
            self.record.publish(SERVICE_NAME, entry)
        return status

    def _unavailable(self) -> OpenWebUIStatus:
        return OpenWebUIStatus(
            OpenWebUIState.UNAVAILABLE, NOTHING_TO_RUN_IT.format(image=self.settings.open_webui_image)
        )


def choose_backend(settings: Settings, paths: AppPaths, record: RunRecord | None = None) -> Backend | None:
    import shutil

    docker = DockerCli.find()
    executable = shutil.which(settings.open_webui_command) or (
        settings.open_webui_command if Path(settings.open_webui_command).is_file() else None
    )
    docker_backend = (
        DockerBackend(docker, settings.open_webui_image, settings.open_webui_port)
        if docker is not None
        else None
    )
    policy = RestartPolicy(limit=settings.restart_limit, window_s=settings.restart_window_s)
    pip_backend = (
        PipBackend(executable, settings.open_webui_port, paths, policy, record) if executable else None
    )
    if settings.open_webui_backend == "docker":
        return docker_backend
    if settings.open_webui_backend == "pip":
        return pip_backend
    if docker_backend is not None and pip_backend is not None and not _docker_can_run(docker_backend):
        return pip_backend
    return docker_backend or pip_backend


def _docker_can_run(backend: DockerBackend) -> bool:
    try:
        backend.cli.engine_version()
        return backend.cli.has_image(backend.image)
    except DockerError:
        return False


def recorded_status(paths: AppPaths) -> dict[str, Any] | None:
    """For `--status`: what the running app's record says of Open WebUI, checked against its
    health now, with a new link that opens it signed in; None when no running app has started it."""
    entry = live_services(paths.run_record_file).get(SERVICE_NAME)
    if not isinstance(entry, dict):
        return None
    report = dict(entry)
    door_url = report.pop("door", None)
    if report.get("state") == OpenWebUIState.RUNNING.value:
        if not http_ok(f"{report.get('url')}/health", timeout_s=2.0):
            report["state"] = "not answering"
        elif isinstance(door_url, str) and (secret := RunSecret.read(paths.state_dir)) is not None:
            report["sign_in_link"] = door.link(door_url, secret)
    return report


def clean_up_after(services: Mapping[str, Any]) -> list[str]:
    """At a launch: remove our container that a run which crashed left running (its pip process
    was killed with the run's other children). Returns what to tell the user."""
    entry = services.get(SERVICE_NAME)
    docker = DockerCli.find()
    if not isinstance(entry, dict) or entry.get("container") != CONTAINER_NAME or docker is None:
        return []
    try:
        removed = remove_our_container(docker)
    except DockerError as error:
        return [f"Open WebUI's container, left by a run that crashed, could not be removed: {error}"]
    if not removed:
        return []
    return [f"Removed Open WebUI's container {CONTAINER_NAME}, left running by a run that crashed."]
