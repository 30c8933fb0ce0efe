"""The app's side of the runtime host: how to start it, how to tell it is healthy, how to talk to it."""

from __future__ import annotations

import json
import urllib.error
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop.config import Settings
from desktop.errors import FoundryDeskError
from desktop.paths import AppPaths, self_command
from desktop.probe import http_get_json, http_ok, http_post_json, wait_for
from desktop.runrecord import RunRecord
from desktop.runsecret import RunSecret
from desktop.runtime.status import COMPANION_SETTLED, CompanionState, RuntimeState, RuntimeStatus, read_status
from desktop.supervisor import RestartPolicy, ServiceSpec, ServiceState, Supervisor

SERVICE_NAME = "runtime"
SETTLED = frozenset({RuntimeState.READY, RuntimeState.NO_MODEL, RuntimeState.FAILED})
"""States in which the runtime waits for the user rather than working towards READY."""


def runtime_spec(
    settings: Settings,
    paths: AppPaths,
    secret: RunSecret,
    *,
    model_cache_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    ask_before_download: bool = False,
) -> ServiceSpec:
    """The supervised runtime host for these settings. `ask_before_download`: the model is not
    downloaded until the user asks (the desktop app; the command line downloads at once)."""
    status_file = paths.runtime_status_file
    command = self_command(
        "runtime-host",
        "--status-file", str(status_file),
        "--port", str(settings.runtime_port),
        "--model", settings.model,
        "--model-cache-dir", str(model_cache_dir or settings.model_cache_dir or paths.model_cache_dir),
        "--data-dir", str(paths.data_dir / "runtime"),
        "--log-dir", str(paths.log_dir / "runtime"),
    )  # fmt: skip
    if settings.model_path is not None:
        command += ["--model-path", str(settings.model_path)]
    if settings.embedding_model:
        command += ["--embedding-model", settings.embedding_model]
    if not settings.allow_download:
        command.append("--no-download")
    if settings.offline:
        command.append("--offline")
    if ask_before_download:
        command.append("--ask-before-download")
    command += ["--log-level", settings.log_level]
    return ServiceSpec(
        name=SERVICE_NAME,
        command=command,
        probe=lambda pid: host_answers(status_file, pid),
        # CI=true turns the runtime's telemetry upload off: a private app sends nothing out.
        env={**(env or {}), **secret.env, "CI": "true"},
        start_timeout_s=30.0,
        stop_timeout_s=5.0,
    )


def supervise_runtime(
    settings: Settings,
    paths: AppPaths,
    record: RunRecord,
    secret: RunSecret,
    *,
    model_cache_dir: Path | None = None,
    ask_before_download: bool = False,
) -> Supervisor:
    """The runtime host under a supervisor, each of its processes kept in the run record."""
    return Supervisor(
        runtime_spec(
            settings,
            paths,
            secret,
            model_cache_dir=model_cache_dir,
            env=record.child_env,
            ask_before_download=ask_before_download,
        ),
        paths.log_dir,
        RestartPolicy(limit=settings.restart_limit, window_s=settings.restart_window_s),
        on_spawn=record.add_child,
        on_exit=record.remove_child,
    )


def live_status(supervisor: Supervisor, client: RuntimeClient) -> RuntimeStatus | None:
    """What the host running now has published; None while none runs and answers.

    The status file may still be a previous host's (killed, or not written yet by this one).
    """
    service = supervisor.status
    runtime = client.status()
    if runtime is None or runtime.pid != service.pid or service.state is not ServiceState.RUNNING:
        return None
    return runtime


def host_answers(status_file: Path, pid: int) -> bool:
    """The host with this pid published its control API, and that API says it is healthy."""
    status = read_status(status_file)
    if status is None or status.pid != pid or status.control_url is None:
        return False
    return http_ok(f"{status.control_url}/health", timeout_s=3.0)


@dataclass(frozen=True)
class ModelEntry:
    """A model the runtime can serve now."""

    id: str
    alias: str
    source: str
    """"local" (a folder of your own) or "catalog" (downloaded from the Foundry catalog)."""
    loaded: bool
    """It is the chat model."""
    companion: bool = False
    """It is the companion (`RuntimeClient.load_companion`)."""


class RuntimeRequestError(FoundryDeskError, RuntimeError):
    """The runtime host refused a request; the message says why and what to do."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        """The control API's HTTP status (e.g. 409: a switch is under way); None: no answer."""


