"""One instance per user: a second launch asks the running one to show its window, then exits.

The first instance holds an OS lock on `instance.lock` in the state folder (dropped by the OS
however the process dies) and listens on a loopback port for commands; it writes the port and a
random token to `instance.json` beside it. A second launch cannot take the lock, reads the file,
and sends `{"token": ..., "command": "show"}`; only a holder of the token (the same user, who can
read the state folder) is obeyed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from desktop import compat
from desktop.files import read_json, write_json_atomic
from desktop.probe import wait_for
from desktop.process import process_alive

log = logging.getLogger(__name__)

HANDOFF_TIMEOUT_S = 10.0


class InstanceLock:
    """The single-instance lock, and the loopback command server that goes with it."""

    def __init__(self, state_dir: Path) -> None:
        self.lock_file = state_dir / "instance.lock"
        self.info_file = state_dir / "instance.json"
        self._stream: IO[str] | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def acquire(self) -> bool:
        """True when this process is now the one instance."""
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        stream = open(self.lock_file, "a+")  # noqa: SIM115 (held for the process's life)
        if not compat.try_lock(stream):
            stream.close()
            return False
        self._stream = stream
        return True

    def serve(self, handlers: dict[str, Callable[[], None]]) -> None:
        """Obey commands from later launches (e.g. "show") until `release()`."""
        token = secrets.token_hex(16)
        server = _Server(("127.0.0.1", 0), _Handler)
        server.token = token
        server.handlers = handlers
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="instance", daemon=True)
        self._thread.start()
        write_json_atomic(
            self.info_file, {"pid": os.getpid(), "port": server.server_address[1], "token": token}
        )

    def release(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.info_file.unlink(missing_ok=True)
        if self._stream is not None:
            self._stream.close()
            self._stream = None


def running(state_dir: Path) -> bool:
    """Whether an instance holds the lock now (this process does not)."""
    probe = InstanceLock(state_dir)
    if probe.acquire():
        probe.release()
        return False
    return True


def quit_running(state_dir: Path, timeout_s: float) -> bool | None:
    """Ask the running instance to quit and wait until its process has exited.

    None when no instance runs; False when it did not answer or did not exit in time.
    """
    if not running(state_dir):
        return None
    info = read_json(state_dir / "instance.json")
    pid = info.get("pid") if isinstance(info, dict) else None
    if not send(state_dir, "quit"):
        return False
    gone = wait_for(
        lambda: not running(state_dir) and not (isinstance(pid, int) and process_alive(pid)), timeout_s, 0.1
    )
    return bool(gone)


def send(state_dir: Path, command: str, timeout_s: float = HANDOFF_TIMEOUT_S) -> bool:
    """Ask the running instance to do `command`; waits for it to be listening. True if it did."""
    info_file = state_dir / "instance.json"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = read_json(info_file)
        if isinstance(info, dict) and isinstance(info.get("port"), int):
            with contextlib.suppress(OSError, ValueError):
                return _ask(info["port"], str(info.get("token", "")), command)
        time.sleep(0.1)
    return False


def _ask(port: int, token: str, command: str) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(json.dumps({"token": token, "command": command}).encode() + b"\n")
        reply = sock.makefile("rb").readline()
    return bool(json.loads(reply or b"{}").get("ok"))


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    token = ""
    handlers: dict[str, Callable[[], None]] = {}  # noqa: RUF012 (set per instance in serve())


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.request.settimeout(5)
        try:
            request: Any = json.loads(self.rfile.readline() or b"{}")
        except (OSError, ValueError):
            return
        ok = False
        if isinstance(request, dict) and secrets.compare_digest(
            str(request.get("token", "")), self.server.token
        ):
            handler = self.server.handlers.get(str(request.get("command")))
            if handler is not None:
                handler()
                ok = True
        with contextlib.suppress(OSError):
            self.wfile.write(json.dumps({"ok": ok}).encode() + b"\n")
