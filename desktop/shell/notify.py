"""Which changes deserve a desktop notification: what the user wants to know with the window closed.

`notices(before, after)` is a pure function of two snapshots, so it is tested without any GUI;
`Notifier` sends them (through the tray icon, or over D-Bus when there is no tray) and never
repeats one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """The facts notifications are about."""

    runtime: str = "starting"
    """The runtime's state value (`RuntimeState`), or "failed" when its host gave up."""
    model: str | None = None
    """The model being served (when ready) or downloaded."""
    message: str = ""
    failed_services: frozenset[str] = frozenset()
    """Services that failed for good (past their restart cap)."""
    download: str | None = None
    """With no model: the model the runtime offers to download."""


@dataclass(frozen=True)
class Notice:
    title: str
    message: str


def notices(before: Snapshot, after: Snapshot) -> list[Notice]:
    """What changed between two snapshots that the user should hear about."""
    found: list[Notice] = []
    if before.runtime == "downloading" and after.runtime in ("loading", "ready"):
        found.append(Notice("Download finished", f"{after.model or 'The model'} is downloaded."))
    became_ready = after.runtime == "ready" and (before.runtime != "ready" or before.model != after.model)
    if became_ready:
        found.append(Notice("Model ready", f"{after.model} is ready to chat."))
    if after.runtime == "failed" and before.runtime != after.runtime:
        found.append(Notice("The model runtime failed", after.message or "See the logs folder for details."))
    if after.runtime == "no_model" and before.runtime != after.runtime:
        hint = model_choice_hint(after.download)
        found.append(Notice("No model available", f"Open Foundry Desk to {hint}."))
    for service in sorted(after.failed_services - before.failed_services):
        found.append(Notice(f"The {service} service failed", "It was restarted too often; see the logs."))
    return found


def model_choice_hint(download: str | None) -> str:
    """What the user can do without a model, where the app says so (tray, notification)."""
    return "choose a model folder" + (f" or download {download}" if download else "")


Sender = Callable[[str, str], None]


class Notifier:
    """Sends the notices for each new snapshot through `send(title, message)`."""

    def __init__(self, send: Sender) -> None:
        self.send = send
        self._last = Snapshot()

    def observe(self, snapshot: Snapshot) -> list[Notice]:
        sent = notices(self._last, snapshot)
        self._last = snapshot
        for notice in sent:
            try:
                self.send(notice.title, notice.message)
            except Exception:  # no notification daemon: the log still has it
                log.warning("could not show notification %r", notice, exc_info=True)
        return sent


def dbus_sender(app_name: str, icon: str = "") -> Sender:
    """Notifications straight over D-Bus (Linux), for when there is no tray icon to send them."""

    def send(title: str, message: str) -> None:
        from gi.repository import Gio, GLib  # type: ignore[import-untyped,import-not-found,unused-ignore]

        bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
        bus.call_sync(
            "org.freedesktop.Notifications", "/org/freedesktop/Notifications",
            "org.freedesktop.Notifications", "Notify",
            GLib.Variant("(susssasa{sv}i)", (app_name, 0, icon, title, message, [], {}, -1)),
            None, Gio.DBusCallFlags.NONE, 2000, None,
        )  # fmt: skip

    return send