class RuntimeClient:
    """Reads the published status and calls the host's control API (with the run's secret)."""

    def __init__(self, status_file: Path, secret: RunSecret) -> None:
        self.status_file = status_file
        self.secret = secret
        self._headers = {"Authorization": secret.authorization}

    def status(self) -> RuntimeStatus | None:
        return read_status(self.status_file)

    def models(self) -> list[ModelEntry]:
        try:
            data = http_get_json(f"{self._control_url()}/models", timeout_s=10.0, headers=self._headers)
        except (OSError, ValueError) as error:
            raise RuntimeRequestError(f"The model runtime is not answering ({error}).") from None
        return [
            ModelEntry(m["id"], m["alias"], m["source"], bool(m["loaded"]), bool(m.get("companion")))
            for m in data["data"]
        ]

    def select(self, model: str, timeout_s: float = 60.0) -> RuntimeStatus:
        """Switch the served model and wait until this switch has settled; returns its status."""
        begun = self.start_select(model)
        if begun.state in SETTLED:  # nothing to switch to: the model was being served already
            return begun
        return self.wait(lambda s: s.state in SETTLED and s.updated_at > begun.updated_at, timeout_s)

    def start_select(self, model: str) -> RuntimeStatus:
        """Ask for a switch (a download, when the model is not downloaded) without waiting for it;
        returns the status as it began. What the host published before (e.g. the end of its own
        start) is older: a wait for the switch's end compares with this one."""
        return self._post_for_status("/models/select", {"model": model})

    def retry_catalog(self) -> None:
        """With no model served: the runtime asks the catalog again and looks for its model again."""
        self._post("/catalog/retry", {})

    def load_companion(self, model: str, timeout_s: float = 60.0) -> RuntimeStatus:
        """Hold `model` (alias, id or folder, downloaded) beside the chat model, in place of the
        previous companion, and wait until that has settled: `companion_state` is "ready", or
        "one-at-a-time" when memory does not hold both (see `companion_turn`), or "failed"."""
        return self._settle_companion(self._post_for_status("/models/companion", {"model": model}), timeout_s)

    def companion_turn(self, which: str, timeout_s: float = 60.0) -> RuntimeStatus:
        """With one model at a time: load "chat" (the chat model) or "companion" and unload the
        other; waits until it has settled."""
        return self._settle_companion(
            self._post_for_status("/models/companion/turn", {"model": which}), timeout_s
        )

    def release_companion(self, timeout_s: float = 60.0) -> None:
        """Let the companion go (unloaded unless it is the chat model) and wait until it is gone."""
        begun = self._post_for_status("/models/companion/release", {})
        if begun.companion_state != CompanionState.NONE:
            self.wait(lambda s: s.companion_state == CompanionState.NONE, timeout_s)

    def _settle_companion(self, begun: RuntimeStatus, timeout_s: float) -> RuntimeStatus:
        """Wait for the end of the companion request whose answer was `begun` (as `select` does)."""
        if begun.companion_state in COMPANION_SETTLED:
            return begun
        return self.wait(
            lambda s: s.companion_state in COMPANION_SETTLED and s.updated_at > begun.updated_at, timeout_s
        )

    def _post_for_status(self, route: str, body: dict[str, str]) -> RuntimeStatus:
        """POST to a route that answers with the status as the request began."""
        begun = RuntimeStatus.from_json(self._post(route, body))
        if begun is None:
            raise RuntimeRequestError(f"The model runtime answered {route} with no status.")
        return begun

    def _post(self, route: str, body: dict[str, str]) -> Any:
        try:
            url = f"{self._control_url()}{route}"
            return http_post_json(url, body, timeout_s=15.0, headers=self._headers)
        except urllib.error.HTTPError as error:
            raise RuntimeRequestError(_error_message(error), error.code) from None
        except (OSError, ValueError) as error:
            raise RuntimeRequestError(f"The model runtime is not answering ({error}).") from None

    def wait(self, predicate: Callable[[RuntimeStatus], bool], timeout_s: float) -> RuntimeStatus:
        """Poll the status file until `predicate(status)` holds; raises TimeoutError otherwise."""

        def settled() -> RuntimeStatus | None:
            status = self.status()
            return status if status is not None and predicate(status) else None

        found = wait_for(settled, timeout_s)
        if found is None:
            last = self.status()
            raise TimeoutError(f"runtime status still {last.state.value if last else 'missing'}")
        return found

    def _control_url(self) -> str:
        status = self.status()
        if status is None or status.control_url is None:
            raise RuntimeRequestError("The model runtime is not running.")
        return status.control_url


def _error_message(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(error.read())["error"])
    except (ValueError, KeyError, OSError):
        return f"HTTP {error.code}"
    finally:
        error.close()  # it holds the connection until it is closed
