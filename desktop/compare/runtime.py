"""The runtime a comparison from the command line uses: the running app's, when it serves one of
the models compared, else one started for the comparison and stopped after it (the same service
stack the app runs, without the chat)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from desktop.compare.sides import CompareRefused, is_remote, serves
from desktop.config import Settings
from desktop.paths import AppPaths
from desktop.probe import wait_for
from desktop.process import process_alive
from desktop.runrecord import AlreadyRunning
from desktop.runsecret import RunSecret
from desktop.runtime.service import SETTLED, RuntimeClient
from desktop.runtime.status import RuntimeState, RuntimeStatus
from desktop.stack import ServiceStack

READY_TIMEOUT_S = 1800.0
"""How long a runtime of our own may take to serve the first model: a download included."""


def apps_runtime(paths: AppPaths) -> RuntimeClient | None:
    """The running app's runtime, when one serves a model now (its secret opens its control API)."""
    secret = RunSecret.read(paths.state_dir)
    if secret is None:
        return None
    client = RuntimeClient(paths.runtime_status_file, secret)
    status = client.status()
    return (
        client
        if status is not None and status.state is RuntimeState.READY and process_alive(status.pid)
        else None
    )


@contextlib.contextmanager
def runtime_for(
    names: Sequence[str], settings: Settings, paths: AppPaths, say: Callable[[str], None]
) -> Iterator[RuntimeClient | None]:
    """A runtime that serves one of the local models of `names` (None when all are remote, or
    with `base_url`: the local models are then that endpoint's)."""
    local = [name for name in names if not is_remote(name)]
    if not local or settings.base_url:  # all remote, or models of the endpoint configured (BASE_URL)
        yield None
        return
    running = apps_runtime(paths)
    if running is not None:
        status = running.status()
        if any(serves(status, name) for name in local):
            yield running
            return
        raise CompareRefused(
            f"The running app serves {status.model_alias if status else 'another model'}: compare that "
            "one with another, or choose one of these models in the app first."
        )
    stack = ServiceStack(_serving(settings, local[0]), paths, chat_factory=None, say=say)
    try:
        stack.claim()
    except AlreadyRunning as error:
        raise CompareRefused(f"{error} Its model runtime is not ready; try again in a moment.") from None
    try:
        stack.start()
        _wait_ready(stack, say)
        yield stack.client
    finally:
        stack.stop()


def _serving(settings: Settings, name: str) -> Settings:
    """`settings` with `name` (an alias, an id or a folder) as the model the runtime serves."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        return replace(settings, model_path=folder.resolve(), base_url=None, use_foundry_service=False)
    return replace(settings, model=name, model_path=None, base_url=None, use_foundry_service=False)


def _wait_ready(stack: ServiceStack, say: Callable[[str], None]) -> RuntimeStatus:
    """Wait for the runtime's first model, saying what it does meanwhile (a download's progress)."""
    said = [""]

    def settled() -> RuntimeStatus | None:
        status = stack.status.runtime
        if status is None:
            return None
        if status.message and status.message != said[0] and status.state is not RuntimeState.READY:
            said[0] = status.message
            progress = f" {status.progress:.0f} %" if status.progress is not None else ""
            say(f"{status.message}{progress}")
        return status if status.state in SETTLED else None

    status = wait_for(settled, READY_TIMEOUT_S, interval_s=0.1)
    if status is None:
        raise CompareRefused("The model runtime did not become ready.")
    if status.state is not RuntimeState.READY:
        raise CompareRefused(status.message or "The model runtime serves no model.")
    return status
