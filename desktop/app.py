"""Foundry Desk as a desktop app: the wiring of tray, window, services and notifications, in one place.

Threads and processes::

    main thread      the tray icon's loop (pystray: GTK / Win32 / Cocoa), or a wait when no tray
    watch thread     reads the services' state 5 times a second; updates icon, menu, notifications
    supervisors      one thread each (runtime host, chat server), forking and watching their child
    window thread    owns the window child (`window-host`), forks it and writes its commands
    instance thread  obeys later launches ("show")

Quit stops the window, the chat server, Open WebUI if we started it, the runtime host and the
WebGPU page server, within `QUIT_DEADLINE_S`; past it whatever is left is killed.
"""

from __future__ import annotations

import contextlib
import html
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TextIO

from desktop import APP_NAME, autostart, compat, instance
from desktop.config import Settings, SettingsError, save_setting
from desktop.loopback import on_this_computer
from desktop.notify import Notifier, Snapshot, dbus_sender, model_choice_hint
from desktop.openwebui.service import Endpoint, OpenWebUI, OpenWebUIState, OpenWebUIStatus, clean_up_after
from desktop.paths import AppPaths, self_command
from desktop.process import kill_tree
from desktop.runrecord import AlreadyRunning, RunRecord
from desktop.runsecret import RunSecret
from desktop.runtime.attach import EndpointUnreachable, discover_foundry_app, list_endpoint_models
from desktop.runtime.service import (
    ModelEntry,
    RuntimeClient,
    RuntimeRequestError,
    live_status,
    supervise_runtime,
)
from desktop.runtime.status import RuntimeState, RuntimeStatus
from desktop.supervisor import ServiceState, ServiceStatus, Supervisor
from desktop.tray import ModelChoice, ShellState, ShellStatus, Tray
from desktop.webgpu import WebGpuServer, serve_webgpu
from desktop.window import WindowClient, WindowEvent

log = logging.getLogger(__name__)

CHAT_TITLE = "Foundry Desk — Chat"
WEBGPU_TITLE = "Foundry Desk — WebGPU demo"
QUIT_DEADLINE_S = 20.0
WATCH_INTERVAL_S = 0.2
PENDING_INTERVAL_S = 0.05
ATTACH_RECHECK_S = 5.0
MODELS_RECHECK_S = 10.0
"""How often the Model menu re-reads the runtime's models when its status did not change (a model
registered or downloaded meanwhile, the catalog read in the background)."""
BACKGROUND_FLAG = "--background"
"""How start-at-login runs the app: tray and services, no window."""


class ChatService(Protocol):
    """The chat server as the app needs it: a supervised service with a URL (`ChatServer`)."""

    supervisor: Supervisor | None

    @property
    def url(self) -> str: ...
    def link(self) -> str: ...
    def start(self, record: RunRecord | None = None) -> None: ...
    def stop(self) -> None: ...


ChatFactory = Callable[[Settings, AppPaths, RunSecret], ChatService | None]


def default_chat(settings: Settings, paths: AppPaths, secret: RunSecret) -> ChatService | None:
    from desktop.chat.service import ChatServer

    return ChatServer(settings, paths, secret)


@dataclass(frozen=True)
class Milestones:
    """When things first happened (monotonic seconds), for the benchmark and the log."""

    started: float
    icon_visible: float | None = None
    window_loaded: float | None = None


