"""Starts tests/support/desktop_app.py in a virtual session and talks to its remote control."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from tests.support.xsession import XSession, wait_until

APP_SCRIPT = Path(__file__).with_name("desktop_app.py")
ROOT = Path(__file__).resolve().parents[2]


class ShellApp:
    """One running desktop app (a real process) and the processes it started."""

    def __init__(self, session: XSession, home: Path, env: dict[str, str], name: str = "app") -> None:
        self.session = session
        self.home = home
        self.control_file = home.parent / f"{name}-control.json"
        self.control_file.unlink(missing_ok=True)
        self.stderr_file = home.parent / f"{name}-stderr.log"
        self.started = time.monotonic()
        with open(self.stderr_file, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, str(APP_SCRIPT), "--control-file", str(self.control_file)],
                env={**os.environ, **session.env, "FOUNDRY_DESK_HOME": str(home), **env},
                stdout=err,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        self._stream: Any = None
        self.seen_pids: set[int] = set()

    def connect(self, timeout_s: float = 20.0) -> None:
        wait_until(
            lambda: self.control_file.exists() or self.process.poll() is not None, timeout_s, "control"
        )
        if self.process.poll() is not None:
            raise AssertionError(f"app exited with {self.process.returncode}: {self.stderr}")
        port = json.loads(self.control_file.read_text())["port"]
        self._socket = socket.create_connection(("127.0.0.1", port), timeout=30)
        self._stream = self._socket.makefile("rwb")

    @property
    def stderr(self) -> str:
        return self.stderr_file.read_text(errors="replace")

    def ask(self, command: str, **fields: Any) -> Any:
        if self._stream is None:
            self.connect()
        self._stream.write(json.dumps({"command": command, **fields}).encode() + b"\n")
        self._stream.flush()
        reply = json.loads(self._stream.readline())
        if not reply["ok"]:
            raise AssertionError(reply["error"])
        return reply["value"]

    def state(self) -> dict[str, Any]:
        self.remember_children()
        value: dict[str, Any] = self.ask("state")
        return value

    def click(self, *path: str) -> None:
        self.ask("click", path=list(path))

    def wait_state(
        self, check: Callable[[dict[str, Any]], bool], timeout_s: float, what: str
    ) -> dict[str, Any]:
        box: dict[str, Any] = {}

        def ok() -> bool:
            box["state"] = self.state()
            return check(box["state"])

        try:
            wait_until(ok, timeout_s, what, every_s=0.1)
        except TimeoutError as error:
            raise AssertionError(f"{error}; last state {box.get('state')}") from None
        result: dict[str, Any] = box["state"]
        return result

    def remember_children(self) -> None:
        with contextlib.suppress(psutil.Error):
            self.seen_pids.update(p.pid for p in psutil.Process(self.process.pid).children(recursive=True))

    def finish(self, timeout_s: float = 30.0) -> int:
        if self._stream is not None:
            self._stream.close()
            self._socket.close()
            self._stream = None
        try:
            return self.process.wait(timeout=timeout_s)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()

    def descendants_until_exit(self, timeout_s: float) -> dict[int, str]:
        """Every process below the app (pid: command line) seen until the app exits."""
        seen: dict[int, str] = {}
        deadline = time.monotonic() + timeout_s
        while self.process.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(self.process.pid).children(recursive=True):
                    if child.pid not in seen:
                        with contextlib.suppress(psutil.Error):
                            seen[child.pid] = " ".join(child.cmdline())
            time.sleep(0.02)
        self.seen_pids.update(seen)
        return seen

    def strays(self) -> list[str]:
        """Live processes that name this app's home folder on their command line (its services)."""
        found = []
        for proc in psutil.process_iter(["cmdline", "status"]):
            command = " ".join(proc.info["cmdline"] or ())
            if str(self.home) in command and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(f"{proc.pid}: {command}")
        return found

    def leftovers(self) -> list[int]:
        """Processes the app started that are still alive (zombies count as gone)."""
        alive = []
        for pid in self.seen_pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                continue
        return alive

    def kill_everything(self) -> None:
        self.remember_children()
        if self._stream is not None:
            self._stream.close()
            self._socket.close()
            self._stream = None
        for pid in [self.process.pid, *self.seen_pids]:
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                continue
        if self.process.poll() is None:
            self.process.wait(timeout=10)
