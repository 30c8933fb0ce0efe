"""The indexer as a supervised service of the app: its command and its probe."""

from __future__ import annotations

from collections.abc import Callable

from desktop.config import Settings
from desktop.documents.library import IndexingStatus
from desktop.paths import AppPaths, self_command
from desktop.runrecord import RunRecord
from desktop.supervisor import RestartPolicy, ServiceSpec, ServiceStatus, Supervisor

SERVICE_NAME = "files"


def indexer_spec(paths: AppPaths, env: dict[str, str]) -> ServiceSpec:
    """The indexer child; it is up once it has published a status with its pid."""
    status_file = paths.files_status_file
    command = self_command(
        "files-indexer",
        "--index", str(paths.files_index_file),
        "--status-file", str(status_file),
        "--runtime-status", str(paths.runtime_status_file),
    )  # fmt: skip
    return ServiceSpec(
        name=SERVICE_NAME,
        command=command,
        probe=lambda pid: (status := IndexingStatus.read(status_file)) is not None and status.pid == pid,
        env=env,
        start_timeout_s=30.0,
        stop_timeout_s=5.0,
    )


def supervise_indexer(
    settings: Settings, paths: AppPaths, record: RunRecord, on_change: Callable[[ServiceStatus], None]
) -> Supervisor:
    """The indexer under a supervisor, its process kept in the run record."""
    return Supervisor(
        indexer_spec(paths, dict(record.child_env)),
        paths.log_dir,
        RestartPolicy(limit=settings.restart_limit, window_s=settings.restart_window_s),
        on_change=on_change,
        on_spawn=record.add_child,
        on_exit=record.remove_child,
    )
