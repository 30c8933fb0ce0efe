"""The run record (our pid file): which app process runs, which children it started, and what its
services are (Open WebUI: state, address, pid or container), for `--status` and the next launch.

If the app is killed hard, its children may survive it (on platforms without a parent-death
signal, or a grandchild that left the group). The next start reads the record and kills what the
dead run left behind. Every child also carries the run's id in its environment, so even a
re-parented grandchild is recognised, and nothing we did not start is touched.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from desktop.errors import FoundryDeskError
from desktop.files import read_json, write_json_atomic
from desktop.process import kill_all, kill_tree

RUN_ID_ENV = "FOUNDRY_DESK_RUN_ID"


class AlreadyRunning(FoundryDeskError, RuntimeError):
    """Another live Foundry Desk process owns this run record."""

    def __init__(self, pid: int) -> None:
        super().__init__(f"Foundry Desk is already running (pid {pid}).")
        self.pid = pid


@dataclass(frozen=True)
class Leftovers:
    """What a previous, crashed run left behind and we killed."""

    run_id: str
    pids: tuple[int, ...]
    services: Mapping[str, Any] = field(default_factory=dict)
    """What that run had published of its services (`RunRecord.publish`): a container, say."""


class RunRecord:
    """This run's entry in the record file; children are added and removed as they come and go."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.run_id = uuid.uuid4().hex
        self._pid = os.getpid()
        self._started_at = psutil.Process(self._pid).create_time()
        self._children: dict[int, float] = {}
        self._services: dict[str, Mapping[str, Any]] = {}
        self._claimed = False
        self._lock = threading.Lock()

    @property
    def child_env(self) -> dict[str, str]:
        """Environment that marks a child (and its descendants) as started by this run."""
        return {RUN_ID_ENV: self.run_id}

    def claim(self) -> Leftovers | None:
        """Take the record: raise `AlreadyRunning` if its owner lives, else clean up after it."""
        previous = read_json(self.path)
        leftovers = None
        if isinstance(previous, dict):
            owner = _alive(previous.get("pid"), previous.get("started_at"))
            if owner is not None and owner != self._pid:
                raise AlreadyRunning(owner)
            leftovers = _clean_up(previous)
        with self._lock:
            self._claimed = True
            self._save()
        return leftovers

    def add_child(self, pid: int) -> None:
        try:
            started_at = psutil.Process(pid).create_time()
        except psutil.Error:
            return
        with self._lock:
            self._children[pid] = started_at
            self._save()

    def remove_child(self, pid: int) -> None:
        with self._lock:
            if self._children.pop(pid, None) is not None:
                self._save()

    def publish(self, name: str, entry: Mapping[str, Any] | None) -> None:
        """What service `name` of this run is now (JSON-able), for `--status` and for the next
        launch; None: it is gone."""
        with self._lock:
            if entry is None:
                self._services.pop(name, None)
            else:
                self._services[name] = dict(entry)
            self._save()

    def release(self) -> None:
        """The run ended cleanly: nothing to clean up next time. Only a record this run claimed
        is removed (a launch that found another run must leave that run's record alone)."""
        with self._lock:
            self._children.clear()
            self._services.clear()
            if self._claimed:
                self._claimed = False
                self.path.unlink(missing_ok=True)

    def _save(self) -> None:
        """Write the record; only while this run owns it (claimed and not released)."""
        if not self._claimed:
            return
        write_json_atomic(
            self.path,
            {
                "pid": self._pid,
                "started_at": self._started_at,
                "run_id": self.run_id,
                "children": [{"pid": pid, "started_at": t} for pid, t in self._children.items()],
                "services": self._services,
            },
        )


def live_services(path: Path) -> dict[str, Any]:
    """The services published by the run that owns the record at `path`, while it is alive."""
    data = read_json(path)
    if not isinstance(data, dict) or _alive(data.get("pid"), data.get("started_at")) is None:
        return {}
    services = data.get("services")
    return services if isinstance(services, dict) else {}


def _alive(pid: Any, started_at: Any) -> int | None:
    if not isinstance(pid, int) or not isinstance(started_at, float | int):
        return None
    try:
        same = abs(psutil.Process(pid).create_time() - started_at) < 0.01
    except psutil.Error:
        return None
    return pid if same else None


def _clean_up(previous: dict[str, Any]) -> Leftovers | None:
    killed: list[int] = []
    for entry in previous.get("children", []):
        if isinstance(entry, dict):
            killed.extend(kill_tree(int(entry.get("pid", 0)), entry.get("started_at")))
    run_id = previous.get("run_id")
    services = previous.get("services")
    services = services if isinstance(services, dict) else {}
    if isinstance(run_id, str):
        marked = processes_marked(run_id)
        kill_all(marked)
        killed.extend(marked)
        return Leftovers(run_id, tuple(sorted(set(killed))), services) if killed or services else None
    return None


def processes_marked(run_id: str) -> list[int]:
    """Pids of live processes whose environment says they were started by run `run_id`."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(RUN_ID_ENV) == run_id:
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found
