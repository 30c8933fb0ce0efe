"""The chat server as a supervised service of the app: its command, its probe, start and stop."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from desktop.config import Settings
from desktop.files import read_json
from desktop.paths import AppPaths, self_command
from desktop.probe import child_serves
from desktop.runrecord import RunRecord
from desktop.runsecret import RunSecret
from desktop.supervisor import RestartPolicy, ServiceSpec, ServiceStatus, Supervisor

SERVICE_NAME = "chat"


def chat_spec(
    settings: Settings, paths: AppPaths, secret: RunSecret, env: Mapping[str, str] | None = None
) -> ServiceSpec:
    """The supervised chat server on 127.0.0.1 (`chat_port`, else a free port), open to holders
    of the run's `secret`. It writes the port it listens on to `chat_port_file(paths)`."""
    from desktop.chat.server import (  # the child's module: its imports are the child's
        SETTINGS_ENV,
        settings_to_env,
    )

    port_file = chat_port_file(paths)
    command = self_command(
        "chat-server",
        "--port", str(settings.chat_port),
        "--port-file", str(port_file),
        "--status-file", str(paths.runtime_status_file),
        "--data-dir", str(paths.data_dir / "chat"),
        "--app-root", str(paths.state_dir / "chat"),
        "--settings-file", str(paths.settings_file),
        "--files-index", str(paths.files_index_file),
        "--files-status", str(paths.files_status_file),
    )  # fmt: skip
    return ServiceSpec(
        name=SERVICE_NAME,
        command=command,
        probe=lambda pid: (
            (port := listening_port(port_file, pid)) is not None
            and child_serves(pid, f"http://127.0.0.1:{port}/health", timeout_s=3.0)
        ),
        env={**(env or {}), **secret.env, SETTINGS_ENV: settings_to_env(settings)},
        start_timeout_s=60.0,
        stop_timeout_s=5.0,
    )


def chat_port_file(paths: AppPaths) -> Path:
    return paths.state_dir / "chat-port.json"


def listening_port(port_file: Path, pid: int) -> int | None:
    """The port the chat server with `pid` wrote that it listens on (None: it has not yet)."""
    written = read_json(port_file)
    if not isinstance(written, dict) or written.get("pid") != pid:
        return None
    port = written.get("port")
    return port if isinstance(port, int) else None


class ChatServer:
    """The chat server under its own supervisor; `on_change` is told each change of its state."""

    def __init__(
        self,
        settings: Settings,
        paths: AppPaths,
        secret: RunSecret,
        policy: RestartPolicy | None = None,
        *,
        on_change: Callable[[ServiceStatus], None] | None = None,
    ) -> None:
        self.settings = settings
        self.paths = paths
        self.secret = secret
        self.policy = policy or RestartPolicy(
            limit=settings.restart_limit, window_s=settings.restart_window_s
        )
        self.supervisor: Supervisor | None = None
        self._on_change = on_change

    @property
    def port(self) -> int | None:
        """The port the running chat server listens on (None before it said)."""
        pid = self.supervisor.status.pid if self.supervisor is not None else None
        return listening_port(chat_port_file(self.paths), pid) if pid is not None else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def link(self) -> str:
        """A new one-time link that opens the chat in a browser of the user's."""
        return self.secret.chat_link(self.url)

    def start(self, record: RunRecord | None = None) -> None:
        if self.supervisor is not None:
            return
        env = record.child_env if record is not None else {}
        self.supervisor = Supervisor(
            chat_spec(self.settings, self.paths, self.secret, env),
            self.paths.log_dir,
            self.policy,
            on_change=self._on_change,
            on_spawn=record.add_child if record is not None else None,
            on_exit=record.remove_child if record is not None else None,
        )
        self.supervisor.start()

    def stop(self) -> None:
        supervisor, self.supervisor = self.supervisor, None
        if supervisor is not None:
            supervisor.stop()
