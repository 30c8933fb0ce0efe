"""Every platform branch of process handling lives here, and nowhere else.

POSIX children get their own session (so one signal reaches their whole group); Windows children
get their own process group (so CTRL_BREAK reaches them). When the app dies, its children die too:
on Linux by the parent-death signal, on Windows by a job object that kills its processes when the
app's handle to it closes, and everywhere our own children also watch their parent
(`exit_with_parent`), which is what macOS has. What survives anyway is found by the run record.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import psutil

IS_WINDOWS = sys.platform == "win32"
IS_LINUX = sys.platform.startswith("linux")
_PR_SET_PDEATHSIG = 1


def child_popen_kwargs() -> dict[str, Any]:
    """Popen arguments that detach a child into its own group and tie it to our life."""
    if IS_WINDOWS:
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined,unused-ignore]
    kwargs: dict[str, Any] = {"start_new_session": True}
    if IS_LINUX:
        kwargs["preexec_fn"] = _die_with_parent(os.getpid())
    return kwargs


DOCKER_USES_HOST_NETWORK = IS_LINUX
"""How a container reaches a server on the host's 127.0.0.1. On Linux only host networking does
(host-gateway leads to the bridge address, where nothing of ours listens); Docker Desktop
(Windows, macOS) forwards `host.docker.internal` to the host's loopback."""


def restore_library_path(environ: MutableMapping[str, str], frozen: bool) -> None:
    """In the frozen app, give every program it starts the library path of the user's session.

    PyInstaller's bootloader points LD_LIBRARY_PATH at the bundle (keeping the original in
    LD_LIBRARY_PATH_ORIG), and children inherit it: the browser, xdg-open, docker or WebKit's
    own processes would then load the bundle's copies of libraries instead of the system's and
    may crash. The app's own process is unaffected (its loader read the path at start), and its
    own children are the bundle again, whose bootloader sets the path anew.
    """
    if not frozen or not IS_LINUX:
        return
    original = environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is None:
        environ.pop("LD_LIBRARY_PATH", None)
    else:
        environ["LD_LIBRARY_PATH"] = original


def claim_port(sock: socket.socket) -> None:
    """Before binding a server's socket: a port in use stays refused, and one whose connections
    are still closing does not count as in use."""
    if IS_WINDOWS:  # there SO_REUSEADDR would allow stealing a port in use
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)  # type: ignore[attr-defined,unused-ignore]
    else:  # as servers do: connections still closing on the port do not make it busy
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)


def can_listen(port: int, host: str = "127.0.0.1") -> bool:
    """True when a server could listen on host:port now (nothing else holds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        claim_port(sock)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def tie_to_app(popen: subprocess.Popen[bytes]) -> object | None:
    """Make the child die with the app where the OS can do that after spawning (Windows).

    Returns a handle that must be kept as long as the child lives; closing it kills the child
    and every process it started since. None on POSIX, where `child_popen_kwargs` did the work.
    """
    if not IS_WINDOWS:
        return None
    import win32api
    import win32con
    import win32job

    job: object = win32job.CreateJobObject(None, "")
    limits = win32job.QueryInformationJobObject(job, win32job.JobObjectExtendedLimitInformation)
    limits["BasicLimitInformation"]["LimitFlags"] |= win32job.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
    win32job.SetInformationJobObject(job, win32job.JobObjectExtendedLimitInformation, limits)
    process = win32api.OpenProcess(win32con.PROCESS_SET_QUOTA | win32con.PROCESS_TERMINATE, False, popen.pid)
    win32job.AssignProcessToJobObject(job, process)
    win32api.CloseHandle(process)
    return job


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    libc = ctypes.CDLL(None, use_errno=True)

    def set_parent_death_signal() -> None:  # runs in the forked child, before exec
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return set_parent_death_signal


def ask_to_stop(pid: int) -> None:
    """Politely ask a child and its group to exit (SIGTERM / CTRL_BREAK)."""
    with contextlib.suppress(OSError):  # already gone is fine
        if IS_WINDOWS:
            os.kill(pid, signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined,unused-ignore]
        else:
            os.killpg(pid, signal.SIGTERM)


def kill_group(pid: int) -> None:
    """Kill whatever is left in the child's process group (POSIX; Windows has no such group)."""
    if IS_WINDOWS:
        return
    with contextlib.suppress(OSError):  # nothing left is fine
        os.killpg(pid, signal.SIGKILL)


def exit_with_parent(
    parent_pid: int,
    on_orphaned: Callable[[], None],
    poll_s: float = 0.5,
    grace_s: float = 3.0,
) -> threading.Thread:
    """In one of our own children: run `on_orphaned` when the parent is gone, then exit.

    Works everywhere (Linux has the faster parent-death signal too). If the clean shutdown
    hangs, the process exits anyway after `grace_s`.
    """
    try:
        parent_started = psutil.Process(parent_pid).create_time()
    except psutil.NoSuchProcess:
        parent_started = None

    def parent_alive() -> bool:
        if parent_started is None:
            return False
        try:
            return psutil.Process(parent_pid).create_time() == parent_started
        except psutil.NoSuchProcess:
            return False

    def watch() -> None:
        while parent_alive():
            time.sleep(poll_s)
        deadline = threading.Timer(grace_s, os._exit, args=(1,))
        deadline.daemon = True
        deadline.start()
        on_orphaned()

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


# -- the desktop shell: window, tray, clipboard, files, single instance ----------------------------

IS_MACOS = sys.platform == "darwin"
PLATFORM = "windows" if IS_WINDOWS else "macos" if IS_MACOS else "linux"
"""`linux` stands for every other POSIX desktop (XDG conventions)."""

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


def try_lock(stream: Any) -> bool:
    """Take an exclusive, non-blocking lock on an open file; False when another process holds it.

    The OS drops the lock when the process dies, however it dies.
    """
    try:
        if IS_WINDOWS:
            import msvcrt

            stream.seek(0)
            msvcrt.locking(stream.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined,unused-ignore]
        else:
            import fcntl

            fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True
