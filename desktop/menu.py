"""The tray menu's actions over the service stack (`tray.TrayActions`): the models, Open WebUI,
the endpoint, offline mode, start at login, and Restart for a service that failed for good.

pystray calls them on its loop's thread: they return at once and do slow work on threads of their
own. What the menu shows is read from the stack's latest status each time the menu is built.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from desktop.config import Settings, SettingsError, save_setting
from desktop.documents.index import SourceRefused
from desktop.openwebui.service import OpenWebUIState
from desktop.paths import AppPaths, self_command
from desktop.runtime.service import RuntimeRequestError
from desktop.runtime.status import RuntimeState
from desktop.shell import platform
from desktop.shell.autostart import Autostart
from desktop.shell.tray import FileSourceItem, ModelChoice, ShellStatus
from desktop.stack import LABELS, ServiceStack, StackStatus

BACKGROUND_FLAG = "--background"
"""How start-at-login runs the app: tray and services, no window."""


class Shell(Protocol):
    """The app around the menu: its window, its notifications, its state line."""

    paths: AppPaths
    busy: str | None

    @property
    def status(self) -> ShellStatus: ...
    def open_chat(self, view: str | None = None) -> None: ...
    def open_webgpu(self) -> None: ...
    def quit(self) -> None: ...
    def tell(self, title: str, message: str) -> None: ...
    def set_busy(self, busy: str | None) -> None: ...
    def refresh_menu(self) -> None: ...
    def chat_moved(self) -> None: ...


class TrayMenu:
    """The menu of one desktop app (`app`), acting on its `stack`."""

    def __init__(self, app: Shell, stack: ServiceStack, autostart: Autostart) -> None:
        self.app = app
        self.stack = stack
        self.autostart = autostart
        self._webui_was = OpenWebUIState.STOPPED

    def observe(self, status: StackStatus) -> None:
        """Each change of the services: a start of Open WebUI tells how it went."""
        before, self._webui_was = self._webui_was, status.open_webui.state
        if before is OpenWebUIState.STARTING and status.open_webui.state is not OpenWebUIState.STARTING:
            running = status.open_webui.state is OpenWebUIState.RUNNING
            title = "Open WebUI is running" if running else "Open WebUI did not start"
            self.app.tell(title, status.open_webui.message)

    @property
    def settings(self) -> Settings:
        return self.stack.settings

    @property
    def status(self) -> ShellStatus:
        return self.app.status

    def open_chat(self) -> None:
        self.app.open_chat()

    def open_webgpu(self) -> None:
        self.app.open_webgpu()

    def quit(self) -> None:
        self.app.quit()

    def restart_label(self) -> str | None:
        """The Restart item's label, naming the services that failed for good; None: none did."""
        failed = self.stack.status.failed
        return f"Restart {' and '.join(LABELS[s.name] for s in failed)}" if failed else None

    def restart_failed(self) -> None:
        for service in self.stack.status.failed:
            _background(self.stack.restart, service.name)

    def can_choose_model(self) -> bool:
        """The app hosts the runtime, so the chat window's first-run view can give it a model."""
        return self.settings.base_url is None

    def model_choices(self) -> list[ModelChoice]:
        status = self.stack.status
        runtime = status.runtime
        current = runtime.model_id if runtime is not None and runtime.state is RuntimeState.READY else None
        return [ModelChoice(m.id, m.alias or m.id, m.id == current) for m in status.models]

    def select_model(self, model_id: str) -> None:
        if self.app.busy or any(choice.current and choice.id == model_id for choice in self.model_choices()):
            return  # already served: nothing to switch
        label = next((m.alias for m in self.stack.status.models if m.id == model_id), model_id)
        self.app.set_busy(f"Switching to {label}…")
        _background(self._switch_model, model_id, label)

    def _switch_model(self, model_id: str, label: str) -> None:
        try:
            status = self.stack.client.select(model_id)
            if status.state is RuntimeState.READY:
                self.app.tell("Model switched", f"Now serving {status.model_alias or label}.")
            else:
                self.app.tell("Could not switch the model", status.message)
        except (RuntimeRequestError, TimeoutError) as error:
            self.app.tell("Could not switch the model", str(error))
        finally:
            self.app.set_busy(None)

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
        _background(self.stack.stop_open_webui)

    def open_open_webui(self) -> None:
        """In the user's browser, signed in with the app's account (a new one-time link)."""
        _background(self._open_open_webui)

    def _open_open_webui(self) -> None:
        link = self.stack.open_webui.link()
        if link is not None:
            platform.open_path(link)
        else:
            self.app.tell("Open WebUI is not running", self.stack.open_webui.status().message)

    def endpoint_url(self) -> str | None:
        return self.stack.endpoint_url()

    def copy_endpoint(self) -> None:
        url = self.endpoint_url()
        if url is None:
            return
        if platform.copy_to_clipboard(url):
            self.app.tell("Endpoint URL copied", url)
        else:
            self.app.tell("Could not copy the endpoint URL", url)

    def autostart_enabled(self) -> bool:
        return self.autostart.enabled()

    def toggle_autostart(self) -> None:
        if self.autostart.enabled():
            self.autostart.disable()
        else:
            self.autostart.enable(self_command(BACKGROUND_FLAG))
        self.app.refresh_menu()

    def offline_enabled(self) -> bool:
        return self.settings.offline

    def toggle_offline(self) -> None:
        """Offline mode on or off, saved for the next starts. The runtime and the chat start again
        with it: the runtime's catalog is chosen when it starts, and the chat's routes with it."""
        if self.app.busy:
            return
        offline = not self.settings.offline
        try:
            save_setting(self.app.paths.settings_file, "offline", offline)
        except (SettingsError, OSError) as error:
            self.app.tell("Offline mode is not saved", f"It applies until you quit ({error}).")
        self.app.set_busy(f"Turning offline mode {'on' if offline else 'off'}…")
        _background(self._restart_for_offline, replace(self.settings, offline=offline))

    def _restart_for_offline(self, settings: Settings) -> None:
        try:
            self.stack.restart_with(settings)
            self.app.chat_moved()
        finally:
            self.app.set_busy(None)
        if settings.offline:
            self.app.tell("Offline mode is on", "Nothing leaves this computer: no catalog, no downloads.")
        else:
            self.app.tell("Offline mode is off", "The model catalog is asked when you need a model from it.")

    def open_logs(self) -> None:
        platform.open_path(str(self.app.paths.log_dir))

    def files_label(self) -> str | None:
        """ "Your files", with the indexer's progress while it reads; None without a chat."""
        if not self.stack.has_chat:
            return None
        files = self.stack.status.files
        if files is not None and files.busy and files.state == "embedding":
            return f"Your files (reading {files.done:,} of {files.total:,} passages for meaning)"
        if files is not None and files.busy:
            return f"Your files (indexing {files.done:,} of {files.total:,})"
        return "Your files"

    def file_sources(self) -> list[FileSourceItem]:
        items = []
        for source in self.stack.files.sources():
            name = Path(source.path).name or source.path
            found = (
                f"{source.files:,} file{'s' if source.files != 1 else ''}" if source.exists else "not found"
            )
            items.append(FileSourceItem(source.path, f"{name} ({found})"))
        return items

    def add_files_folder(self) -> None:
        """The chat's Your files dialog, where the system's folder dialog is one click away."""
        self.app.open_chat(view="files")

    def reindex_files(self) -> None:
        _background(self.stack.files.request_refresh)

    def open_file_source(self, path: str) -> None:
        platform.open_path(path)

    def remove_file_source(self, path: str) -> None:
        _background(self._remove_file_source, path)

    def _remove_file_source(self, path: str) -> None:
        try:
            self.stack.files.remove(Path(path))
        except SourceRefused as error:
            self.app.tell("Could not remove the folder", str(error))
        self.app.refresh_menu()


def _background(target: Callable[..., None], *args: Any) -> None:
    threading.Thread(target=target, args=args, name=target.__name__, daemon=True).start()
