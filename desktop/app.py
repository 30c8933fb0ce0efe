"""Foundry Desk as a desktop app: the tray, the window and notifications, over the service stack.

A front end of `ServiceStack` (see `desktop/README.md`): the stack starts, watches and stops the
services; this shows their state (icon, tooltip, menu, notifications, the window's page) and
turns menu clicks into the stack's actions.

Threads and processes::

    main thread      the tray icon's loop (pystray: GTK / Win32 / Cocoa), or a wait when no tray
    watch thread     the stack's: reads the services' state, tells `_on_services` of each change
    supervisors      one thread each (runtime host, chat server), forking and watching their child
    window thread    owns the window child (`window-host`), forks it and writes its commands
    instance thread  obeys later launches ("show", "quit")

Quit stops the window and the stack's services together, and the WebGPU page server, within
`QUIT_DEADLINE_S`; past it whatever is left is killed.
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
from typing import Any, TextIO

from desktop import APP_NAME, compat
from desktop.config import Settings, SettingsError, save_setting
from desktop.loopback import on_this_computer
from desktop.openwebui.service import OpenWebUIState
from desktop.paths import AppPaths, self_command
from desktop.process import kill_tree
from desktop.runrecord import AlreadyRunning
from desktop.runtime.service import RuntimeRequestError
from desktop.runtime.status import RuntimeState
from desktop.shell import autostart, instance, platform
from desktop.shell.notify import Notifier, Snapshot, dbus_sender, model_choice_hint
from desktop.shell.tray import ModelChoice, ShellState, ShellStatus, Tray
from desktop.shell.window import WindowClient, WindowEvent
from desktop.stack import LABELS, ChatFactory, ServiceStack, StackStatus, default_chat, run_together
from desktop.webgpu import WebGpuServer, serve_webgpu

log = logging.getLogger(__name__)

CHAT_TITLE = "Foundry Desk — Chat"
WEBGPU_TITLE = "Foundry Desk — WebGPU demo"
QUIT_DEADLINE_S = 20.0
BACKGROUND_FLAG = "--background"
"""How start-at-login runs the app: tray and services, no window."""


@dataclass(frozen=True)
class Milestones:
    """When things first happened (monotonic seconds), for the benchmark and the log."""

    started: float
    icon_visible: float | None = None
    window_loaded: float | None = None


class DesktopApp:
    """The desktop front end for one run. Its methods are the tray menu's actions (`TrayActions`)."""

    def __init__(
        self,
        settings: Settings,
        paths: AppPaths,
        *,
        chat_factory: ChatFactory | None = default_chat,
        window_command: Sequence[str] | None = None,
        show_window: bool = True,
        err: TextIO | None = None,
    ) -> None:
        self.paths = paths
        self.err = err or sys.stderr
        self.milestones = Milestones(time.monotonic())
        self._show_window_at_start = show_window
        self._window_command = list(window_command or self_command("window-host"))
        self.lock = instance.InstanceLock(paths.state_dir)
        # A multi-GB download only when the user asks for it (the chat's first-run view).
        self.stack = ServiceStack(settings, paths, chat_factory=chat_factory, ask_before_download=True)
        self.autostart = autostart.for_this_platform()
        self.tray: Tray | None = None
        self.tray_problem = ""
        self.window: WindowClient | None = None
        self.webgpu: WebGpuServer | None = None
        self.notifier: Notifier | None = None
        self._status = ShellStatus(ShellState.STARTING, "Starting…")
        self._busy: str | None = None
        self._status_of_webui = OpenWebUIState.STOPPED
        self._page: str | None = None
        self._page_pending = False
        self._quitting = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()

    @property
    def settings(self) -> Settings:
        return self.stack.settings

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
            self.stack.claim()
        except AlreadyRunning as error:
            print(f"{APP_NAME}: {error} (started with --headless?) Quit it first.", file=self.err)
            self.lock.release()
            return 1
        self.lock.serve({"show": self.open_chat, "quit": self.quit})
        backend, self.tray_problem = platform.tray_backend(os.environ)
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
        return 0

    def _run_without_tray(self) -> None:
        message = f"No tray icon: {self.tray_problem}. Close the window to quit {APP_NAME}."
        print(f"{APP_NAME}: {message}", file=self.err, flush=True)
        log.warning("%s", message)
        sender = dbus_sender(APP_NAME) if compat.IS_LINUX else (lambda title, text: None)
        self.notifier = Notifier(sender)
        with contextlib.suppress(Exception):
            sender("Foundry Desk has no tray icon", message)
        self.open_chat()
        self._stopped.wait()

    def _setup(self, icon: Any) -> None:
        icon.visible = True
        self.milestones = replace(self.milestones, icon_visible=time.monotonic())
        log.info("tray icon shown (%s backend)", self.tray.backend if self.tray else "?")
        if self._show_window_at_start:  # a start at login (`--background`) shows only the tray
            self.open_chat()

    def _start_services(self) -> None:
        self.stack.subscribe(self._on_services)
        self.stack.start()
        record = self.stack.record
        self.window = WindowClient(
            [*self._window_command, "--storage-dir", str(self.paths.data_dir / "webview")],
            self.paths.log_dir / "window.log",
            record.child_env,
            on_event=self._on_window_event,
            on_spawn=record.add_child,
            on_exit=record.remove_child,
        )

    def _capture_signals(self) -> dict[int, Any]:
        """SIGINT/SIGTERM mean Quit (only possible from the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {s: signal.signal(s, lambda *_: self.quit()) for s in (signal.SIGINT, signal.SIGTERM)}

    # -- showing the services ----------------------------------------------------------------

    def _on_services(self, status: StackStatus) -> None:
        """Each change of the services (on the stack's watch thread)."""
        before = self._status_of_webui
        self._status_of_webui = status.open_webui.state
        if before is OpenWebUIState.STARTING and status.open_webui.state is not OpenWebUIState.STARTING:
            running = status.open_webui.state is OpenWebUIState.RUNNING
            title = "Open WebUI is running" if running else "Open WebUI did not start"
            self._tell(title, status.open_webui.message)
        self._render(status)
        if self.notifier is not None:
            self.notifier.observe(snapshot(status))
        self._show_chat_if_waiting()

    def _show_chat_if_waiting(self) -> None:
        """The window waits for the chat (showing "The chat is starting…"): show it once it is up."""
        window = self.window
        waiting = self._page == "chat" and self._page_pending and window and window.visible
        if waiting and window and self.stack.chat_url() is not None:
            self._page_pending = False
            window.show(self._chat_link(), CHAT_TITLE)

    def _render(self, status: StackStatus) -> None:
        shown = shell_status(status, self.settings, self._busy)
        if shown != self._status:
            self._status = shown
            if self.tray is not None:
                self.tray.show(shown)
        elif self.tray is not None:
            self.tray.refresh()  # the menu: models, Open WebUI, Restart

    def _chat_link(self) -> str:
        """The chat's address with a one-time token: the window gets the chat's cookie with it
        (it loads the link only when it is not on the chat already)."""
        assert self.stack.chat is not None
        return self.stack.chat.link()

    def _on_window_event(self, event: WindowEvent) -> None:
        if event.name == "loaded" and self.milestones.window_loaded is None:
            self.milestones = replace(self.milestones, window_loaded=time.monotonic())
            log.info("window loaded %s", event.data.get("url"))
        if event.name == "shown":
            self._show_chat_if_waiting()
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
        if self.stack.chat_url() is not None:
            self._page_pending = False
            window.show(self._chat_link(), CHAT_TITLE)
            return
        self._page_pending = self.stack.chat is not None
        reason = "The chat is starting…" if self.stack.chat is not None else "The chat is not available."
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

    def restart_label(self) -> str | None:
        """ "Restart …" naming the services that failed for good; None when none did."""
        failed = self.stack.status.failed
        return f"Restart {' and '.join(LABELS[s.name] for s in failed)}" if failed else None

    def restart_failed(self) -> None:
        for service in self.stack.status.failed:
            self._background(self.stack.restart, service.name)

    def can_choose_model(self) -> bool:
        """The app hosts the runtime, so the chat window's first-run view can give it a model."""
        return self.settings.base_url is None

    def model_choices(self) -> list[ModelChoice]:
        status = self.stack.status
        runtime = status.runtime
        current = runtime.model_id if runtime is not None and runtime.state is RuntimeState.READY else None
        return [ModelChoice(m.id, m.alias or m.id, m.id == current) for m in status.models]

    def select_model(self, model_id: str) -> None:
        if self._busy or any(choice.current and choice.id == model_id for choice in self.model_choices()):
            return  # already served: nothing to switch
        label = next((m.alias for m in self.stack.status.models if m.id == model_id), model_id)
        self._set_busy(f"Switching to {label}…")
        self._background(self._switch_model, model_id, label)

    def _switch_model(self, model_id: str, label: str) -> None:
        try:
            status = self.stack.client.select(model_id)
            if status.state is RuntimeState.READY:
                self._tell("Model switched", f"Now serving {status.model_alias or label}.")
            else:
                self._tell("Could not switch the model", status.message)
        except (RuntimeRequestError, TimeoutError) as error:
            self._tell("Could not switch the model", str(error))
        finally:
            self._set_busy(None)

    def open_webui_label(self) -> str:
        return f"Open WebUI ({self.stack.status.open_webui.state.value})"

    def can_start_open_webui(self) -> bool:
        stopped = (OpenWebUIState.STOPPED, OpenWebUIState.FAILED, OpenWebUIState.UNAVAILABLE)
        return self.stack.status.open_webui.state in stopped and bool(self.endpoint_url())

    def can_stop_open_webui(self) -> bool:
        running = (OpenWebUIState.RUNNING, OpenWebUIState.STARTING, OpenWebUIState.RESTARTING)
        return self.stack.status.open_webui.state in running

    def can_open_open_webui(self) -> bool:
        return self.stack.status.open_webui.state is OpenWebUIState.RUNNING

    def start_open_webui(self) -> None:
        self.stack.start_open_webui()

    def stop_open_webui(self) -> None:
        self._background(self.stack.stop_open_webui)

    def open_open_webui(self) -> None:
        """In the user's browser, signed in with the app's account (a new one-time link)."""
        self._background(self._open_open_webui)

    def _open_open_webui(self) -> None:
        link = self.stack.open_webui.link()
        if link is not None:
            platform.open_path(link)
        else:
            self._tell("Open WebUI is not running", self.stack.open_webui.status().message)

    def endpoint_url(self) -> str | None:
        return self.stack.endpoint_url()

    def copy_endpoint(self) -> None:
        url = self.endpoint_url()
        if url is None:
            return
        if platform.copy_to_clipboard(url):
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
        self._set_busy(f"Turning offline mode {'on' if offline else 'off'}…")
        self._background(self._restart_for_offline, replace(self.settings, offline=offline))

    def _restart_for_offline(self, settings: Settings) -> None:
        try:
            self.stack.restart_with(settings)
            if self._page == "chat":
                self._page_pending = True  # the chat's new link, once it is up (if its address moved)
        finally:
            self._set_busy(None)
        if settings.offline:
            self._tell("Offline mode is on", "Nothing leaves this computer: no catalog, no downloads.")
        else:
            self._tell("Offline mode is off", "The model catalog is asked when you need a model from it.")

    def open_logs(self) -> None:
        platform.open_path(str(self.paths.log_dir))

    def quit(self) -> None:
        """Stop everything we started, within the deadline, then end the tray loop."""
        if self._quitting.is_set():
            return
        self._quitting.set()
        threading.Thread(target=self._shutdown, name="quit", daemon=True).start()

    # -- helpers -----------------------------------------------------------------------------

    def _shutdown(self) -> None:
        """Stop the window and the services together (at logout every process of the session
        gets SIGTERM at once; together is also quicker)."""
        deadline = threading.Timer(QUIT_DEADLINE_S, self._force_exit)
        deadline.daemon = True
        deadline.start()
        try:
            run_together([self._stop_window, self.stack.stop], QUIT_DEADLINE_S)
            if self.webgpu is not None:
                self.webgpu.close()
            self.lock.release()
        finally:
            deadline.cancel()
            if self.tray is not None:
                self.tray.stop()
            self._stopped.set()
            log.info("quit")

    def _stop_window(self) -> None:
        if self.window is not None:
            self.window.close()

    def _force_exit(self) -> None:
        """Quit took too long: kill what is left of our children and leave."""
        log.error("quit took longer than %.0f s; killing what is left", QUIT_DEADLINE_S)
        for child in psutil_children():
            kill_tree(child)
        os._exit(1)

    def _set_busy(self, busy: str | None) -> None:
        self._busy = busy
        self._render(self.stack.status)

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
