"""A virtual desktop for the shell tests: Xvfb, a session bus, a notification daemon, a tray host.

Every piece is a real program started in its own session and killed at `close()`. Waits are on
conditions (the display answers, the bus name is owned, the tray selection has an owner).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

APT_PACKAGES = ("xvfb", "xdotool", "x11-utils", "imagemagick", "trayer", "dunst", "dbus")


def missing_tools() -> list[str]:
    """Programs the virtual desktop needs that are not installed."""
    tools = ("Xvfb", "xdotool", "xprop", "import", "trayer", "dunst", "dbus-daemon")
    return [tool for tool in tools if shutil.which(tool) is None]


def wait_until(condition: Callable[[], object], timeout_s: float, what: str, every_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(every_s)


class XSession:
    """One virtual screen with its session bus; optional tray host and notification daemon."""

    def __init__(
        self, workdir: Path, *, tray: bool = True, notifications: bool = True, size: str = "1280x800x24"
    ) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self._procs: list[subprocess.Popen[bytes]] = []
        self._logs: list[object] = []
        read_fd, write_fd = os.pipe()
        try:
            xvfb = subprocess.Popen(
                ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", size, "-nolisten", "tcp"],
                pass_fds=(write_fd,),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            self._procs.append(xvfb)
            os.close(write_fd)
            with os.fdopen(read_fd, "rb") as reader:
                number = reader.readline().strip().decode()
            if not number:
                raise RuntimeError("Xvfb did not start")
            self.display = f":{number}"
            self.bus_address = self._start_bus()
            self.env = {
                "DISPLAY": self.display,
                "DBUS_SESSION_BUS_ADDRESS": self.bus_address,
                "XDG_CURRENT_DESKTOP": "",
                "LANG": "C.UTF-8",
                # no desktop portal or accessibility bus activated on the test bus: nothing that
                # could outlive the session
                "GTK_USE_PORTAL": "0",
                "NO_AT_BRIDGE": "1",
            }
            self.env.pop("WAYLAND_DISPLAY", None)
            if notifications:
                self.start("dunst", ["dunst"])
                wait_until(lambda: self.bus_name_owned("org.freedesktop.Notifications"), 10, "dunst")
            if tray:
                self.start_tray()
        except BaseException:
            self.close()
            raise

    def _start_bus(self) -> str:
        socket = self.workdir / "bus"
        bus = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--nopidfile", f"--address=unix:path={socket}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._procs.append(bus)
        wait_until(socket.exists, 10, "the session bus")
        return f"unix:path={socket}"

    def start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 (closed in close())
        self._logs.append(log)
        proc = subprocess.Popen(
            command,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._procs.append(proc)
        return proc

    def start_tray(self) -> None:
        self.start(
            "trayer",
            ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request", "--height", "32",
             "--transparent", "false", "--tint", "0x303030", "--SetDockType", "true"],
        )  # fmt: skip
        wait_until(self.tray_host_present, 10, "the tray host")

    def x(self, *command: str, timeout_s: float = 10.0) -> subprocess.CompletedProcess[str]:
        """Run an X client (xdotool, xprop, import) against this screen."""
        return subprocess.run(
            command,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def tray_host_present(self) -> bool:
        probe = self.x("xdotool", "search", "--classname", "trayer")
        return probe.returncode == 0 and bool(probe.stdout.strip())

    def bus_name_owned(self, name: str) -> bool:
        result = subprocess.run(
            ["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
             "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", f"string:{name}"],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )  # fmt: skip
        return "boolean true" in result.stdout

    def windows(self, name: str) -> list[str]:
        """Ids of visible windows whose title matches `name` (a regular expression)."""
        result = self.x("xdotool", "search", "--onlyvisible", "--name", name)
        return result.stdout.split()

    def geometry(self, window_id: str) -> tuple[int, int, int, int]:
        """Where a window is on the screen: x, y, width, height (its inside; there is no frame)."""
        result = self.x("xdotool", "getwindowgeometry", "--shell", window_id)
        values = dict(line.split("=", 1) for line in result.stdout.split() if "=" in line)
        return int(values["X"]), int(values["Y"]), int(values["WIDTH"]), int(values["HEIGHT"])

    def screenshot(self, path: Path, window: str = "root") -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        result = self.x("import", "-window", window, str(path), timeout_s=30)
        if result.returncode != 0:
            raise RuntimeError(f"screenshot failed: {result.stderr}")
        return path

    def close(self) -> None:
        for proc in reversed(self._procs):
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self._procs):
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for log in self._logs:
            log.close()  # type: ignore[attr-defined]
        self._procs.clear()

    def __enter__(self) -> XSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def close_window(session: XSession, window_id: str) -> None:
    """Ask a window to close as a window manager's close button would (WM_DELETE_WINDOW)."""
    from Xlib import X, display  # type: ignore[import-untyped,import-not-found,unused-ignore]
    from Xlib.protocol import event  # type: ignore[import-untyped,import-not-found,unused-ignore]

    screen = display.Display(session.display)
    try:
        window = screen.create_resource_object("window", int(window_id))
        protocols = screen.intern_atom("WM_PROTOCOLS")
        delete = screen.intern_atom("WM_DELETE_WINDOW")
        message = event.ClientMessage(
            window=window, client_type=protocols, data=(32, [delete, X.CurrentTime, 0, 0, 0])
        )
        window.send_event(message, event_mask=X.NoEventMask)
        screen.flush()
    finally:
        screen.close()


def close_windows(session: XSession, title: str) -> bool:
    """Close every visible window titled `title` (regular expression) as a window manager would.

    Returns False, so that it can sit in a wait condition that retries it."""
    for window_id in session.windows(title):
        close_window(session, window_id)
    return False


def notifications(session: XSession) -> list[str]:
    """Summaries of the notifications dunst has shown (its history), newest first."""
    return [summary for summary, _ in notification_texts(session)]


def notification_texts(session: XSession) -> list[tuple[str, str]]:
    """Summary and body of the notifications dunst has shown (its history), newest first.

    A notification that replaced another (pystray sends each one in place of its last) leaves
    only itself there."""
    import json

    session.x("dunstctl", "close-all")  # shown ones move into the history
    result = session.x("dunstctl", "history")
    if result.returncode != 0:
        return []
    data = json.loads(result.stdout or "{}")
    return [
        (entry["summary"]["data"], entry["body"]["data"]) for group in data.get("data", []) for entry in group
    ]


def tray_pixels(shot: Path) -> int:
    """How many pixels of the icon's teal tile are in the tray area (top right corner)."""
    with Image.open(shot) as image:
        corner = image.convert("RGB").crop((image.width - 200, 0, image.width, 40))
        data = corner.tobytes()
    pixels = (data[i : i + 3] for i in range(0, len(data), 3))
    return sum(1 for r, g, b in pixels if abs(r - 17) < 25 and abs(g - 94) < 25 and abs(b - 89) < 25)


def painted(shot: Path) -> bool:
    """The screen shows a page with some detail, not a blank (all white or all dark) window."""
    with Image.open(shot) as image:
        window = image.convert("RGB").crop((100, 20, image.width - 100, image.height - 20))
        return len(window.getcolors(maxcolors=1 << 16) or ()) > 20
