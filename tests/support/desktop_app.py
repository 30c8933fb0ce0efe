"""Runs the real desktop app (tray, window, services) with a test remote control beside it.

    python tests/support/desktop_app.py --control-file PATH

The app is `desktop.app.DesktopApp`, unchanged; this script only adds a loopback line server
through which a test fires the real pystray menu items (on the tray's own thread, as a click
would) and reads what the app shows: state, tooltip, menu labels and checks, the window's page.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socketserver
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from desktop.app import DesktopApp
from desktop.config import load_settings
from desktop.files import keep_new_files_private, write_json_atomic
from desktop.paths import AppPaths


def describe_menu(items: Any) -> list[dict[str, Any]]:
    described = []
    for item in items:
        if item.text == "- - - -":
            continue
        entry: dict[str, Any] = {"text": item.text, "enabled": item.enabled, "checked": item.checked}
        if not item.visible:
            entry["visible"] = False
        if item.submenu:
            entry["items"] = describe_menu(item.submenu.items)
        described.append(entry)
    return described


def on_tray_thread(app: DesktopApp, work: Any) -> Any:
    """Run `work()` where pystray runs menu actions (the GTK main loop) and return its result."""
    from gi.repository import GLib  # type: ignore[import-untyped,import-not-found,unused-ignore]

    done = threading.Event()
    box: dict[str, Any] = {}

    def run() -> bool:
        try:
            box["value"] = work()
        except Exception as error:
            box["error"] = repr(error)
        done.set()
        return False

    if app.tray is None:
        run()
    else:
        GLib.idle_add(run)
    done.wait(10)
    if "error" in box:
        raise RuntimeError(box["error"])
    return box.get("value")


def probe(app: DesktopApp, script: str | None) -> dict[str, Any] | None:
    """Ask the window's page for its text and the value of `script`; its answer, or None when
    there is no window or it did not answer in time."""
    window = app.window
    if window is None or window.pid is None:
        return None
    probe_id = uuid.uuid4().hex
    window.probe(script, probe_id)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if window.probed.get("id") == probe_id:
            return dict(window.probed)
        time.sleep(0.02)
    return None


def handle(app: DesktopApp, request: dict[str, Any]) -> Any:
    command = request["command"]
    if command == "state":
        window = app.window
        return {
            "pid": os.getpid(),
            "tray": app.tray is not None,
            "tray_problem": app.tray_problem,
            "state": app.status.state.value,
            "text": app.status.text,
            "tooltip": app.tray.icon.title if app.tray else None,
            "endpoint": app.stack.endpoint_url(),
            "window": None if window is None else {
                "pid": window.pid, "visible": window.visible, "url": window.url, "title": window.title,
                "text": window.page_text,
            },
            "chat_url": app.stack.chat_url(),
            "milestones": {
                key: (value - app.milestones.started if value else None)
                for key, value in vars(app.milestones).items() if key != "started"
            },
        }  # fmt: skip
    if command == "probe":
        return probe(app, request.get("script"))
    if command == "menu":
        assert app.tray is not None
        shown = app.tray
        return on_tray_thread(app, lambda: describe_menu(shown.icon.menu.items))
    if command == "click":
        tray = app.tray
        assert tray is not None
        path = request["path"]
        on_tray_thread(app, lambda: tray.find(*path)(tray.icon))
        return True
    raise ValueError(command)


def serve(app: DesktopApp, control_file: Path) -> None:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            for line in self.rfile:
                try:
                    reply = {"ok": True, "value": handle(app, json.loads(line))}
                except Exception as error:
                    reply = {"ok": False, "error": repr(error)}
                self.wfile.write(json.dumps(reply).encode() + b"\n")
                self.wfile.flush()

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    write_json_atomic(control_file, {"port": server.server_address[1]})


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--control-file", type=Path, required=True)
    options = parser.parse_args()
    keep_new_files_private()  # as `foundry-desk` does (cli.main)
    paths = AppPaths.from_environment(os.environ).create()
    loaded = load_settings(paths.settings_file, os.environ, {})
    logging.basicConfig(
        filename=paths.log_dir / "foundry-desk.log",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = DesktopApp(loaded.settings, paths)
    serve(app, options.control_file)
    return app.run()


if __name__ == "__main__":
    sys.exit(main())
