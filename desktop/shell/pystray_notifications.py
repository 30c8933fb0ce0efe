"""pystray's Linux (GTK, AppIndicator) backends on a desktop without a notification daemon.

Those backends open a D-Bus proxy to `org.freedesktop.Notifications` when the icon starts, and
close their last notification when it stops; both raise when no daemon answers (a bare window
manager, a kiosk, a daemon that fails to start): the icon never appeared, or quitting ended in a
traceback and exit code 1. `install()` swaps in a notifier that works without one: the icon runs,
notifications are dropped (and logged), quitting is clean.

This relies on pystray's internals, pinned in pyproject.toml (pystray==0.19.5) and named by
`tests/test_tray_parts.py::test_pystray_internals_we_rely_on`: the module
`pystray._util.notify_dbus`, its class `Notifier` (`notify(title, message, icon)`, `hide()`),
which `pystray._util.gtk` creates by that name when an icon starts.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def install() -> None:
    """Make pystray's GTK backends create our notifier. Call after importing pystray (Linux)."""
    from pystray._util import notify_dbus  # type: ignore[import-untyped,unused-ignore]

    if getattr(notify_dbus.Notifier, "tolerates_no_daemon", False):
        return
    notify_dbus.Notifier = tolerant_notifier(notify_dbus.Notifier)


def tolerant_notifier(base: type[Any]) -> type[Any]:
    """`base` (pystray's notifier), working on when no notification daemon is there."""

    class TolerantNotifier(base):  # type: ignore[misc]
        tolerates_no_daemon = True

        def __init__(self) -> None:
            self.available = True
            try:
                super().__init__()
            except Exception as error:  # GLib.Error: no daemon, or one that failed to start
                log.warning("no notification daemon (%s): notifications are not shown", error)
                self.available = False

        def notify(self, title: str, message: str, icon: Any) -> None:
            # pystray calls this on the GTK loop, where raising would only print a traceback
            if not self.available:
                log.info("notification not shown (no notification daemon): %s: %s", title, message)
                return
            super().notify(title, message, icon)

        def hide(self) -> None:
            if not self.available:
                return
            try:
                super().hide()
            except Exception as error:  # the daemon went away meanwhile
                log.info("could not close the last notification: %s", error)

    return TolerantNotifier