class DesktopApp:
    """The whole app for one run. Its methods are the tray menu's actions (`TrayActions`)."""

    def __init__(
        self,
        settings: Settings,
        paths: AppPaths,
        *,
        chat_factory: ChatFactory = default_chat,
        window_command: Sequence[str] | None = None,
        show_window: bool = True,
        err: TextIO | None = None,
    ) -> None:
        self.settings = settings
        self.paths = paths
        self.err = err or sys.stderr
        self.milestones = Milestones(time.monotonic())
        self._show_window_at_start = show_window
        self._chat_factory = chat_factory
        self._window_command = list(window_command or self_command("window-host"))
        self.lock = instance.InstanceLock(paths.state_dir)
        self.record = RunRecord(paths.run_record_file)
        self.secret = RunSecret.new()
        """Opens the chat and the runtime's control API to this run's window, browsers and tray."""
        self.client = RuntimeClient(paths.runtime_status_file, self.secret)
        self.autostart = autostart.for_this_platform()
        self.open_webui = OpenWebUI(settings, paths, secret=self.secret, record=self.record)
        self.tray: Tray | None = None
        self.tray_problem = ""
        self.runtime: Supervisor | None = None
        self.chat: ChatService | None = None
        self.window: WindowClient | None = None
        self.webgpu: WebGpuServer | None = None
        self.notifier: Notifier | None = None
        self._status = ShellStatus(ShellState.STARTING, "Starting…")
        self._runtime_status: RuntimeStatus | None = None
        self._attached: tuple[str, list[str]] | None = None
        self._models: list[ModelEntry] = []
        self._models_for: tuple[str | None, float] | None = None
        """The ready status (model, when published) the list was read for; None: read it again."""
        self._models_read_at = 0.0
        self._busy: str | None = None
        self._webui: OpenWebUIStatus = OpenWebUIStatus(OpenWebUIState.STOPPED)
        self._webui_started_by_us = False
        self._page: str | None = None
        self._page_pending = False
        self._quitting = threading.Event()
        self._stopped = threading.Event()
        self._exit_code = 0
        self._lock = threading.Lock()

    # -- running -----------------------------------------------------------------------------

    def run(self) -> int:
        """Run until Quit; returns the exit code. A second launch hands over to the first and exits."""
        self.paths.create()
        if not self.lock.acquire():
            shown = instance.send(self.paths.state_dir, "show")
            print(f"{APP_NAME} is already running; " + ("showed its window." if shown else
                  "it did not answer."), file=self.err, flush=True)  # fmt: skip
            return 0 if shown else 1
        try:
            leftovers = self.record.claim()
        except AlreadyRunning as error:
            print(f"{APP_NAME}: {error} (started with --headless?) Quit it first.", file=self.err)
            self.lock.release()
            return 1
        if leftovers:
            log.warning("stopped %d process(es) left by a run that crashed", len(leftovers.pids))
            for line in clean_up_after(leftovers.services):
                log.warning("%s", line)
        self.secret.save(self.paths.state_dir)
        self.lock.serve({"show": self.open_chat, "quit": self.quit})
        backend, self.tray_problem = compat.tray_backend(os.environ)
        previous = self._capture_signals()
        try:
            # The services start first: the chat server takes seconds to start, the tray under one.
            self._start_services()
            if backend is not None:
                self.tray = Tray(self, backend)
                self.notifier = Notifier(self.tray.notify)
                if not self._quitting.is_set():
                    self.tray.run(setup=self._setup)
            else:
                self._run_without_tray()
            self._stopped.wait(QUIT_DEADLINE_S + 5)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return self._exit_code

    def _run_without_tray(self) -> None:
        message = f"No tray icon: {self.tray_problem}. Close the window to quit {APP_NAME}."
        print(f"{APP_NAME}: {message}", file=self.err, flush=True)
        log.warning("%s", message)
        sender = dbus_sender(APP_NAME) if compat.IS_LINUX else (lambda title, text: None)
        self.notifier = Notifier(sender)
        with contextlib.suppress(Exception):
            sender("Foundry Desk has no tray icon", message)
        self._open_window(show=True)
        self._stopped.wait()

    def _setup(self, icon: Any) -> None:
        icon.visible = True
        self.milestones = replace(self.milestones, icon_visible=time.monotonic())
        log.info("tray icon shown (%s backend)", self.tray.backend if self.tray else "?")
        self._open_window(show=self._show_window_at_start)

    def _start_services(self) -> None:
        env = self.record.child_env
        self._start_runtime_and_chat()
        self.window = WindowClient(
            [*self._window_command, "--storage-dir", str(self.paths.data_dir / "webview")],
            self.paths.log_dir / "window.log",
            env,
            on_event=self._on_window_event,
            on_spawn=self.record.add_child,
            on_exit=self.record.remove_child,
        )
        threading.Thread(target=self._watch, name="watch", daemon=True).start()

    def _start_runtime_and_chat(self) -> None:
        """Start the runtime host (unless attached to an endpoint) and the chat, for the settings
        of now."""
        if not self.settings.base_url:
            app = discover_foundry_app()
            cache_dir = self.settings.model_cache_dir or (app.cache_dir if app else None)
            # A multi-GB download only when the user asks for it (the chat's first-run view).
            self.runtime = supervise_runtime(
                self.settings,
                self.paths,
                self.record,
                self.secret,
                model_cache_dir=cache_dir,
                ask_before_download=True,
            )
            self.runtime.start()
        self.chat = self._chat_factory(self.settings, self.paths, self.secret)
        if self.chat is not None:
            self.chat.start(self.record)

    def _open_window(self, show: bool) -> None:
        """A launch by the user shows the chat; a start at login (`--background`) only the tray."""
        if show:
            self.open_chat()

    def _capture_signals(self) -> dict[int, Any]:
        """SIGINT/SIGTERM mean Quit (only possible from the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {s: signal.signal(s, lambda *_: self.quit()) for s in (signal.SIGINT, signal.SIGTERM)}

    # -- watching the services ---------------------------------------------------------------

    def _watch(self) -> None:
        last_attach_check = 0.0
        # While the window waits for the chat to start, look often: the chat shows the moment it is up.
        while not self._quitting.wait(PENDING_INTERVAL_S if self._page_pending else WATCH_INTERVAL_S):
            try:
                if self.settings.base_url and time.monotonic() - last_attach_check > ATTACH_RECHECK_S:
                    last_attach_check = time.monotonic()
                    self._check_attached(self.settings.base_url)
                self._update()
            except Exception:  # the watcher must survive anything a service reports
                log.exception("status update failed")

    def _check_attached(self, base_url: str) -> None:
        try:
            models = list_endpoint_models(base_url, self.settings.api_key, offline=self.settings.offline)
            self._attached = (base_url, models)
        except EndpointUnreachable:
            self._attached = None

    def _update(self) -> None:
        runtime = self._read_runtime()
        self._runtime_status = runtime
        if runtime is not None and runtime.state is RuntimeState.READY:
            # Every switch publishes a new status, also one quicker than this loop (to beta and
            # back: the same model, but the list grew).
            ready = (runtime.model_id, runtime.updated_at)
            if ready != self._models_for or time.monotonic() - self._models_read_at > MODELS_RECHECK_S:
                self._refresh_models(ready)
        status = self._describe(runtime)
        if status != self._status:
            self._status = status
            if self.tray is not None:
                self.tray.show(status)
        if self.notifier is not None:
            self.notifier.observe(self._snapshot(runtime))
        chat_url = self._chat_url()
        window = self.window
        if self._page == "chat" and self._page_pending and chat_url and window and window.visible:
            self._page_pending = False
            window.show(self._chat_link(), CHAT_TITLE)

    def _read_runtime(self) -> RuntimeStatus | None:
        return None if self.runtime is None else live_status(self.runtime, self.client)

    def _refresh_models(self, ready: tuple[str | None, float]) -> None:
        self._models_read_at = time.monotonic()
        try:
            models = self.client.models()
        except RuntimeRequestError:
            return
        changed = models != self._models or ready != self._models_for
        self._models, self._models_for = models, ready
        if changed and self.tray is not None:
            self.tray.refresh()

    def _describe(self, runtime: RuntimeStatus | None) -> ShellStatus:  # noqa: PLR0911
        failed = self._failed_services()
        if failed:
            return ShellStatus(ShellState.ERROR, f"{failed[0].name} failed: {failed[0].message}")
        if self._busy:
            return ShellStatus(ShellState.WORKING, self._busy)
        if self.settings.base_url:
            if self._attached is None:
                if self.settings.offline and not on_this_computer(self.settings.base_url):
                    return ShellStatus(
                        ShellState.ERROR, f"Offline mode: {self.settings.base_url} is not local"
                    )
                return ShellStatus(ShellState.ERROR, f"Not reachable: {self.settings.base_url}")
            return ShellStatus(ShellState.READY, f"Ready: {', '.join(self._attached[1]) or 'attached'}")
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

    def _failed_services(self) -> list[ServiceStatus]:
        supervisors = [self.runtime, self.chat.supervisor if self.chat else None]
        return [s.status for s in supervisors if s is not None and s.status.state is ServiceState.FAILED]

    def _snapshot(self, runtime: RuntimeStatus | None) -> Snapshot:
        failed = frozenset(status.name for status in self._failed_services())
        if runtime is None:
            return Snapshot(failed_services=failed)
        model = runtime.model_alias or runtime.model_id
        return Snapshot(runtime.state.value, model, runtime.message, failed, runtime.download_alias)

    def _chat_url(self) -> str | None:
        chat = self.chat
        if chat is None or chat.supervisor is None:
            return None
        return chat.url if chat.supervisor.status.state is ServiceState.RUNNING else None

    def _chat_link(self) -> str:
        """The chat's address with a one-time token: the window gets the chat's cookie with it
        (it loads the link only when it is not on the chat already)."""
        assert self.chat is not None
        return self.chat.link()

    def _on_window_event(self, event: WindowEvent) -> None:
        if event.name == "loaded" and self.milestones.window_loaded is None:
            self.milestones = replace(self.milestones, window_loaded=time.monotonic())
            log.info("window loaded %s", event.data.get("url"))
        if event.name == "hidden" and event.data.get("by_user") and self.tray is None:
            self.quit()  # without a tray icon the window is the only way to quit

    # -- the menu's actions (TrayActions) ----------------------------------------------------

    @property
    def status(self) -> ShellStatus:
        return self._status

    def open_chat(self) -> None:
        window = self.window
        if window is None:
            return
        self._page = "chat"
        if self._chat_url() is not None:
            self._page_pending = False
            window.show(self._chat_link(), CHAT_TITLE)
            return
        self._page_pending = self.chat is not None
        reason = "The chat is starting…" if self.chat is not None else "The chat is not available."
        window.show_html(placeholder_page(reason, self._status.text), CHAT_TITLE)

    def open_webgpu(self) -> None:
        window = self.window
        if window is None:
            return
        with self._lock:
            if self.webgpu is None:
                self.webgpu = serve_webgpu()
        self._page = "webgpu"
        self._page_pending = False
        window.show(self.webgpu.url, WEBGPU_TITLE)

    def can_choose_model(self) -> bool:
        """The app hosts the runtime, so the chat window's first-run view can give it a model."""
        return self.settings.base_url is None

    def model_choices(self) -> list[ModelChoice]:
        runtime = self._runtime_status
        current = runtime.model_id if runtime is not None and runtime.state is RuntimeState.READY else None
        return [ModelChoice(m.id, m.alias or m.id, m.id == current) for m in self._models]

    def select_model(self, model_id: str) -> None:
        if self._busy or any(choice.current and choice.id == model_id for choice in self.model_choices()):
            return  # already served: nothing to switch
        label = next((m.alias for m in self._models if m.id == model_id), model_id)
        self._busy = f"Switching to {label}…"
        self._background(self._switch_model, model_id, label)

    def _switch_model(self, model_id: str, label: str) -> None:
        try:
            status = self.client.select(model_id)
            if status.state is RuntimeState.READY:
                self._tell("Model switched", f"Now serving {status.model_alias or label}.")
            else:
                self._tell("Could not switch the model", status.message)
        except (RuntimeRequestError, TimeoutError) as error:
            self._tell("Could not switch the model", str(error))
        finally:
            self._busy = None
            self._models_for = None  # re-read the list (and the check mark)

    def open_webui_label(self) -> str:
        return f"Open WebUI ({self._webui.state.value})"

    def can_start_open_webui(self) -> bool:
        return self._webui.state in (OpenWebUIState.STOPPED, OpenWebUIState.FAILED) and bool(
            self.endpoint_url()
        )

    def can_stop_open_webui(self) -> bool:
        running = (OpenWebUIState.RUNNING, OpenWebUIState.STARTING, OpenWebUIState.RESTARTING)
        return self._webui.state in running

    def can_open_open_webui(self) -> bool:
        return self._webui.state is OpenWebUIState.RUNNING

    def start_open_webui(self) -> None:
        base_url = self.endpoint_url()
        if base_url is None:
            return
        self._webui = OpenWebUIStatus(OpenWebUIState.STARTING, "starting")
        self._webui_started_by_us = True
        self._refresh_menu()
        self._background(self._start_open_webui, base_url)

    def _start_open_webui(self, base_url: str) -> None:
        self._webui = self.open_webui.start(Endpoint(base_url, self.settings.api_key))
        if self._webui.state is OpenWebUIState.RUNNING:
            self._tell("Open WebUI is running", self._webui.message)
        else:
            self._tell("Open WebUI did not start", self._webui.message)
        self._refresh_menu()

    def stop_open_webui(self) -> None:
        self._background(self._stop_open_webui)

    def _stop_open_webui(self) -> None:
        self._webui = self.open_webui.stop()
        self._webui_started_by_us = False
        self._refresh_menu()

    def open_open_webui(self) -> None:
        """In the user's browser, signed in with the app's account (a new one-time link)."""
        self._background(self._open_open_webui)

    def _open_open_webui(self) -> None:
        link = self.open_webui.link()
        if link is not None:
            compat.open_path(link)
        else:
            self._tell("Open WebUI is not running", self.open_webui.status().message)

    def endpoint_url(self) -> str | None:
        """The model's endpoint, for Open WebUI and other tools; offline, only one on this computer."""
        if self.settings.base_url:
            local = on_this_computer(self.settings.base_url) or not self.settings.offline
            return self.settings.base_url if local else None
        runtime = self._runtime_status
        return runtime.base_url if runtime is not None and runtime.state is RuntimeState.READY else None

    def copy_endpoint(self) -> None:
        url = self.endpoint_url()
        if url is None:
            return
        if compat.copy_to_clipboard(url):
            self._tell("Endpoint URL copied", url)
        else:
            self._tell("Could not copy the endpoint URL", url)

    def autostart_enabled(self) -> bool:
        return self.autostart.enabled()

    def toggle_autostart(self) -> None:
        if self.autostart.enabled():
            self.autostart.disable()
        else:
            self.autostart.enable(self_command(BACKGROUND_FLAG))
        self._refresh_menu()

    def offline_enabled(self) -> bool:
        return self.settings.offline

    def toggle_offline(self) -> None:
        """Offline mode on or off, saved for the next starts. The runtime and the chat start again
        with it: the runtime's catalog is chosen when it starts, and the chat's routes with it."""
        if self._busy:
            return
        offline = not self.settings.offline
        try:
            save_setting(self.paths.settings_file, "offline", offline)
        except (SettingsError, OSError) as error:
            self._tell("Offline mode is not saved", f"It applies until you quit ({error}).")
        self.settings = replace(self.settings, offline=offline)
        self._busy = f"Turning offline mode {'on' if offline else 'off'}…"
        self._refresh_menu()
        self._background(self._restart_for_offline, offline)

    def _restart_for_offline(self, offline: bool) -> None:
        try:
            for stop in (self._stop_chat, self._stop_runtime):
                stop()
            self._start_runtime_and_chat()
            if self._page == "chat":
                self._page_pending = True  # the chat's new link, once it is up (if its address moved)
        finally:
            self._busy = None
            self._models_for = None
        if offline:
            self._tell("Offline mode is on", "Nothing leaves this computer: no catalog, no downloads.")
        else:
            self._tell("Offline mode is off", "The model catalog is asked when you need a model from it.")

    def open_logs(self) -> None:
        compat.open_path(str(self.paths.log_dir))

    def quit(self) -> None:
        """Stop everything we started, within the deadline, then end the tray loop."""
        if self._quitting.is_set():
            return
        self._quitting.set()
        threading.Thread(target=self._shutdown, name="quit", daemon=True).start()

    # -- helpers -----------------------------------------------------------------------------

    def _shutdown(self) -> None:
        """Stop every service at once: one by one, a service that exits by itself meanwhile would
        be restarted by its supervisor while another is being stopped (at logout every process of
        the session gets SIGTERM together). Together is also quicker."""
        deadline = threading.Timer(QUIT_DEADLINE_S, self._force_exit)
        deadline.daemon = True
        deadline.start()
        try:
            steps = (self._stop_window, self._stop_chat, self._stop_webui, self._stop_runtime)
            stopping = [
                threading.Thread(target=self._quit_step, args=(step,), name=step.__name__, daemon=True)
                for step in steps
            ]
            for thread in stopping:
                thread.start()
            for thread in stopping:
                thread.join(QUIT_DEADLINE_S)  # each step has a timeout; past the deadline, _force_exit
            if self.webgpu is not None:
                self.webgpu.close()
            self.secret.discard(self.paths.state_dir)
            self.record.release()
            self.lock.release()
        finally:
            deadline.cancel()
            if self.tray is not None:
                self.tray.stop()
            self._stopped.set()
            log.info("quit")

    @staticmethod
    def _quit_step(step: Callable[[], None]) -> None:
        try:
            step()
        except Exception:
            log.exception("error while quitting")

    def _stop_window(self) -> None:
        if self.window is not None:
            self.window.close()

    def _stop_chat(self) -> None:
        if self.chat is not None:
            self.chat.stop()

    def _stop_webui(self) -> None:
        if self._webui_started_by_us:
            self.open_webui.stop()

    def _stop_runtime(self) -> None:
        if self.runtime is not None:
            self.runtime.stop()

    def _force_exit(self) -> None:
        """Quit took too long: kill what is left of our children and leave."""
        log.error("quit took longer than %.0f s; killing what is left", QUIT_DEADLINE_S)
        for child in psutil_children():
            kill_tree(child)
        os._exit(1)

    def _background(self, target: Callable[..., None], *args: Any) -> None:
        threading.Thread(target=target, args=args, name=target.__name__, daemon=True).start()

    def _refresh_menu(self) -> None:
        if self.tray is not None:
            self.tray.refresh()

    def _tell(self, title: str, message: str) -> None:
        log.info("%s: %s", title, message)
        if self.notifier is not None:
            with contextlib.suppress(Exception):
                self.notifier.send(title, message)
        self._refresh_menu()


def psutil_children() -> list[int]:
    import psutil

    return [p.pid for p in psutil.Process().children()]


def placeholder_page(headline: str, detail: str) -> str:
    """A local page shown while the chat is not up yet (no network, no server needed)."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Foundry Desk</title><style>"
        "body{font-family:system-ui,sans-serif;background:#0f3d3a;color:#fff;display:flex;"
        "align-items:center;justify-content:center;height:100vh;margin:0}"
        "main{text-align:center}p{opacity:.8}</style></head><body><main>"
        f"<h1>{html.escape(headline)}</h1><p>{html.escape(detail)}</p>"
        "</main></body></html>"
    )


def run_app(settings: Settings, paths: AppPaths, **options: Any) -> int:
    """`foundry-desk` with no arguments: the tray, the supervised services, and the window."""
    return DesktopApp(settings, paths, **options).run()
