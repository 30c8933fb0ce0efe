"""Runs `foundry-desk --headless` as a user would (from source, or an installed build), and reads
what it prints."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import psutil

from desktop.paths import AppPaths
from desktop.runtime.status import read_status

FROM_SOURCE = (sys.executable, "-m", "desktop")


class Headless:
    """One `foundry-desk --headless` process whose output lines we can wait for."""

    def __init__(
        self, home: Path, env: dict[str, str], *args: str, command: tuple[str, ...] = FROM_SOURCE
    ) -> None:
        self.home = home
        self.process = subprocess.Popen(
            [*command, "--headless", *args],
            env={**os.environ, "FOUNDRY_DESK_HOME": str(home), **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.stderr = ""
        self.exit_code: int | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for_line(self, pattern: str, timeout_s: float = 30.0) -> re.Match[str]:
        deadline = timeout_s
        while True:
            try:
                line = self.lines.get(timeout=deadline)
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r}; saw {self.seen}") from None
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def endpoint(self) -> tuple[str, str]:
        base_url = self.wait_for_line(r"base_url: (\S+)").group(1)
        model = self.wait_for_line(r"model: +(\S+)").group(1)
        return base_url, model

    def host_pid(self) -> int:
        status = read_status(AppPaths.under(self.home).runtime_status_file)
        assert status is not None
        return status.pid

    def finish(self, signum: int | None = signal.SIGTERM, timeout_s: float = 15.0) -> int:
        """Signal the process (None: let it exit by itself), wait for it (killing it past the
        timeout, which fails the test with what the app was still doing), and keep all its output."""
        if self.exit_code is not None:
            return self.exit_code
        if signum is not None and self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            self.exit_code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            still = children_of(self.process.pid)
            self.exit_code = -1
            self._end()
            raise AssertionError(
                f"the app still ran {timeout_s:.0f} s after signal {signum}; its children then: {still}; "
                f"its last lines: {self.seen[-5:]}; its stderr: {self.stderr[-3000:]}"
            ) from None
        self._end()
        return self.exit_code

    def _end(self) -> None:
        """Kill what is left of the process and keep all its output."""
        self.process.kill()
        self.process.wait()
        self._reader.join(timeout=5)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        assert self.process.stderr is not None and self.process.stdout is not None
        self.stderr = self.process.stderr.read()
        self.process.stderr.close()
        self.process.stdout.close()


def children_of(pid: int) -> list[str]:
    """The command lines of a process's descendants (what it still waits for)."""
    try:
        return [" ".join(child.cmdline()[1:4]) for child in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []
