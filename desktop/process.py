"""Spawning one child process with its log, and killing a whole process tree.

Output of a child goes straight to its log file (no pipe, no reader thread, nothing to block);
the tail shown to the user is read back from that file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from desktop import compat

LOG_ROTATE_BYTES = 5 * 1024 * 1024
_TAIL_BYTES = 64 * 1024


@dataclass
class Child:
    """A running child process and where its output goes."""

    popen: subprocess.Popen[bytes]
    log_file: Path
    log_offset: int
    """Where this run's output starts in the log file."""
    app_tie: object | None = None
    """Keeps the child tied to the app's life (Windows job object); see `compat.tie_to_app`."""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exit_code(self) -> int | None:
        """None while running."""
        return self.popen.poll()

    def log_tail(self, lines: int = 20) -> list[str]:
        """The last lines this run wrote."""
        return read_tail(self.log_file, lines, start=self.log_offset)


def spawn(
    command: Sequence[str],
    log_file: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Child:
    """Start `command` in its own process group, output appended to `log_file`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    _rotate(log_file)
    with open(log_file, "ab") as log:
        stamp = dt.datetime.now().isoformat(timespec="seconds")
        log.write(f"--- {stamp} start: {' '.join(command)}\n".encode())
        log.flush()
        offset = log.tell()
        popen = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            **compat.child_popen_kwargs(),
        )
    return Child(popen=popen, log_file=log_file, log_offset=offset, app_tie=compat.tie_to_app(popen))


def _rotate(log_file: Path) -> None:
    try:
        if log_file.stat().st_size > LOG_ROTATE_BYTES:
            log_file.replace(log_file.with_suffix(log_file.suffix + ".1"))
    except FileNotFoundError:
        pass


def read_tail(path: Path, lines: int, start: int = 0) -> list[str]:
    """The last `lines` lines of `path` after byte `start` (cheap on big files)."""
    try:
        with open(path, "rb") as stream:
            size = stream.seek(0, os.SEEK_END)
            stream.seek(max(start, size - _TAIL_BYTES))
            data = stream.read()
    except FileNotFoundError:
        return []
    text = data.decode("utf-8", errors="replace")
    return [line for line in text.splitlines() if line.strip()][-lines:]


def stop_tree(child: Child, timeout_s: float) -> None:
    """Ask the child and its descendants to exit, wait up to `timeout_s`, then kill what is left.

    Descendants are collected before asking, so a grandchild that left the process group is still
    found; the group is killed last, so one that was re-parented is found too.
    """
    tree = _tree(child.pid)
    compat.ask_to_stop(child.pid)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.popen.wait(timeout=timeout_s)
    _, alive = psutil.wait_procs([p for p in tree if p.pid != child.pid], timeout=0.5)
    kill_all([child.pid, *(p.pid for p in alive)])
    compat.kill_group(child.pid)
    child.popen.wait()


def kill_all(pids: Sequence[int]) -> None:
    """Kill each process (already gone is fine) and wait briefly for them to vanish."""
    procs = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            proc.kill()
            procs.append(proc)
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=2)


def kill_tree(pid: int, started_at: float | None = None) -> list[int]:
    """Kill a process and its descendants, if `pid` is still the process started at `started_at`;
    returns the pids killed (none when it is not).

    The start time guards against a recycled pid: we never kill what we did not start.
    """
    try:
        root = psutil.Process(pid)
        if started_at is not None and abs(root.create_time() - started_at) > 0.01:
            return []
    except psutil.Error:
        return []
    tree = [p.pid for p in _tree(pid)]
    kill_all(tree)
    compat.kill_group(pid)
    return tree


def descendants() -> list[int]:
    """Every process this one started, and theirs."""
    return [child.pid for child in psutil.Process().children(recursive=True)]


def process_alive(pid: int) -> bool:
    """True while `pid` runs (a killed child stays a zombie until its parent reaps it)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []
