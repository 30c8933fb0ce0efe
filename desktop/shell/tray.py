"""The tray icon and its menu (pystray): a picture and tooltip for the app's state, and the actions.

The menu is built from callables that pystray re-reads on `update_menu()`, and every action is a
bound method of the object that owns the state (`TrayActions`, the app), so the menu always shows
the truth and nothing lives in globals. pystray calls actions on its own loop's thread (the main
thread): actions return at once and do slow work elsewhere.
"""

from __future__ import annotations

import enum
import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from desktop import APP_NAME, compat
from desktop.paths import resource_root
from desktop.shell import platform, pystray_notifications

TITLE_LIMIT = 127
"""Windows cuts tooltips at 127 characters."""


class ShellState(enum.Enum):
    """What the icon shows; one picture per state in `resources/icons/`."""

    STARTING = "starting"
    DOWNLOADING = "downloading"
    READY = "ready"
    WORKING = "working"
    ERROR = "error"


@dataclass(frozen=True)
class ShellStatus:
    state: ShellState
    text: str
    """One line for the tooltip and the top of the menu, e.g. "Ready: phi-4-mini"."""
    progress: float | None = None

    @property
    def tooltip(self) -> str:
        return f"Foundry Desk: {self.text}"[:TITLE_LIMIT]


@dataclass(frozen=True)
class ModelChoice:
    id: str
    label: str
    current: bool


@dataclass(frozen=True)
class FileSourceItem:
    """A folder (or file) the user added to the index, as its menu item shows it."""

    path: str
    label: str


def icon_file(state: ShellState, size: int = 64) -> Path:
    """The icon for `state`: an ICO with every size on Windows, else a PNG."""
    folder = resource_root() / "resources" / "icons"
    if compat.PLATFORM == "windows":
        return folder / f"tray-{state.value}.ico"
    return folder / f"tray-{state.value}-{size}.png"


@functools.cache
def icon_image(state: ShellState) -> Image.Image:
    with Image.open(icon_file(state)) as image:
        return image.convert("RGBA")


class TrayActions(Protocol):
    """What the menu shows and does; implemented by the app."""

    @property
    def status(self) -> ShellStatus: ...
    def open_chat(self) -> None: ...
    def open_webgpu(self) -> None: ...
    def restart_label(self) -> str | None: ...
    def restart_failed(self) -> None: ...
    def can_choose_model(self) -> bool: ...
    def model_choices(self) -> list[ModelChoice]: ...
    def select_model(self, model_id: str) -> None: ...
    def open_webui_label(self) -> str: ...
    def can_start_open_webui(self) -> bool: ...
    def can_stop_open_webui(self) -> bool: ...
    def can_open_open_webui(self) -> bool: ...
    def start_open_webui(self) -> None: ...
    def stop_open_webui(self) -> None: ...
    def open_open_webui(self) -> None: ...
    def endpoint_url(self) -> str | None: ...
    def copy_endpoint(self) -> None: ...
    def autostart_enabled(self) -> bool: ...
    def toggle_autostart(self) -> None: ...
    def offline_enabled(self) -> bool: ...
    def toggle_offline(self) -> None: ...
    def open_logs(self) -> None: ...
    def quit(self) -> None: ...
    def files_label(self) -> str | None: ...
    def file_sources(self) -> list[FileSourceItem]: ...
    def add_files_folder(self) -> None: ...
    def reindex_files(self) -> None: ...
    def open_file_source(self, path: str) -> None: ...
    def remove_file_source(self, path: str) -> None: ...


class Tray:
    """One pystray icon bound to `actions`. Create it on the thread that will call `run()`."""

    def __init__(self, actions: TrayActions, backend: str) -> None:
        os.environ["PYSTRAY_BACKEND"] = backend  # pystray picks its backend at import
        with platform.toolkit_without_gl():
            import pystray
        if backend in ("gtk", "appindicator"):
            pystray_notifications.install()  # the icon works without a notification daemon

        self._pystray = pystray
        self.actions = actions
        self.backend = backend
        status = actions.status
        self._shown = status
        self.icon = pystray.Icon(APP_NAME, icon_image(status.state), status.tooltip, menu=self.menu())

    def menu(self) -> Any:
        """The whole menu; every label, check mark and enabled flag is read when it is built."""
        item, menu, actions = self._pystray.MenuItem, self._pystray.Menu, self.actions
        return menu(
            item(lambda _: actions.status.text, None, enabled=False),
            item(
                lambda _: actions.restart_label() or "Restart",
                _call(actions.restart_failed),
                visible=lambda _: actions.restart_label() is not None,
            ),
            menu.SEPARATOR,
            item("Open chat", _call(actions.open_chat), default=True),
            item("Open WebGPU demo", _call(actions.open_webgpu)),
            item("Model", menu(self._model_items)),
            item(lambda _: actions.open_webui_label(), menu(self._open_webui_items)),
            item(
                lambda _: actions.files_label() or "Your files",
                menu(self._files_items),
                visible=lambda _: actions.files_label() is not None,
            ),
            item(
                "Copy endpoint URL",
                _call(actions.copy_endpoint),
                enabled=lambda _: actions.endpoint_url() is not None,
            ),
            menu.SEPARATOR,
            item(
                "Start at login",
                _call(actions.toggle_autostart),
                checked=lambda _: actions.autostart_enabled(),
            ),
            item(
                "Offline mode",
                _call(actions.toggle_offline),
                checked=lambda _: actions.offline_enabled(),
            ),
            item("Open logs folder", _call(actions.open_logs)),
            menu.SEPARATOR,
            item("Quit", _call(actions.quit)),
        )

    def _open_webui_items(self) -> Iterator[Any]:
        item, actions = self._pystray.MenuItem, self.actions
        yield item("Start", _call(actions.start_open_webui), enabled=lambda _: actions.can_start_open_webui())
        yield item("Stop", _call(actions.stop_open_webui), enabled=lambda _: actions.can_stop_open_webui())
        yield item("Open", _call(actions.open_open_webui), enabled=lambda _: actions.can_open_open_webui())

    def _files_items(self) -> Iterator[Any]:
        item, menu, actions = self._pystray.MenuItem, self._pystray.Menu, self.actions
        yield item("Add folder…", _call(actions.add_files_folder))
        sources = actions.file_sources()
        if sources:
            yield menu.SEPARATOR
        for source in sources:
            yield item(
                source.label,
                menu(
                    item("Open", _call(functools.partial(actions.open_file_source, source.path))),
                    item(
                        "Remove from the index",
                        _call(functools.partial(actions.remove_file_source, source.path)),
                    ),
                ),
            )
        if sources:
            yield menu.SEPARATOR
            yield item("Re-index", _call(actions.reindex_files))

    def _model_items(self) -> Iterator[Any]:
        item = self._pystray.MenuItem
        choices = self.actions.model_choices()
        if not choices and self.actions.can_choose_model():  # the chat's first-run view
            yield item("Choose a model…", _call(self.actions.open_chat))
        elif not choices:
            yield item("(no model available yet)", None, enabled=False)
        for choice in choices:
            yield item(
                choice.label,
                _call(functools.partial(self.actions.select_model, choice.id)),
                checked=_constant(choice.current),
                radio=True,
            )

    def show(self, status: ShellStatus) -> None:
        """Show a new state: picture, tooltip, and the menu re-read. Safe from any thread."""
        if status.state is not self._shown.state:
            self.icon.icon = icon_image(status.state)
        if status.tooltip != self._shown.tooltip:
            self.icon.title = status.tooltip
        self._shown = status
        self.refresh()

    def refresh(self) -> None:
        """Re-read the menu (labels, checks, models)."""
        self.icon.update_menu()

    def notify(self, title: str, message: str) -> None:
        self.icon.notify(message, title)

    def find(self, *path: str) -> Any:
        """The menu item reached by these labels, e.g. find("Model", "beta"); for tests and tools."""
        items = self.icon.menu.items
        found = None
        for label in path:
            found = next((i for i in items if i.text == label), None)
            if found is None:
                raise KeyError(f"no menu item {label!r} in {[i.text for i in items]}")
            items = found.submenu.items if found.submenu else ()
        return found

    def run(self, setup: Callable[[Any], None]) -> None:
        """Run the icon's loop on this (the main) thread until `stop()`; `setup` runs beside it."""
        self.icon.run(setup=setup)

    def stop(self) -> None:
        self.icon.stop()


def _call(action: Callable[[], None]) -> Callable[[Any, Any], None]:
    """pystray passes (icon, item); our actions take nothing."""

    def run(icon: Any, item: Any) -> None:
        action()

    return run


def _constant(value: bool) -> Callable[[Any], bool]:
    return lambda _: value
