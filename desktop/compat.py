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
from collections.abc import Callable, MutableMapping
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


# -- the platform, and locking a file ----------------------------------------------------------

IS_MACOS = sys.platform == "darwin"
PLATFORM = "windows" if IS_WINDOWS else "macos" if IS_MACOS else "linux"
"""`linux` stands for every other POSIX desktop (XDG conventions)."""


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
