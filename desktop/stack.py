"""The services of one run, started, watched and stopped the same way under every front end.

The desktop app (tray + window) and headless mode (lines in a terminal) are two front ends over one
`ServiceStack`: they subscribe to its `StackStatus` snapshots and call its actions; neither starts,
watches or stops a service itself. A service added here is added to both. See `desktop/README.md`.

One watch thread reads every service's state: the runtime host's supervisor and published status
(or the attached endpoint's model list), the chat server's supervisor, Open WebUI's backend (at the
backend's poll interval). A supervisor's change wakes it at once (the window shows the chat the
moment it is up). Every service has the same `ServiceStatus`, so a FAILED one is found, shown and
restarted (`restart`) the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from desktop.chat.service import SERVICE_NAME as CHAT
from desktop.config import Settings
from desktop.documents.library import FileLibrary, IndexingStatus
from desktop.documents.service import SERVICE_NAME as FILES
from desktop.loopback import on_this_computer
from desktop.openwebui.service import SERVICE_NAME as OPEN_WEBUI
from desktop.openwebui.service import (
    Endpoint,
    OpenWebUI,
    OpenWebUIState,
    OpenWebUIStatus,
    clean_up_after,
)
from desktop.paths import AppPaths
from desktop.runrecord import RunRecord
from desktop.runsecret import RunSecret
from desktop.runtime.attach import EndpointUnreachable, discover_foundry_app, list_endpoint_models
from desktop.runtime.service import SERVICE_NAME as RUNTIME
from desktop.runtime.service import (
    ModelEntry,
    RuntimeClient,
    RuntimeRequestError,
    live_status,
    supervise_runtime,
)
from desktop.runtime.status import RuntimeState, RuntimeStatus
from desktop.supervisor import RestartPolicy, ServiceState, ServiceStatus, Supervisor, backoff_delay

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.2
ATTACH_RECHECK_S = 5.0
MODELS_RECHECK_S = 10.0
"""How often the model list is read again while the runtime's status does not change (a model
registered or downloaded meanwhile, the catalog read in the background)."""
STOP_TIMEOUT_S = 20.0
"""How long stopping the services may take; each has its own deadline well within it."""
LABELS = {
    RUNTIME: "the model runtime",
    CHAT: "the chat",
    OPEN_WEBUI: "Open WebUI",
    FILES: "the indexer of your files",
}
"""How the front ends name each service to the user."""
Say = Callable[[str], None]
"""Where the stack tells what the user should know (the terminal, or the app's log)."""


class ChatService(Protocol):
    """The chat server as the stack needs it: a supervised service with a URL (`ChatServer`)."""

    supervisor: Supervisor | None

    @property
    def url(self) -> str: ...
    def link(self) -> str: ...
    def start(self, record: RunRecord | None = None) -> None: ...
    def stop(self) -> None: ...


ChatFactory = Callable[[Settings, AppPaths, RunSecret, Callable[[ServiceStatus], None]], ChatService]
"""Makes the chat server; the last argument is told of each change of its state."""


def default_chat(
    settings: Settings, paths: AppPaths, secret: RunSecret, on_change: Callable[[ServiceStatus], None]
) -> ChatService:
    from desktop.chat.service import ChatServer

    return ChatServer(settings, paths, secret, on_change=on_change)


@dataclass(frozen=True)
class Attached:
    """An endpoint of someone else's that the stack uses instead of hosting one (attach mode)."""

    base_url: str
    models: tuple[str, ...] | None = None
    """What it lists; None while it does not answer."""
    problem: str = ""
    """Why it does not answer."""


@dataclass(frozen=True)
class StackStatus:
    """Every service at one moment, for the front ends."""

    runtime_service: ServiceStatus | None = None
    """The runtime host's process (None in attach mode)."""
    runtime: RuntimeStatus | None = None
    """What the host running now has published; None while none runs and answers."""
    attached: Attached | None = None
    models: tuple[ModelEntry, ...] = ()
    """The models the hosted runtime can serve now (re-read at each switch, and now and then)."""
    chat: ServiceStatus | None = None
    indexer: ServiceStatus | None = None
    """The indexer of the user's files (it runs with the chat, which uses the index)."""
    files: IndexingStatus | None = None
    """What the indexer published last: how far it is."""
    open_webui: OpenWebUIStatus = field(default_factory=lambda: OpenWebUIStatus(OpenWebUIState.STOPPED))

    @property
    def services(self) -> list[ServiceStatus]:
        """Each service in one shape (Open WebUI's states read as a supervisor's)."""
        found = [self.runtime_service, self.chat, self.indexer, as_service(self.open_webui)]
        return [service for service in found if service is not None]

    @property
    def failed(self) -> list[ServiceStatus]:
        """The services that stopped for good: each is offered a Restart."""
        return [service for service in self.services if service.state is ServiceState.FAILED]


OPEN_WEBUI_AS_SERVICE = {
    OpenWebUIState.UNAVAILABLE: ServiceState.STOPPED,
    OpenWebUIState.STOPPED: ServiceState.STOPPED,
    OpenWebUIState.STARTING: ServiceState.STARTING,
    OpenWebUIState.RUNNING: ServiceState.RUNNING,
    OpenWebUIState.RESTARTING: ServiceState.BACKOFF,
    OpenWebUIState.FAILED: ServiceState.FAILED,
}


def as_service(status: OpenWebUIStatus) -> ServiceStatus:
    return ServiceStatus(
        OPEN_WEBUI,
        OPEN_WEBUI_AS_SERVICE[status.state],
        pid=status.pid,
        restarts=status.restarts,
        message=status.message,
        log_tail=status.log_tail,
    )


@dataclass
class OpenWebUIWiring:
    """Whether the user wants Open WebUI, and which endpoint the running one was started for:
    it is (re)started whenever the endpoint it should use differs."""

    wanted: bool = False
    wired_to: str | None = None
    starting: threading.Thread | None = None
    polled_at: float = 0.0
    stopped_by_itself: deque[float] = field(default_factory=deque)
    """When it stopped by itself lately (a backend that does not restart it: the stack does)."""
    restart_at: float = 0.0
    """Not started again before this time (the backoff after it stopped by itself)."""


@dataclass
class _Listeners:
    callbacks: list[Callable[[StackStatus], None]] = field(default_factory=list)

    def tell(self, status: StackStatus) -> None:
        for callback in list(self.callbacks):
            try:
                callback(status)
            except Exception:  # a front end's bug must not stop the watching
                log.exception("a listener of the services failed")


class ServiceStack:
    """The services of one run: claim the run, start, watch, restart, stop."""

    def __init__(
        self,
        settings: Settings,
        paths: AppPaths,
        *,
        secret: RunSecret | None = None,
        record: RunRecord | None = None,
        chat_factory: ChatFactory | None = default_chat,
        open_webui: OpenWebUI | None = None,
        ask_before_download: bool = False,
        say: Say | None = None,
    ) -> None:
        """`chat_factory` None: no chat. `ask_before_download`: a model the runtime does not have
        is downloaded only when the user asks (the desktop app's first-run view)."""
        self.settings = settings
        self.paths = paths
        self.secret = secret or RunSecret.new()
        """Opens the chat, the runtime's control API and Open WebUI's door to this run's user."""
        self.record = record or RunRecord(paths.run_record_file)
        self.client = RuntimeClient(paths.runtime_status_file, self.secret)
        self.open_webui = open_webui or OpenWebUI(settings, paths, secret=self.secret, record=self.record)
        self.runtime: Supervisor | None = None
        self.chat: ChatService | None = None
        self.indexer: Supervisor | None = None
        self.files = FileLibrary(paths.files_index_file, paths.files_status_file)
        """The index of the user's files, for the front ends (read when asked)."""
        self._chat_factory = chat_factory
        self._ask_before_download = ask_before_download
        self._say = say or (lambda line: log.info("%s", line))
        self._listeners = _Listeners()
        self._status = StackStatus()
        self._attached: Attached | None = None
        self._model_cache_dir = settings.model_cache_dir
        self._models: tuple[ModelEntry, ...] = ()
        self._models_for: tuple[str | None, float] | None = None
        """The ready status (model, when published) the list was read for."""
        self._models_read_at = 0.0
        self._webui = OpenWebUIStatus(OpenWebUIState.STOPPED)
        self._wiring = OpenWebUIWiring()
        self._changed = threading.Event()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._claimed = False

    # -- the run ------------------------------------------------------------------------------

    def claim(self) -> None:
        """Take this user's run (raises `AlreadyRunning`), cleaning up after a run that crashed."""
        leftovers = self.record.claim()
        self._claimed = True
        if leftovers is not None and leftovers.pids:
            count = len(leftovers.pids)
            self._say(f"Stopped {count} process(es) left running by a previous run that crashed.")
        for line in clean_up_after(leftovers.services) if leftovers else []:
            self._say(line)
        self.secret.save(self.paths.state_dir)

    def start(self) -> None:
        """Start the endpoint (host a runtime or attach to one) and the chat, then watch them."""
        self._start_endpoint_and_chat()
        self._watcher = threading.Thread(target=self._watch, name="watch-services", daemon=True)
        self._watcher.start()

    def subscribe(self, listener: Callable[[StackStatus], None]) -> None:
        """`listener` is called (on the watch thread) with every new snapshot."""
        self._listeners.callbacks.append(listener)

    @property
    def status(self) -> StackStatus:
        return self._status

    def stop(self) -> None:
        """Stop every service at once (one by one, a service that exits by itself meanwhile would
        be restarted by its supervisor while another is stopped), then release the run."""
        self._stopping.set()
        self._changed.set()
        if self._watcher is not None:
            self._watcher.join(STOP_TIMEOUT_S)
        steps = [self._stop_chat, self._stop_runtime, self._stop_indexer]
        if self._wiring.wanted or self._wiring.starting is not None:
            steps.append(self._stop_open_webui)
        run_together(steps, STOP_TIMEOUT_S)
        self.files.close()
        self._publish()
        if self._claimed:
            self.secret.discard(self.paths.state_dir)
            self.record.release()

    # -- actions ------------------------------------------------------------------------------

    def restart(self, name: str) -> None:
        """Start a service that stopped for good (FAILED) again. Blocking: call it off a UI thread."""
        if name == RUNTIME and self.runtime is not None:
            self.runtime.restart()
        elif name == CHAT and self.chat is not None and self.chat.supervisor is not None:
            self.chat.supervisor.restart()
        elif name == FILES and self.indexer is not None:
            self.indexer.restart()
        elif name == OPEN_WEBUI:
            self._wiring.stopped_by_itself.clear()
            self._wiring.restart_at = 0.0
            self._wiring.wired_to = None  # started again on the current endpoint
            self._wiring.wanted = True
        self._changed.set()

    def restart_with(self, settings: Settings) -> None:
        """Start the runtime and the chat again with new settings (e.g. offline mode on)."""
        run_together([self._stop_chat, self._stop_runtime], STOP_TIMEOUT_S)
        self.settings = settings
        self.open_webui.settings = settings
        self._start_endpoint_and_chat()
        self._changed.set()

    def start_open_webui(self) -> None:
        """Run Open WebUI wired to the endpoint, now or as soon as the endpoint is ready; again
        whenever the endpoint moves. The outcome shows in the status."""
        self._wiring.wanted = True
        self._changed.set()

    def stop_open_webui(self) -> None:
        """Blocking: call it off a UI thread."""
        self._stop_open_webui()
        self._changed.set()

    def endpoint_url(self) -> str | None:
        """The model's endpoint, for Open WebUI and other tools; offline, only one on this computer."""
        if self.settings.base_url:
            local = on_this_computer(self.settings.base_url) or not self.settings.offline
            return self.settings.base_url if local else None
        runtime = self._status.runtime
        return runtime.base_url if runtime is not None and runtime.state is RuntimeState.READY else None

    @property
    def has_chat(self) -> bool:
        return self.chat is not None

    def chat_link(self) -> str | None:
        """A new one-time link that opens the chat signed in, while it serves (`chat_url`)."""
        chat = self.chat
        return chat.link() if chat is not None and self.chat_url() is not None else None

    def chat_url(self) -> str | None:
        """The chat's address while it serves."""
        chat = self.chat
        if chat is None or chat.supervisor is None:
            return None
        return chat.url if chat.supervisor.status.state is ServiceState.RUNNING else None

    # -- starting -----------------------------------------------------------------------------

    def _start_endpoint_and_chat(self) -> None:
        attach_to = self._discover()
        if attach_to:
            self.settings = replace(self.settings, base_url=attach_to)
        else:
            self.runtime = supervise_runtime(
                self.settings,
                self.paths,
                self.record,
                self.secret,
                model_cache_dir=self._model_cache_dir,
                ask_before_download=self._ask_before_download,
            )
            self.runtime.start()
        if self._chat_factory is not None:
            self.chat = self._chat_factory(self.settings, self.paths, self.secret, self._wake)
            self.chat.start(self.record)
            if self.indexer is None:  # kept across restarts with new settings: it needs none of them
                from desktop.documents.service import supervise_indexer

                self.indexer = supervise_indexer(self.settings, self.paths, self.record, self._wake)
                self.indexer.start()

    def _discover(self) -> str | None:
        """The endpoint to attach to, if any: the configured one, or the Foundry Local app's
        service when the settings say to use it. Its model cache is shared either way."""
        self._model_cache_dir = self.settings.model_cache_dir
        if self.settings.base_url:
            return self.settings.base_url
        app = discover_foundry_app()
        if app is None:
            return None
        if app.base_url and self.settings.use_foundry_service:
            self._say(f"Using the Foundry Local app's service at {app.service_url}.")
            return app.base_url
        if app.base_url:
            self._say(
                f"A Foundry Local service is running at {app.service_url}. To use it instead of the "
                "built-in runtime, run with --use-foundry-service."
            )
        if self._model_cache_dir is None and app.cache_dir is not None:
            self._model_cache_dir = app.cache_dir
            self._say(f"Sharing the Foundry Local app's model cache: {app.cache_dir}")
        return None

    # -- watching -----------------------------------------------------------------------------

    def _wake(self, _: ServiceStatus) -> None:
        self._changed.set()

    def _watch(self) -> None:
        checked_attached = float("-inf")
        while not self._stopping.is_set():
            try:
                if self.settings.base_url and time.monotonic() - checked_attached >= ATTACH_RECHECK_S:
                    checked_attached = time.monotonic()
                    self._attached = check_endpoint(self.settings)
                self._poll_open_webui()
                self._publish()
                self._follow_endpoint()
            except Exception:  # the watcher must survive anything a service reports
                log.exception("reading the services' state failed")
            self._changed.wait(WATCH_INTERVAL_S)
            self._changed.clear()

    def _publish(self) -> None:
        runtime = self.runtime
        chat = self.chat
        published = live_status(runtime, self.client) if runtime is not None else None
        status = StackStatus(
            runtime_service=runtime.status if runtime is not None else None,
            runtime=published,
            attached=self._attached if self.settings.base_url else None,
            models=self._read_models(published),
            chat=chat.supervisor.status if chat is not None and chat.supervisor is not None else None,
            indexer=self.indexer.status if self.indexer is not None else None,
            files=IndexingStatus.read(self.paths.files_status_file) if self.indexer is not None else None,
            open_webui=self._webui,
        )
        if status != self._status:
            self._status = status
            self._listeners.tell(status)

    def _read_models(self, runtime: RuntimeStatus | None) -> tuple[ModelEntry, ...]:
        """The runtime's models: read again at each new ready status (every switch publishes
        one, also a switch to another model and back), and every `MODELS_RECHECK_S`."""
        if runtime is None or runtime.state is not RuntimeState.READY:
            return self._models
        ready = (runtime.model_id, runtime.updated_at)
        if ready == self._models_for and time.monotonic() - self._models_read_at < MODELS_RECHECK_S:
            return self._models
        self._models_read_at = time.monotonic()
        try:
            self._models = tuple(self.client.models())
        except RuntimeRequestError:
            return self._models
        self._models_for = ready
        return self._models

    def _poll_open_webui(self) -> None:
        """Open WebUI's state, read at its backend's pace while it is ours, not being started, and
        in a state that can change by itself. Failed (a start that did not work, or stopped too
        often) it stays so until it is started again: as a supervisor's FAILED, until Restart."""
        wiring = self._wiring
        if not wiring.wanted or wiring.starting is not None or wiring.wired_to is None:
            return
        if self._webui.state not in (
            OpenWebUIState.RUNNING,
            OpenWebUIState.STARTING,
            OpenWebUIState.RESTARTING,
        ):
            return
        if time.monotonic() - wiring.polled_at < self.open_webui.poll_interval_s:
            return
        wiring.polled_at = time.monotonic()
        status = self.open_webui.status()
        if status.state is OpenWebUIState.FAILED and not self.open_webui.restarts_itself:
            status = self._restart_later(status)
        self._webui = status

    def _restart_later(self, failed: OpenWebUIStatus) -> OpenWebUIStatus:
        """It stopped by itself: start it again after a backoff, as a supervisor would, until
        `restart_limit` restarts within `restart_window_s`; past that it stays FAILED."""
        wiring, now = self._wiring, time.monotonic()
        policy = RestartPolicy(limit=self.settings.restart_limit, window_s=self.settings.restart_window_s)
        limit, window_s = policy.limit, policy.window_s
        while wiring.stopped_by_itself and now - wiring.stopped_by_itself[0] > window_s:
            wiring.stopped_by_itself.popleft()
        if len(wiring.stopped_by_itself) >= limit:
            gave_up = f"{failed.message} Gave up after {limit} restarts within {window_s:.0f} s."
            return replace(failed, message=gave_up)
        wiring.stopped_by_itself.append(now)
        count = len(wiring.stopped_by_itself)
        delay = backoff_delay(count, policy.backoff_base_s, policy.backoff_max_s)
        wiring.restart_at, wiring.wired_to = now + delay, None  # `_follow_endpoint` starts it
        message = f"Open WebUI stopped by itself ({failed.message.rstrip('.')}; restarting in {delay:.1f} s)"
        return replace(failed, state=OpenWebUIState.RESTARTING, message=message, restarts=count)

    def _follow_endpoint(self) -> None:
        """Start Open WebUI when it is wanted and the endpoint it should use is ready and new."""
        wiring = self._wiring
        endpoint = self.endpoint_url()
        if not wiring.wanted or endpoint is None or endpoint == wiring.wired_to or wiring.starting:
            return
        if time.monotonic() < wiring.restart_at:
            return
        wiring.wired_to = endpoint
        self._webui = OpenWebUIStatus(OpenWebUIState.STARTING, f"starting, wired to {endpoint}")
        wiring.starting = threading.Thread(
            target=self._start_open_webui, args=(endpoint,), name="open-webui", daemon=True
        )
        wiring.starting.start()

    def _start_open_webui(self, endpoint: str) -> None:
        try:
            self._webui = self.open_webui.start(Endpoint(endpoint, self.settings.api_key))
        finally:
            self._wiring.starting = None
            self._wiring.polled_at = time.monotonic()
            self._changed.set()

    # -- stopping -----------------------------------------------------------------------------

    def _stop_open_webui(self) -> None:
        wiring = self._wiring
        wiring.wanted = False
        starting = wiring.starting
        if starting is not None:
            starting.join()  # its own deadline (the backend's start timeout)
        if wiring.wired_to is not None or self._webui.state is not OpenWebUIState.STOPPED:
            self._webui = self.open_webui.stop()
        wiring.wired_to = None

    def _stop_chat(self) -> None:
        if self.chat is not None:
            self.chat.stop()

    def _stop_indexer(self) -> None:
        if self.indexer is not None:
            self.indexer.stop()
            self.indexer = None

    def _stop_runtime(self) -> None:
        if self.runtime is not None:
            self.runtime.stop()
            self.runtime = None


def check_endpoint(settings: Settings) -> Attached:
    """Whether the attached endpoint answers, and what it lists."""
    assert settings.base_url is not None
    try:
        models = list_endpoint_models(settings.base_url, settings.api_key, offline=settings.offline)
    except EndpointUnreachable as error:
        return Attached(settings.base_url, None, str(error))
    return Attached(settings.base_url, tuple(models))


def run_together(steps: list[Callable[[], None]], timeout_s: float) -> None:
    """Run each step on a thread of its own and wait for all, up to `timeout_s` in all."""
    threads = [
        threading.Thread(target=_logged, args=(step,), name=step.__name__, daemon=True) for step in steps
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def _logged(step: Callable[[], None]) -> None:
    try:
        step()
    except Exception:
        log.exception("%s failed", step.__name__)
