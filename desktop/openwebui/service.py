"""Open WebUI as a service of the app: start, stop, status, open and logs, with or without a GUI.

Two ways to run it, one behaviour: the Docker image (a named container the app creates, labels,
and alone removes) or an `open-webui` pip install (a child process under the supervisor). Either
way it listens on 127.0.0.1 only, talks to the app's OpenAI-compatible endpoint, and reads that
endpoint from its environment on every start (persistent config off), so a new model or port is
picked up by a restart. It never probes for Ollama and never downloads anything by itself.
"""

from __future__ import annotations

import enum
import time
import webbrowser
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from desktop import compat
from desktop.config import Settings
from desktop.openwebui.docker import DockerCli, DockerError
from desktop.paths import AppPaths
from desktop.probe import child_serves, http_ok, in_use_note, pick_port
from desktop.supervisor import RestartPolicy, ServiceSpec, ServiceState, Supervisor

CONTAINER_NAME = "foundry-desk-open-webui"
VOLUME_NAME = "foundry-desk-open-webui"
"""Named volume for Open WebUI's data: chats survive restarts and re-creation of the container."""
OWNER_LABEL = "io.foundry-desk.owner"
CONTAINER_PORT = 8080
START_TIMEOUT_S = 300.0
"""Open WebUI's first start (database migrations) takes a while on a laptop."""


class OpenWebUIState(enum.Enum):
    UNAVAILABLE = "unavailable"
    """Neither Docker nor an `open-webui` command can run it; the message says what to install."""
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"


@dataclass(frozen=True)
class OpenWebUIStatus:
    state: OpenWebUIState
    message: str = ""
    url: str | None = None
    backend: str | None = None
    log_tail: tuple[str, ...] = ()


@dataclass(frozen=True)
class Endpoint:
    """The OpenAI-compatible endpoint Open WebUI should use."""

    base_url: str
    api_key: str


def open_webui_environment(base_url: str, api_key: str) -> dict[str, str]:
    """Settings for Open WebUI: our endpoint, nothing else, nothing remembered, nothing sent out."""
    return {
        "OPENAI_API_BASE_URL": base_url,
        "OPENAI_API_KEY": api_key,
        "ENABLE_OPENAI_API": "True",
        "ENABLE_OLLAMA_API": "False",
        "ENABLE_PERSISTENT_CONFIG": "False",
        "WEBUI_AUTH": "False",
        "OFFLINE_MODE": "True",
        "HF_HUB_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "DO_NOT_TRACK": "True",
        "SCARF_NO_ANALYTICS": "True",
    }


class Backend(Protocol):
    name: str

    def start(self, endpoint: Endpoint) -> OpenWebUIStatus: ...

    def stop(self) -> OpenWebUIStatus: ...

    def status(self) -> OpenWebUIStatus: ...

    def logs(self, lines: int) -> list[str]: ...


