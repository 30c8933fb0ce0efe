"""The services' state in words: the tray's line, the terminal's lines, what notifications compare.

One place for how a state reads to the user, so the tray and headless mode say the same things.
"""

from __future__ import annotations

from desktop.config import Settings
from desktop.loopback import on_this_computer
from desktop.runtime.status import RuntimeState, RuntimeStatus
from desktop.shell.notify import Snapshot, model_choice_hint
from desktop.shell.tray import ShellState, ShellStatus
from desktop.stack import StackStatus
from desktop.supervisor import ServiceState, ServiceStatus

MODEL_PATH_HINT = "To serve a model folder of your own: foundry-desk --headless --model-path <folder>"


def shell_status(status: StackStatus, settings: Settings, busy: str | None) -> ShellStatus:  # noqa: PLR0911
    """What the icon and the tooltip say for the services' state."""
    if status.failed:
        failed = status.failed[0]
        return ShellStatus(ShellState.ERROR, f"{failed.name} failed: {failed.message}")
    if busy:
        return ShellStatus(ShellState.WORKING, busy)
    if settings.base_url:
        attached = status.attached
        if attached is None or attached.models is None:
            if settings.offline and not on_this_computer(settings.base_url):
                return ShellStatus(ShellState.ERROR, f"Offline mode: {settings.base_url} is not local")
            return ShellStatus(ShellState.ERROR, f"Not reachable: {settings.base_url}")
        return ShellStatus(ShellState.READY, f"Ready: {', '.join(attached.models) or 'attached'}")
    runtime = status.runtime
    if runtime is None:
        return ShellStatus(ShellState.STARTING, "Starting the model runtime…")
    if runtime.state is RuntimeState.DOWNLOADING:
        percent = runtime.progress or 0.0
        return ShellStatus(ShellState.DOWNLOADING, f"Downloading {percent:.0f}%", progress=percent)
    if runtime.state is RuntimeState.READY:
        return ShellStatus(ShellState.READY, f"Ready: {runtime.model_alias or runtime.model_id}")
    if runtime.state is RuntimeState.NO_MODEL:
        return ShellStatus(ShellState.ERROR, f"No model: {model_choice_hint(runtime.download_alias)}")
    if runtime.state is RuntimeState.FAILED:
        return ShellStatus(ShellState.ERROR, runtime.message or runtime.state.value)
    if runtime.state is RuntimeState.LOADING:
        return ShellStatus(ShellState.STARTING, f"Loading {runtime.model_alias or 'the model'}…")
    return ShellStatus(ShellState.STARTING, runtime.message or "Starting…")


def snapshot(status: StackStatus) -> Snapshot:
    """What the notifications compare from one change to the next."""
    failed = frozenset(service.name for service in status.failed)
    runtime = status.runtime
    if runtime is None:
        return Snapshot(failed_services=failed)
    model = runtime.model_alias or runtime.model_id
    return Snapshot(runtime.state.value, model, runtime.message, failed, runtime.download_alias)


def describe(service: ServiceStatus, runtime: RuntimeStatus | None) -> str:
    """The line shown for this combination of process state and runtime state."""
    if service.state is not ServiceState.RUNNING or runtime is None:
        detail = f": {service.message}" if service.message else ""
        return f"runtime host {service.state.value}{detail}"
    if runtime.state is RuntimeState.DOWNLOADING:
        return f"downloading: {runtime.message} {runtime.progress or 0:.0f}%"
    if runtime.state is RuntimeState.READY:
        lines = [
            f"ready: {runtime.message}",
            f"  base_url: {runtime.base_url}",
            f"  model:    {runtime.model_id}",
        ]
        if runtime.device:
            lines.append(f"  device:   {runtime.device}")
        return "\n".join(lines)
    if runtime.state is RuntimeState.NO_MODEL:
        return f"no model: {runtime.message}\n  {MODEL_PATH_HINT}"
    return f"{runtime.state.value.replace('_', ' ')}: {runtime.message}"


def describe_attached(status: StackStatus) -> str:
    attached = status.attached
    assert attached is not None
    if attached.models is None:
        return f"unreachable: {attached.problem}"
    listed = ", ".join(attached.models) or "none"
    return f"ready: attached to {attached.base_url}\n  base_url: {attached.base_url}\n  models:   {listed}"
