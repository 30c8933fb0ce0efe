"""The app's one native window (pywebview), in a child process of its own, driven over a pipe.

Both GUI toolkits want the main thread on macOS, so the tray keeps the app's main thread and the
window lives in a child of the same executable (`foundry-desk window-host`), where
`webview.start()` owns that child's main thread. The app writes commands as JSON lines to the
child's stdin and reads events from its stdout::

    app -> window   {"cmd": "show", "url": "...", "title": "..."}   load (if another site, else go
                                                                     to its #part) and raise
                    {"cmd": "show_html", "html": "...", "title": "..."}  a local page (placeholder)
                    {"cmd": "hide"}
                    {"cmd": "probe", "id": "...", "script": "..."}   what the page shows (diagnostics)
                    {"cmd": "quit"}                                  or the pipe closes
    window -> app   {"event": "started"}
                    {"event": "loaded", "url": "...", "title": "..."}
                    {"event": "shown"} / {"event": "hidden", "by_user": true|false}
                    {"event": "probe", "id": "...", "url": "...", "title": "...", "text": "...",
                     "value": <the script's JSON value>, "error": "..." (when the script failed)}

Closing the window only hides it (the app keeps running in the tray); the child exits when told
to quit or when its stdin closes, which is what happens when the app dies.

The page in the window may call `window.pywebview.api.choose_folder()` (`PageApi`): the
chat's first-run view (a model folder) and its Your files dialog open the system's folder dialog
with it, which a web page cannot.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from desktop import compat
from desktop.process import Child, stop_tree
from desktop.shell import platform

log = logging.getLogger(__name__)

WINDOW_SIZE = (1100, 780)
MIN_SIZE = (480, 360)
SCREEN_SHARE = 0.9
"""The most of the screen a new window takes (each way), so all of it is on screen."""
QUIT_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class WindowEvent:
    """One event reported by the window child."""

    name: str
    data: Mapping[str, Any]


EventHandler = Callable[[WindowEvent], None]


class WindowClient:
    """The app's side: starts the window child on first use, sends it commands, tracks its state.

    One long-lived thread forks the child and writes to it, so calls never block the tray's
    thread, and (on Linux) the child's parent-death signal is tied to a thread that lives as long
    as the app.
    """

    def __init__(
        self,
        command: Sequence[str],
        log_file: Path,
        env: Mapping[str, str] | None = None,
        *,
        on_event: EventHandler | None = None,
        on_spawn: Callable[[int], None] | None = None,
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        self.command = list(command)
        self.log_file = log_file
        self.env = dict(env or {})
        self._on_event = on_event
        self._on_spawn = on_spawn
        self._on_exit = on_exit
        self._commands: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._child: Child | None = None
        self.visible = False
        self.url: str | None = None
        self.title: str | None = None
        self.loaded_at: float | None = None
        self.page_text = ""
        self.probed: Mapping[str, Any] = {}
        """The last "probe" event: the page's text, and the value of the script asked for."""
        self._thread = threading.Thread(target=self._run, name="window", daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int | None:
        child = self._child
        return child.pid if child is not None and child.exit_code() is None else None

    def show(self, url: str, title: str) -> None:
        """Show the window on `url` and raise it; when the window is already on that site (the
        chat, on any of its pages) it is only raised, so what the user was doing stays (a #part
        of `url` is gone to: the page opens that part, e.g. the chat's Your files dialog)."""
        self._commands.put({"cmd": "show", "url": url, "title": title})

    def show_html(self, html: str, title: str) -> None:
        self._commands.put({"cmd": "show_html", "html": html, "title": title})

    def hide(self) -> None:
        self._commands.put({"cmd": "hide"})

    def probe(self, script: str | None = None, probe_id: str = "") -> None:
        """Ask the page for its text, and for the value of `script` (a JavaScript expression);
        answered by a "probe" event carrying `probe_id`."""
        self._commands.put({"cmd": "probe", "id": probe_id, "script": script})

    def close(self, timeout_s: float = QUIT_TIMEOUT_S) -> None:
        """End the window child (ask, wait, kill its tree) and the owner thread."""
        self._commands.put(None)
        self._thread.join(timeout=timeout_s + 5)

    # -- the owner thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            command = self._commands.get()
            if command is None:
                self._end(QUIT_TIMEOUT_S)
                return
            if command["cmd"] in ("hide", "probe") and self.pid is None:
                continue  # nothing to hide; do not start a window for it
            try:
                self._send(command)
            except OSError as error:  # the child died under us: start a fresh one and retry once
                log.warning("window child gone (%s); starting a new one", error)
                self._end(0.5)
                with contextlib.suppress(OSError):
                    self._send(command)

    def _send(self, command: dict[str, Any]) -> None:
        child = self._child if self.pid is not None else self._spawn(command)
        if child is None:
            return
        if child.popen.stdin is None:
            raise OSError("window child has no stdin")
        child.popen.stdin.write((json.dumps(command) + "\n").encode())
        child.popen.stdin.flush()

    def _spawn(self, first: dict[str, Any]) -> Child | None:
        """Start the child; the first command's page goes on its command line (fastest paint)."""
        if self._child is not None:
            self._end(0.5)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log_stream:
            offset = log_stream.tell()
            popen = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_stream,
                env={**os.environ, **self.env},
                **compat.child_popen_kwargs(),
            )
        child = Child(popen, self.log_file, offset, compat.tie_to_app(popen))
        with self._lock:
            self._child = child
        if self._on_spawn:
            self._on_spawn(popen.pid)
        threading.Thread(target=self._read_events, args=(child,), name="window-events", daemon=True).start()
        return child

    def _read_events(self, child: Child) -> None:
        stream = child.popen.stdout
        assert stream is not None
        for raw in stream:
            try:
                data = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(data, dict) or not isinstance(data.get("event"), str):
                continue
            event = WindowEvent(data["event"], data)
            self._track(event)
            if self._on_event:
                try:
                    self._on_event(event)
                except Exception:  # a handler bug must not stop the reader
                    log.exception("window event handler raised")
        if self._child is child:
            self.visible = False

    def _track(self, event: WindowEvent) -> None:
        if event.name == "loaded":
            self.url = str(event.data.get("url") or "")
            self.title = str(event.data.get("title") or "")
            self.loaded_at = time.monotonic()
        elif event.name == "shown":
            self.visible = True
        elif event.name == "hidden":
            self.visible = False
        elif event.name == "probe":
            self.page_text = str(event.data.get("text") or "")
            self.probed = event.data

    def _end(self, timeout_s: float) -> None:
        with self._lock:
            child, self._child = self._child, None
        if child is None:
            return
        if child.popen.stdin is not None:
            with contextlib.suppress(OSError):
                child.popen.stdin.write(b'{"cmd": "quit"}\n')
                child.popen.stdin.close()
        stop_tree(child, timeout_s)
        if child.popen.stdout is not None:
            child.popen.stdout.close()
        self.visible = False
        if self._on_exit:
            self._on_exit(child.pid)


