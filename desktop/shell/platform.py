"""Every platform branch of the desktop shell: the window's web engine, the tray's backend, opening
files and links, the clipboard. (Processes and file locks: `desktop.compat`.)"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator

from desktop.compat import IS_LINUX, IS_MACOS, IS_WINDOWS

_C_LOCALES = frozenset({"", "C", "POSIX"})


def prepare_webview_environment(environ: dict[str, str] | os._Environ[str]) -> None:
    """Adjust the window child's environment before the web engine starts (Linux/WebKitGTK).

    Under a C locale WebKitGTK reports `navigator.language` as "C", which web apps (Chainlit)
    cannot parse; the UI then stays blank. Switch the window child to a real UTF-8 locale when
    one is installed (LANGUAGE alone is not enough).

    Without GPU compositing (virtual machines, no GPU driver; seen on Xvfb) WebKitGTK's
    accelerated compositing keeps showing a stale frame: the chat stayed on its sign-in screen
    after the page had signed in. Plain software painting is reliable; a user may set
    WEBKIT_DISABLE_COMPOSITING_MODE=0 to get compositing back.
    """
    if not IS_LINUX:
        return
    import locale

    environ.setdefault("WEBKIT_DISABLE_COMPOSITING_MODE", "1")

    current = environ.get("LC_ALL") or environ.get("LC_MESSAGES") or environ.get("LANG") or ""
    if current.split(".")[0] not in _C_LOCALES:
        return
    for candidate in ("en_US.UTF-8", "en_GB.UTF-8"):
        try:
            locale.setlocale(locale.LC_ALL, candidate)
        except locale.Error:
            continue
        environ["LANG"] = environ["LC_ALL"] = candidate
        environ.setdefault("LANGUAGE", candidate.split(".")[0])
        return


@contextlib.contextmanager
def toolkit_without_gl() -> Iterator[None]:
    """Start the tray's toolkit (GTK, on import) without OpenGL.

    On X11, GDK opens OpenGL when it connects to the display, only to choose visuals; with Mesa
    that maps LLVM and the driver, about 55 MB of RSS that a tray icon and its menu never use.
    GDK reads GDK_GL once, at start, so it is set only around the import and children do not
    inherit it. A value the user set is kept.
    """
    if not IS_LINUX or "GDK_GL" in os.environ:
        yield
        return
    os.environ["GDK_GL"] = "disable"
    try:
        yield
    finally:
        os.environ.pop("GDK_GL", None)


def tray_backend(environ: dict[str, str] | os._Environ[str]) -> tuple[str | None, str]:
    """The pystray backend to use here, or None and why no tray icon can be shown.

    Linux desktops host tray icons two ways: StatusNotifierItem over D-Bus (KDE, GNOME with the
    AppIndicator extension: pystray's `appindicator`) and the XEmbed system tray (most X11 panels:
    `gtk`). pystray's `xorg` backend shows an icon without a menu, so it is never chosen.
    Windows and macOS always have a tray; `PYSTRAY_BACKEND` overrides the choice.
    """
    forced = environ.get("PYSTRAY_BACKEND")
    if forced:
        return forced, ""
    if not IS_LINUX:
        return "win32" if IS_WINDOWS else "darwin", ""
    return _linux_tray_backend(environ)


def _linux_tray_backend(environ: dict[str, str] | os._Environ[str]) -> tuple[str | None, str]:
    if not environ.get("DISPLAY") and not environ.get("WAYLAND_DISPLAY"):
        return None, "there is no graphical session (DISPLAY is not set)"
    if not _module_available("gi"):
        return None, "PyGObject (gi) is not installed, so no tray menu can be shown"
    if _status_notifier_host() and _appindicator_available():
        return "appindicator", ""
    if environ.get("DISPLAY") and _xembed_tray_present():
        return "gtk", ""
    return None, (
        "no system tray was found on this desktop (on GNOME, install and enable the "
        "'AppIndicator and KStatusNotifierItem Support' extension)"
    )


def _module_available(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _appindicator_available() -> bool:
    try:
        import gi  # type: ignore[import-untyped,import-not-found,unused-ignore]

        for namespace in ("AyatanaAppIndicator3", "AppIndicator3"):
            with contextlib.suppress(ValueError, ImportError):
                gi.require_version(namespace, "0.1")
                return True
    except ImportError:
        pass
    return False


def _status_notifier_host() -> bool:
    """A StatusNotifierWatcher owns its name on the session bus (an SNI tray is there)."""
    try:
        from gi.repository import Gio, GLib  # type: ignore[import-untyped,import-not-found,unused-ignore]

        bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
        reply = bus.call_sync(
            "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner",
            GLib.Variant("(s)", ("org.kde.StatusNotifierWatcher",)), None,
            Gio.DBusCallFlags.NONE, 1000, None,
        )  # fmt: skip
        return bool(reply.unpack()[0])
    except Exception:  # no bus, no gi: no SNI tray
        return False


def _xembed_tray_present() -> bool:
    """Some window owns the X11 system-tray selection of the default screen."""
    try:
        from Xlib import X, display  # type: ignore[import-untyped,import-not-found,unused-ignore]

        screen = display.Display()
        try:
            atom = screen.intern_atom(f"_NET_SYSTEM_TRAY_S{screen.get_default_screen()}")
            return bool(screen.get_selection_owner(atom) != X.NONE)
        finally:
            screen.close()
    except Exception:  # no X server, no python-xlib: no XEmbed tray
        return False


def open_path(target: str) -> bool:
    """Open a folder, file or URL with the desktop's default application."""
    try:
        if IS_WINDOWS:
            os.startfile(target)  # type: ignore[attr-defined,unused-ignore]
            return True
        opener = "open" if IS_MACOS else "xdg-open"
        subprocess.Popen(
            [opener, target],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        return True
    except OSError:
        return False


def copy_to_clipboard(text: str) -> bool:
    """Put `text` on the clipboard. On Linux, call it on the GTK main thread (a tray callback)."""
    if IS_WINDOWS:
        return _pipe_to(["clip"], text.encode("utf-16-le"))
    if IS_MACOS:
        return _pipe_to(["pbcopy"], text.encode())
    try:
        import gi  # type: ignore[import-untyped,import-not-found,unused-ignore]

        gi.require_version("Gtk", "3.0")
        gi.require_version("Gdk", "3.0")
        from gi.repository import Gdk, Gtk  # type: ignore[import-untyped,import-not-found,unused-ignore]

        clipboard = Gtk.Clipboard.get(Gdk.SELECTION_CLIPBOARD)
        clipboard.set_text(text, -1)
        clipboard.store()
        return True
    except (ImportError, ValueError, TypeError):
        pass
    import shutil

    for command in (["wl-copy"], ["xclip", "-selection", "clipboard"], ["xsel", "--clipboard", "--input"]):
        if shutil.which(command[0]) and _pipe_to(command, text.encode()):
            return True
    return False


def _pipe_to(command: list[str], data: bytes) -> bool:
    try:
        return subprocess.run(command, input=data, timeout=5, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
