"""`foundry-desk --headless`: the supervised runtime without tray or window, for servers and tests.

It prints each change of state, and the endpoint once the model is ready, then runs until it is
interrupted (Ctrl+C / SIGTERM), when it stops every process it started. With `--open-webui` it
also prints Open WebUI's changes: up (with a link that signs the user in), stopped by itself and
restarting, running again, failed for good (with its log and what to do).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TextIO

from desktop.chat.service import ChatServer
from desktop.config import Settings
from desktop.openwebui.service import (
    TRY_AGAIN,
    Endpoint,
    OpenWebUI,
    OpenWebUIState,
    OpenWebUIStatus,
    clean_up_after,
)
from desktop.paths import AppPaths
from desktop.runrecord import AlreadyRunning, RunRecord
from desktop.runsecret import RunSecret
from desktop.runtime.attach import EndpointUnreachable, discover_foundry_app, list_endpoint_models
from desktop.runtime.service import RuntimeClient, live_status, supervise_runtime
from desktop.runtime.status import RuntimeState, RuntimeStatus
from desktop.supervisor import ServiceState, ServiceStatus, Supervisor

ATTACH_RECHECK_S = 5.0
MODEL_PATH_HINT = "To serve a model folder of your own: foundry-desk --headless --model-path <folder>"
Printer = Callable[[str], None]
EndpointHook = Callable[[str | None], None]
"""Told the endpoint's base URL whenever it is ready (again); for what follows the endpoint."""


class OpenWebUIFollower:
    """Runs Open WebUI against the current endpoint: started when the endpoint is first ready,
    restarted when it changes (another model, another port), stopped at the end; and says each
    change of its state that it sees meanwhile."""

    def __init__(self, service: OpenWebUI, api_key: str, say: Printer) -> None:
        self.service = service
        self.api_key = api_key
        self.say = say
        self._base_url: str | None = None
        self._thread: threading.Thread | None = None
        self._watcher: threading.Thread | None = None
        self._starting = threading.Event()
        self._done = threading.Event()
        self._seen: tuple[OpenWebUIState, int] | None = None
        self._went_down = False

    def follow(self, base_url: str | None) -> None:
        if base_url is None or base_url == self._base_url:
            return
        if self._starting.is_set():
            return  # a start is under way; the next report brings the change again
        self._base_url = base_url
        self._starting.set()
        self.say(f"open-webui: starting, wired to {base_url}")
        self._thread = threading.Thread(target=self._start, args=(base_url,), name="open-webui", daemon=True)
        self._thread.start()
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name="open-webui-watch", daemon=True)
            self._watcher.start()

    def _start(self, base_url: str) -> None:
        try:
            status = self.service.start(Endpoint(base_url, self.api_key))
            self._seen = None  # a new start: its state is said whatever the last one was
            self._report(status)
            link = self.service.link() if status.state is OpenWebUIState.RUNNING else None
            if link is not None and link != status.url:
                self.say(f"open-webui: open it signed in (the link works once): {link}")
        finally:
            self._starting.clear()

    def _watch(self) -> None:
        """Between starts (a start says its own outcome, and passes through `stopped`)."""
        while not self._done.wait(self.service.poll_interval_s):
            status = self.service.status() if not self._starting.is_set() else None
            if status is not None and not self._starting.is_set():
                self._report(status)

    def _report(self, status: OpenWebUIStatus) -> None:
        """Say `status` when its state (or its count of restarts) differs from the last said."""
        seen = (status.state, status.restarts)
        if seen == self._seen or (status.state is OpenWebUIState.STARTING and self._seen is not None):
            return  # (starting again after a stop by itself: the restart was said already)
        restarted = self._seen is not None and status.restarts > self._seen[1]
        self._seen = seen
        for line in self._lines(status, restarted):
            self.say(line)

    def _lines(self, status: OpenWebUIStatus, restarted: bool) -> list[str]:
        if status.state is OpenWebUIState.RUNNING:
            again = self._went_down or restarted
            self._went_down = False
            return [f"open-webui: running{' again' if again else ''}: {status.message}"]
        if status.state is OpenWebUIState.RESTARTING:
            self._went_down = True
            return [f"open-webui: restarting: {status.message}. Its log: {self.service.log_location}"]
        if status.state is OpenWebUIState.FAILED:
            self._went_down = True
            return [
                f"open-webui: failed: {status.message}",
                *(f"  | {line}" for line in status.log_tail),
                f"  Its log: {self.service.log_location}",
                f"  {TRY_AGAIN}",
            ]
        return [f"open-webui: {status.state.value}: {status.message}"]

    def stop(self) -> None:
        if self._done.is_set():
            return
        self._done.set()
        for thread in (self._thread, self._watcher):
            if thread is not None:
                thread.join()
        if self._thread is not None:
            self.say(f"open-webui: {self.service.stop().message}")