def fit_to_screen(
    screen: tuple[int, int] | None, preferred: tuple[int, int] = WINDOW_SIZE
) -> tuple[int, int]:
    """The window's size on a screen of this size: `preferred`, or less where the screen is small.

    A window larger than the screen hangs over its edges (toolkits centre it and do not shrink
    it; a 1366x768 laptop is shorter than the window): the chat's header and its message box,
    at the window's top and bottom, would be out of sight.
    """
    if screen is None:
        return preferred
    fitted = [
        max(min(want, int(have * SCREEN_SHARE)), min(least, have))
        for want, have, least in zip(preferred, screen, MIN_SIZE, strict=True)
    ]
    return fitted[0], fitted[1]


def screen_size(webview: Any) -> tuple[int, int] | None:
    """The first screen's size as pywebview sees it, or None when it cannot tell."""
    try:
        screens = webview.screens
    except Exception:  # no display information: keep the preferred size
        log.warning("could not read the screen size", exc_info=True)
        return None
    return (int(screens[0].width), int(screens[0].height)) if screens else None


def same_site(current: str, wanted: str) -> bool:
    """Whether the page at `current` belongs to the site of `wanted` (scheme, host and port).

    The chat is one page app: the window may be on one of its threads ("/thread/<id>") or on its
    root, which the browser spells with a slash the app's URL lacks. Either way it is the chat.
    """
    here, there = urlsplit(current), urlsplit(wanted)
    if not here.scheme.startswith("http"):
        return False  # a local page (the placeholder) or none yet
    return (here.scheme, here.netloc.lower()) == (there.scheme, there.netloc.lower())


# -- the child: `foundry-desk window-host` --------------------------------------------------------


class PageApi:
    """What the page in the window may ask of the app (pywebview's JS API, `window.pywebview.api`).

    pywebview offers the page every public method, so anything else here is private.
    """

    def __init__(self, webview: Any) -> None:
        self._webview = webview
        self._window: Any = None

    def _use(self, window: Any) -> None:
        self._window = window

    def choose_folder(self) -> str | None:
        """The system's folder dialog; the folder chosen, or None when the user cancelled.

        It opens in the user's home folder (left to itself, GTK's opens on "Recent", where a typed
        path goes nowhere). pywebview runs this on a thread of its own, the dialog on the GUI thread.
        """
        if self._window is None:
            return None
        chosen = self._window.create_file_dialog(self._webview.FileDialog.FOLDER, directory=str(Path.home()))
        return str(chosen[0]) if chosen else None


