"""`foundry-desk --headless`: the service stack without tray or window, for servers and tests.

A front end over `ServiceStack`: it prints each change of the services' state (the endpoint once
the model is ready; the chat's link; Open WebUI up, restarting, running again or failed, with its
log and what to do), and runs until it is interrupted (Ctrl+C / SIGTERM), when the stack stops
every process it started. A runtime host that failed for good ends the run (exit code 1).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import TextIO

from desktop.config import Settings
from desktop.openwebui.service import TRY_AGAIN, OpenWebUIState, OpenWebUIStatus
from desktop.paths import AppPaths
from desktop.runrecord import AlreadyRunning
from desktop.stack import ChatService, ServiceStack, StackStatus, default_chat
from desktop.status_text import describe, describe_attached
from desktop.supervisor import ServiceState, ServiceStatus

Printer = Callable[[str], None]
DOWN = (OpenWebUIState.RESTARTING, OpenWebUIState.FAILED)


def run_headless(
    settings: Settings,
    paths: AppPaths,
    out: TextIO,
    stop: threading.Event,
    *,
    restart: threading.Event | None = None,
    with_open_webui: bool = False,
    with_chat: bool = False,
) -> int:
    """Run until `stop` is set; returns the exit code. `restart` (set by SIGHUP) starts the
    services that failed for good again."""
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            print(line, file=out, flush=True)

    stack = ServiceStack(settings, paths, say=say, chat_factory=default_chat if with_chat else None)
    try:
        stack.claim()
    except AlreadyRunning as error:
        say(f"{error} Quit it first, or use its endpoint.")
        return 1
    hint = f" Here: kill -HUP {os.getpid()}" if restart is not None and hasattr(signal, "SIGHUP") else ""
    printer = TerminalPrinter(say, stack, hint)
    stack.subscribe(printer)
    if with_open_webui:
        stack.start_open_webui()
    stack.start()
    try:
        while not stop.wait(0.1):
            if printer.runtime_failed:
                return 1
            if restart is not None and restart.is_set():
                restart.clear()
                for service in stack.status.failed:
                    say(f"{service.name}: restarting, as asked")
                    stack.restart(service.name)
        return 0
    finally:
        hosted = stack.runtime is not None
        stack.stop()
        if hosted:
            say("Stopped.")


class TerminalPrinter:
    """Says each change of the services as lines (called by the stack's watch thread)."""

    def __init__(self, say: Printer, stack: ServiceStack, restart_hint: str = "") -> None:
        self.say = say
        self.stack = stack
        self.runtime_failed = False
        self.restart_hint = restart_hint
        """How the user restarts a service that failed for good (the tray's Restart, here)."""
        self._last: dict[str, object] = {}
        self._webui_went_down = False

    def __call__(self, status: StackStatus) -> None:
        if status.runtime_service is not None:
            self._once("runtime", describe(status.runtime_service, status.runtime))
            if status.runtime_service.state is ServiceState.FAILED and not self.runtime_failed:
                for line in status.runtime_service.log_tail:
                    self.say(f"  | {line}")
                self.runtime_failed = True
        if status.attached is not None:
            self._once("attached", describe_attached(status))
        if status.chat is not None and self.stack.chat is not None:
            self._chat(status.chat, self.stack.chat)
        self._open_webui(status.open_webui)

    def _once(self, key: str, line: str) -> None:
        """Say `line` unless it is what was said last for `key`."""
        if self._last.get(key) != line:
            self._last[key] = line
            self.say(line)

    def _chat(self, status: ServiceStatus, chat: ChatService) -> None:
        if status.state is ServiceState.RUNNING:
            if self._last.get("chat") != "running":
                self._last["chat"] = "running"
                self.say(f"chat: {chat.link()}")  # opens the chat (once) in a browser of the user's
        elif status.state is ServiceState.BACKOFF:
            self._once("chat", f"chat server {status.state.value}: {status.message}")
        elif status.state is ServiceState.FAILED:
            self._once("chat", f"chat server failed: {status.message}{self.restart_hint}")

    def _open_webui(self, status: OpenWebUIStatus) -> None:
        """Say Open WebUI's state when it (or its count of restarts) changed."""
        seen = (status.state, status.restarts)
        before = self._last.get("open-webui")
        if seen == before or (before is None and status.state is OpenWebUIState.STOPPED):
            return
        if status.state is OpenWebUIState.STARTING and isinstance(before, tuple) and before[0] in DOWN:
            return  # starting again after it stopped by itself: the restart was said already
        restarted = isinstance(before, tuple) and status.restarts > before[1]
        self._last["open-webui"] = seen
        for line in self._webui_lines(status, restarted):
            self.say(line)

    def _webui_lines(self, status: OpenWebUIStatus, restarted: bool) -> list[str]:
        location = self.stack.open_webui.log_location
        if status.state is OpenWebUIState.RUNNING:
            again = self._webui_went_down or restarted
            self._webui_went_down = False
            lines = [f"open-webui: running{' again' if again else ''}: {status.message}"]
            link = self.stack.open_webui.link() if not again else None
            if link is not None and link != status.url:
                lines.append(f"open-webui: open it signed in (the link works once): {link}")
            return lines
        if status.state is OpenWebUIState.RESTARTING:
            self._webui_went_down = True
            return [f"open-webui: restarting: {status.message}. Its log: {location}"]
        if status.state is OpenWebUIState.FAILED:
            self._webui_went_down = True
            return [
                f"open-webui: failed: {status.message}",
                *(f"  | {line}" for line in status.log_tail),
                f"  Its log: {location}",
                f"  {TRY_AGAIN}{self.restart_hint}",
            ]
        if status.state in (OpenWebUIState.STARTING, OpenWebUIState.STOPPED):
            return [f"open-webui: {status.message}"]
        return [f"open-webui: {status.state.value}: {status.message}"]