def run_headless(
    settings: Settings,
    paths: AppPaths,
    out: TextIO,
    stop: threading.Event,
    *,
    with_open_webui: bool = False,
    with_chat: bool = False,
) -> int:
    """Run until `stop` is set; returns the exit code."""
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            print(line, file=out, flush=True)

    secret = RunSecret.new()
    record = RunRecord(paths.run_record_file)
    follower = (
        OpenWebUIFollower(OpenWebUI(settings, paths, secret=secret, record=record), settings.api_key, say)
        if with_open_webui
        else None
    )
    chat = ChatServer(settings, paths, secret, say) if with_chat else None
    try:
        return _run(settings, paths, say, stop, follower, secret=secret, record=record, chat=chat)
    finally:
        if chat is not None:
            chat.stop()
        if follower is not None:
            follower.stop()
        record.release()
        secret.discard(paths.state_dir)


def _run(
    settings: Settings,
    paths: AppPaths,
    say: Printer,
    stop: threading.Event,
    follower: OpenWebUIFollower | None,
    *,
    secret: RunSecret,
    record: RunRecord,
    chat: ChatServer | None = None,
) -> int:
    on_endpoint: EndpointHook = follower.follow if follower else lambda _: None
    attached_to = settings.base_url
    app = None if attached_to else discover_foundry_app()
    if app is not None and app.base_url:
        if settings.use_foundry_service:
            say(f"Using the Foundry Local app's service at {app.service_url}.")
            attached_to = app.base_url
        else:
            say(
                f"A Foundry Local service is running at {app.service_url}. To use it instead of the "
                "built-in runtime, run with --use-foundry-service."
            )
    if attached_to:
        attached = replace(settings, base_url=attached_to)
        return _attach(attached, paths, say, stop, follower, secret=secret, record=record, chat=chat)
    cache_dir = settings.model_cache_dir or (app.cache_dir if app else None)
    if app is not None and app.cache_dir is not None and cache_dir == app.cache_dir:
        say(f"Sharing the Foundry Local app's model cache: {cache_dir}")

    if not _claim(record, say):
        return 1
    secret.save(paths.state_dir)
    supervisor = supervise_runtime(settings, paths, record, secret, model_cache_dir=cache_dir)
    supervisor.start()
    if chat is not None:
        chat.start(record)
    try:
        return report_until_stopped(
            supervisor, RuntimeClient(paths.runtime_status_file, secret), say, stop, on_endpoint
        )
    finally:
        if chat is not None:
            chat.stop()
        if follower is not None:
            follower.stop()
        supervisor.stop()
        record.release()
        say("Stopped.")


def _attach(
    settings: Settings,
    paths: AppPaths,
    say: Printer,
    stop: threading.Event,
    follower: OpenWebUIFollower | None,
    *,
    secret: RunSecret,
    record: RunRecord,
    chat: ChatServer | None,
) -> int:
    """Attach mode (to `settings.base_url`): the endpoint is someone else's; only the chat and Open
    WebUI run here (the record is claimed for Open WebUI, the one process of ours then)."""
    base_url = settings.base_url
    assert base_url is not None
    if follower is not None and not _claim(record, say):
        return 1
    if chat is not None or follower is not None:
        secret.save(paths.state_dir)
    if chat is not None:
        chat.settings = settings
        chat.start()
    on_endpoint: EndpointHook = follower.follow if follower else lambda _: None
    return watch_endpoint(base_url, settings.api_key, say, stop, on_endpoint, offline=settings.offline)


def _claim(record: RunRecord, say: Printer) -> bool:
    """Take the run record, cleaning up after a run that crashed; False when another run lives."""
    try:
        leftovers = record.claim()
    except AlreadyRunning as error:
        say(f"{error} Quit it first, or use its endpoint.")
        return False
    if leftovers and leftovers.pids:
        say(f"Stopped {len(leftovers.pids)} process(es) left running by a previous run that crashed.")
    for line in clean_up_after(leftovers.services) if leftovers else []:
        say(line)
    return True


def report_until_stopped(
    supervisor: Supervisor,
    client: RuntimeClient,
    say: Printer,
    stop: threading.Event,
    on_endpoint: EndpointHook,
) -> int:
    """Print what changes; 1 if the runtime host failed for good, 0 when stopped."""
    last = ""
    while not stop.wait(0.1):
        service = supervisor.status
        runtime = live_status(supervisor, client)
        line = describe(service, runtime)
        if line != last:
            last = line
            say(line)
        if runtime is not None and runtime.state is RuntimeState.READY:
            on_endpoint(runtime.base_url)
        if service.state is ServiceState.FAILED:
            for tail_line in service.log_tail:
                say(f"  | {tail_line}")
            return 1
    return 0


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


def watch_endpoint(
    base_url: str,
    api_key: str,
    say: Printer,
    stop: threading.Event,
    on_endpoint: EndpointHook,
    *,
    offline: bool = False,
) -> int:
    """Attach mode: nothing to host; report whether the endpoint answers, until stopped."""
    last = None
    while True:
        try:
            models = list_endpoint_models(base_url, api_key, offline=offline)
            listed = ", ".join(models) or "none"
            line = f"ready: attached to {base_url}\n  base_url: {base_url}\n  models:   {listed}"
            on_endpoint(base_url)
        except EndpointUnreachable as error:
            line = f"unreachable: {error}"
        if line != last:
            say(line)
            last = line
        if stop.wait(ATTACH_RECHECK_S):
            return 0
