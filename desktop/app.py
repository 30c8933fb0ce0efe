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
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, TextIO

from desktop import APP_NAME, compat
from desktop.config import Settings
from desktop.menu import TrayMenu
from desktop.paths import AppPaths, self_command
from desktop.process import descendants, kill_all
from desktop.runrecord import AlreadyRunning
from desktop.shell import autostart, instance, platform
from desktop.shell.notify import Notifier, dbus_sender
from desktop.shell.pages import WindowPages
from desktop.shell.tray import ShellState, ShellStatus, Tray
from desktop.shell.window import WindowClient, WindowEvent
from desktop.signals import capture_signals
from desktop.stack import ChatFactory, ServiceStack, StackStatus, default_chat, run_together
from desktop.status_text import shell_status, snapshot

log = logging.getLogger(__name__)

QUIT_DEADLINE_S = 20.0


@dataclass(frozen=True)
class Milestones:
    """When things first happened (monotonic seconds), for the benchmark and the log."""

    started: float
    icon_visible: float | None = None
    window_loaded: float | None = None


class DesktopApp:
    """The desktop front end for one run: the tray (its menu: `menu.TrayMenu`), the window, and
    notifications, showing the stack's services."""

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
        self.menu = TrayMenu(self, self.stack, autostart.for_this_platform())
        self.tray: Tray | None = None
        self.tray_problem = ""
        self.pages: WindowPages | None = None
        self.notifier: Notifier | None = None
        self._status = ShellStatus(ShellState.STARTING, "Starting…")
        self.busy: str | None = None
        """A long action under way (a switch, offline mode turning on), shown as the state."""
        self._quitting = threading.Event()
        self._stopped = threading.Event()

    @property
    def settings(self) -> Settings:
        return self.stack.settings

    @property
    def window(self) -> WindowClient | None:
        return self.pages.window if self.pages is not None else None

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
        with capture_signals(self.quit):
            # The services start first: the chat server takes seconds to start, the tray under one.
            self._start_services()
            if backend is not None:
                self.tray = Tray(self.menu, backend)
                self.notifier = Notifier(self.tray.notify)
                if not self._quitting.is_set():
                    self.tray.run(setup=self._setup)
            else:
                self._run_without_tray()
            self._stopped.wait(QUIT_DEADLINE_S + 5)
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
        window = WindowClient(
            [*self._window_command, "--storage-dir", str(self.paths.data_dir / "webview")],
            self.paths.log_dir / "window.log",
            record.child_env,
            on_event=self._on_window_event,
            on_spawn=record.add_child,
            on_exit=record.remove_child,
        )
        self.pages = WindowPages(window, self.stack)

    # -- showing the services ----------------------------------------------------------------

    def _on_services(self, status: StackStatus) -> None:
        """Each change of the services (on the stack's watch thread)."""
        self.menu.observe(status)
        self._render(status)
        if self.notifier is not None:
            self.notifier.observe(snapshot(status))
        if self.pages is not None:
            self.pages.show_chat_if_waiting()

    def _render(self, status: StackStatus) -> None:
        shown = shell_status(status, self.settings, self.busy)
        if shown != self._status:
            self._status = shown
            if self.tray is not None:
                self.tray.show(shown)
        elif self.tray is not None:
            self.tray.refresh()  # the menu: models, Open WebUI, Restart

    def _on_window_event(self, event: WindowEvent) -> None:
        if event.name == "loaded" and self.milestones.window_loaded is None:
            self.milestones = replace(self.milestones, window_loaded=time.monotonic())
            log.info("window loaded %s", event.data.get("url"))
        if event.name == "shown" and self.pages is not None:
            self.pages.show_chat_if_waiting()
        if event.name == "hidden" and event.data.get("by_user") and self.tray is None:
            self.quit()  # without a tray icon the window is the only way to quit

    # -- the menu's actions (TrayActions) ----------------------------------------------------

    @property
    def status(self) -> ShellStatus:
        return self._status

    def open_chat(self, view: str | None = None) -> None:
        if self.pages is not None:
            self.pages.open_chat(self._status.text, view)

    def open_webgpu(self) -> None:
        if self.pages is not None:
            self.pages.open_webgpu()

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
            run_together([self._close_window, self.stack.stop], QUIT_DEADLINE_S)
            self.lock.release()
        finally:
            deadline.cancel()
            if self.tray is not None:
                self.tray.stop()
            self._stopped.set()
            log.info("quit")

    def _close_window(self) -> None:
        if self.pages is not None:
            self.pages.close()

    def _force_exit(self) -> None:
        """Quit took too long: kill what is left of our children and leave."""
        log.error("quit took longer than %.0f s; killing what is left", QUIT_DEADLINE_S)
        kill_all(descendants())
        os._exit(1)

    def set_busy(self, busy: str | None) -> None:
        """A long action under way, shown in the icon and the tooltip (None: done)."""
        self.busy = busy
        self._render(self.stack.status)

    def chat_moved(self) -> None:
        """The chat starts again: the window shows it again once it is up."""
        if self.pages is not None:
            self.pages.chat_moved()

    def refresh_menu(self) -> None:
        if self.tray is not None:
            self.tray.refresh()

    def tell(self, title: str, message: str) -> None:
        """A notification (and a line in the log); the menu is re-read."""
        log.info("%s: %s", title, message)
        if self.notifier is not None:
            with contextlib.suppress(Exception):
                self.notifier.send(title, message)
        self.refresh_menu()


def run_app(settings: Settings, paths: AppPaths, **options: Any) -> int:
    """`foundry-desk` with no arguments: the tray, the supervised services, and the window."""
    return DesktopApp(settings, paths, **options).run()