class DockerBackend:
    """Open WebUI in a container named `CONTAINER_NAME`, labelled as ours."""

    name = "docker"

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

    def start(self, endpoint: Endpoint) -> OpenWebUIStatus:
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
            self.cli.run_detached(self.run_arguments(endpoint))
        except DockerError as error:
            return self._failed(str(error))
        return self._wait_until_healthy(note)

    def run_arguments(self, endpoint: Endpoint) -> list[str]:
        """Everything after `docker run -d`: loopback only, our label, our volume, our endpoint."""
        arguments = ["--name", CONTAINER_NAME, "--label", f"{OWNER_LABEL}=foundry-desk"]
        base_url = endpoint.base_url
        environment = open_webui_environment(base_url, endpoint.api_key)
        if self.host_network:
            # Shares the host's network: the endpoint on 127.0.0.1 is reachable as it is, and the
            # UI itself is told to listen on 127.0.0.1 only.
            arguments += ["--network", "host"]
            environment |= {"HOST": "127.0.0.1", "PORT": str(self.port)}
        else:
            arguments += [
                "--publish", f"127.0.0.1:{self.port}:{CONTAINER_PORT}",
                "--add-host", "host.docker.internal:host-gateway",
            ]  # fmt: skip
            environment["OPENAI_API_BASE_URL"] = as_seen_from_container(base_url)
        arguments += ["--volume", f"{VOLUME_NAME}:/app/backend/data"]
        for key, value in sorted(environment.items()):
            arguments += ["--env", f"{key}={value}"]
        return [*arguments, self.image]

    def _wait_until_healthy(self, note: str) -> OpenWebUIStatus:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if http_ok(f"{self.url}/health", timeout_s=2.0):
                return OpenWebUIStatus(
                    OpenWebUIState.RUNNING, f"Open WebUI is running at {self.url}{note}", self.url, self.name
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
            return self._failed(f"Open WebUI's container exited with code {state.exit_code}.")
        if http_ok(f"{self.url}/health", timeout_s=2.0):
            return OpenWebUIStatus(
                OpenWebUIState.RUNNING, f"Open WebUI is running at {self.url}", self.url, self.name
            )
        return OpenWebUIStatus(OpenWebUIState.STARTING, "Open WebUI is starting.", self.url, self.name)

    def logs(self, lines: int) -> list[str]:
        try:
            return self.cli.logs(CONTAINER_NAME, lines)
        except DockerError as error:
            return [str(error)]

    def _remove_ours(self) -> bool:
        """Stop and remove our container; refuse to touch a container of the same name not ours."""
        state = self.cli.inspect(CONTAINER_NAME)
        if state is None:
            return False
        if not self._is_ours(state.labels):
            raise DockerError(
                f"A container named {CONTAINER_NAME} exists that Foundry Desk did not create; "
                "it was left alone. Rename or remove it to run Open WebUI from Foundry Desk."
            )
        if state.running:
            self.cli.stop(CONTAINER_NAME)
        self.cli.remove(CONTAINER_NAME)
        return True

    @staticmethod
    def _is_ours(labels: Mapping[str, str]) -> bool:
        return labels.get(OWNER_LABEL) == "foundry-desk"

    def _failed(self, message: str, state: OpenWebUIState = OpenWebUIState.FAILED) -> OpenWebUIStatus:
        tail = tuple(self.logs(20)) if state is OpenWebUIState.FAILED else ()
        return OpenWebUIStatus(state, message, backend=self.name, log_tail=tail)


def as_seen_from_container(base_url: str) -> str:
    """The host's loopback, as a container under Docker Desktop reaches it."""
    parts = urlsplit(base_url)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        return base_url
    netloc = "host.docker.internal" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class PipBackend:
    """`open-webui serve` as a supervised child process of the app."""

    name = "pip"

    def __init__(
        self, executable: str, port: int, paths: AppPaths, policy: RestartPolicy | None = None
    ) -> None:
        self.executable = executable
        self.preferred_port = port
        self.port = port
        self.paths = paths
        self.policy = policy or RestartPolicy()
        self._supervisor: Supervisor | None = None
        self._note = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, endpoint: Endpoint) -> OpenWebUIStatus:
        self.stop()
        self.port = pick_port(self.preferred_port)
        self._note = in_use_note(self.preferred_port, self.port)
        data_dir = self.paths.data_dir / "open-webui"
        data_dir.mkdir(parents=True, exist_ok=True)
        url = self.url
        spec = ServiceSpec(
            name="open-webui",
            command=[self.executable, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            probe=lambda pid: child_serves(pid, f"{url}/health", timeout_s=2.0),
            env={**open_webui_environment(endpoint.base_url, endpoint.api_key), "DATA_DIR": str(data_dir)},
            cwd=data_dir,  # where it keeps its generated secret key
            start_timeout_s=START_TIMEOUT_S,
        )
        self._supervisor = Supervisor(spec, self.paths.log_dir, self.policy)
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
        if service.state is ServiceState.RUNNING:
            message = f"Open WebUI is running at {self.url}{self._note}"
            return OpenWebUIStatus(OpenWebUIState.RUNNING, message, self.url, self.name)
        if service.state is ServiceState.FAILED:
            return OpenWebUIStatus(
                OpenWebUIState.FAILED,
                f"Open WebUI failed: {service.message}",
                None,
                self.name,
                service.log_tail,
            )
        return OpenWebUIStatus(
            OpenWebUIState.STARTING, f"Open WebUI is {service.state.value}.", self.url, self.name
        )

    def logs(self, lines: int) -> list[str]:
        from desktop.process import read_tail

        return read_tail(
            self._supervisor.log_file if self._supervisor else self.paths.log_dir / "open-webui.log", lines
        )


NOTHING_TO_RUN_IT = (
    "Open WebUI needs Docker or a pip install. Install Docker (Docker Desktop, or docker.io on "
    "Linux) and run `docker pull {image}` while online, or `pip install open-webui` "
    "(Python 3.11/3.12) and set open_webui_command if it is not on PATH."
)


class OpenWebUI:
    """The service the app and the tray use; picks the backend on first use."""

    def __init__(self, settings: Settings, paths: AppPaths, backend: Backend | None = None) -> None:
        self.settings = settings
        self.paths = paths
        self._backend = backend

    def backend(self) -> Backend | None:
        """Docker when it can run the image, else an installed `open-webui`, else Docker for its
        messages; None when neither is installed."""
        if self._backend is None:
            self._backend = choose_backend(self.settings, self.paths)
        return self._backend

    def start(self, endpoint: Endpoint) -> OpenWebUIStatus:
        backend = self.backend()
        if backend is None:
            return self._unavailable()
        return backend.start(endpoint)

    def stop(self) -> OpenWebUIStatus:
        backend = self.backend()
        return backend.stop() if backend else self._unavailable()

    def status(self) -> OpenWebUIStatus:
        backend = self.backend()
        return backend.status() if backend else self._unavailable()

    def logs(self, lines: int = 50) -> list[str]:
        backend = self.backend()
        return backend.logs(lines) if backend else []

    def open(self) -> bool:
        """Open the UI in the user's browser; False when it is not running."""
        status = self.status()
        if status.state is not OpenWebUIState.RUNNING or status.url is None:
            return False
        return webbrowser.open(status.url)

    def _unavailable(self) -> OpenWebUIStatus:
        return OpenWebUIStatus(
            OpenWebUIState.UNAVAILABLE, NOTHING_TO_RUN_IT.format(image=self.settings.open_webui_image)
        )


def choose_backend(settings: Settings, paths: AppPaths) -> Backend | None:
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
    pip_backend = PipBackend(executable, settings.open_webui_port, paths) if executable else None
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