class WindowHost:
    """Runs in the window child: one pywebview window, commands from stdin, events to stdout."""

    def __init__(self, window: Any, events: IO[str]) -> None:
        self.window = window
        self._events = events
        self._lock = threading.Lock()
        self._hidden = False

    def emit(self, name: str, **data: Any) -> None:
        with self._lock:
            self._events.write(json.dumps({"event": name, **data}) + "\n")
            self._events.flush()

    def on_loaded(self) -> None:
        url = self.window.get_current_url() or ""
        self.emit("loaded", url=url, title=self.window.title)

    def on_closing(self) -> bool:
        """A close request from the user hides the window instead; the app keeps running.

        pywebview calls this on the GUI thread; `hide()` only queues work there, so it is safe.
        """
        self.window.hide()
        self._hidden = True
        self.emit("hidden", by_user=True)
        return False

    def serve(self, commands: IO[str]) -> None:
        """Read commands until told to quit or until the pipe closes (the app is gone)."""
        self.emit("started")
        self.emit("shown")
        for line in commands:
            try:
                command = json.loads(line)
            except ValueError:
                continue
            if not isinstance(command, dict):
                continue
            if command.get("cmd") == "quit":
                break
            self.handle(command)
        self.quit()

    def handle(self, command: Mapping[str, Any]) -> None:
        name = command.get("cmd")
        if name == "show":
            url = str(command["url"])
            if not same_site(self.window.get_current_url() or "", url):
                self.window.load_url(url)
            elif fragment := urlsplit(url).fragment:  # a part of the page shown (the chat's Your files)
                self.window.evaluate_js(f"window.location.hash = {json.dumps(fragment)}")
            self._raise(str(command.get("title") or self.window.title))
        elif name == "show_html":
            self.window.load_html(str(command["html"]))
            self._raise(str(command.get("title") or self.window.title))
        elif name == "probe":  # what the page shows now: for tests, benchmarks and diagnostics
            self.probe(str(command.get("id") or ""), command.get("script"))
        elif name == "hide":
            self.window.hide()
            self._hidden = True
            self.emit("hidden", by_user=False)

    def probe(self, probe_id: str, script: object) -> None:
        text = self.window.evaluate_js("document.body ? document.body.innerText : ''") or ""
        answer: dict[str, Any] = {"id": probe_id, "url": self.window.get_current_url() or "",
                                  "title": self.window.title, "text": str(text)[:2000]}  # fmt: skip
        if isinstance(script, str) and script:
            try:
                answer["value"] = self.window.evaluate_js(script)
            except Exception as error:  # the page's error, reported instead of the value
                answer["error"] = repr(error)
        self.emit("probe", **answer)

    def _raise(self, title: str) -> None:
        self.window.set_title(title)
        self.window.hidden = False  # pywebview ignores show() on a window created hidden otherwise
        self.window.show()
        self.window.restore()
        self._hidden = False
        self.emit("shown")

    def quit(self) -> None:
        with contextlib.suppress(Exception):
            self.window.destroy()
        # GTK's pywebview may hang at interpreter exit on a stdin reader thread: leave now.
        sys.stdout.flush()
        os._exit(0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="foundry-desk window-host")
    parser.add_argument("--storage-dir", type=Path, required=True, help="cookies and local storage")
    parser.add_argument("--gui", default=None, help="pywebview backend (default: the platform's)")
    parser.add_argument("--debug", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The window child. The first command on stdin says what to show (no blank window first)."""
    options = build_parser().parse_args(argv)
    platform.prepare_webview_environment(os.environ)
    import webview

    first = json.loads(sys.stdin.readline() or "{}")
    if first.get("cmd") not in ("show", "show_html"):
        return 0
    events = sys.stdout
    sys.stdout = sys.stderr  # stray prints from toolkits must not corrupt the event pipe
    if options.gui:
        os.environ["PYWEBVIEW_GUI"] = options.gui  # reading the screens picks the toolkit already
    width, height = fit_to_screen(screen_size(webview))
    page_api = PageApi(webview)
    window = webview.create_window(
        str(first.get("title") or "Foundry Desk"),
        url=first.get("url"),
        html=first.get("html"),
        width=width,
        height=height,
        min_size=MIN_SIZE,
        js_api=page_api,
    )
    if window is None:
        return 1
    page_api._use(window)
    host = WindowHost(window, events)
    window.events.loaded += host.on_loaded
    window.events.closing += host.on_closing
    options.storage_dir.mkdir(parents=True, exist_ok=True)
    webview.start(
        host.serve,
        (sys.stdin,),
        gui=options.gui,
        debug=options.debug,
        private_mode=False,
        storage_path=str(options.storage_dir),
    )
    host.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
