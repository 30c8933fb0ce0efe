"""Keeps one child process running and answering, knowing nothing about the tray or the window.

Lifecycle (supervisord's vocabulary)::

    STOPPED -> STARTING -> RUNNING -> (dies / stops answering) -> BACKOFF -> STARTING ...
                                  \\-> past the restart cap -> FAILED (with the log tail)
    any -> STOPPING -> STOPPED      (stop(): ask, wait with a deadline, kill the whole tree)

RUNNING means the readiness probe answered. A child that dies, or fails the probe several times
in a row, is replaced after an exponential backoff; more than `limit` restarts within `window_s`
seconds ends in FAILED until `restart()` is called.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from desktop.process import Child, spawn, stop_tree

log = logging.getLogger(__name__)


class ServiceState(enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    FAILED = "failed"


Probe = Callable[[int], bool]
"""Asked with the child's pid; True when the child answers as a healthy service should."""


@dataclass(frozen=True)
class ServiceSpec:
    """What to run and how to tell it is ready."""

    name: str
    command: Sequence[str]
    probe: Probe
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    start_timeout_s: float = 60.0
    """How long a start may take before it counts as a failure."""
    stop_timeout_s: float = 5.0
    """How long a child gets to exit after being asked, before it is killed."""


@dataclass(frozen=True)
class RestartPolicy:
    """When and how often a failed child is started again."""

    limit: int = 3
    window_s: float = 600.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    probe_interval_s: float = 1.0
    unhealthy_after: int = 3
    """Consecutive failed probes after which a running child is replaced."""


def backoff_delay(attempt: int, base_s: float, max_s: float) -> float:
    """Seconds to wait before restart number `attempt` (1, 2, ...): base, 2*base, 4*base ... max."""
    return float(min(max_s, base_s * 2 ** max(0, attempt - 1)))


@dataclass(frozen=True)
class ServiceStatus:
    """A snapshot for the UI: state, the child's pid, and why it is not running when it is not."""

    name: str
    state: ServiceState
    pid: int | None = None
    restarts: int = 0
    message: str = ""
    log_tail: tuple[str, ...] = ()


class Supervisor:
    """Runs one `ServiceSpec` on a monitor thread of its own."""

    def __init__(
        self,
        spec: ServiceSpec,
        log_dir: Path,
        policy: RestartPolicy | None = None,
        *,
        on_change: Callable[[ServiceStatus], None] | None = None,
        on_spawn: Callable[[int], None] | None = None,
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        self.spec = spec
        self.policy = policy or RestartPolicy()
        self.log_file = log_dir / f"{spec.name}.log"
        self._on_change = on_change
        self._on_spawn = on_spawn
        self._on_exit = on_exit
        self._status = ServiceStatus(spec.name, ServiceState.STOPPED)
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._child: Child | None = None
        self._failures: deque[float] = deque()

    # -- public API ---------------------------------------------------------------------------

    @property
    def status(self) -> ServiceStatus:
        with self._changed:
            return self._status

    def start(self) -> None:
        """Start supervising (returns at once; use `wait_until` for readiness)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._failures.clear()
        # The monitor thread forks the children and lives as long as they do: on Linux a
        # child's parent-death signal fires when the thread that forked it exits.
        self._thread = threading.Thread(target=self._run, name=f"supervise-{self.spec.name}", daemon=True)
        self._thread.start()

    def stop(self) -> ServiceStatus:
        """Stop the child (ask, wait, kill the tree) and supervise no more. Nothing respawns."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=self.spec.stop_timeout_s + 10)
        self._thread = None
        return self.status

    def restart(self) -> None:
        """Restart from any state, e.g. after FAILED when the user asks to try again."""
        self.stop()
        self.start()

    def wait_until(
        self,
        predicate: Callable[[ServiceStatus], bool],
        timeout_s: float,
    ) -> ServiceStatus:
        """Block until `predicate(status)` holds or the timeout passes; returns the last status."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not predicate(self._status):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return self._status

    def wait_for_state(self, *states: ServiceState, timeout_s: float) -> ServiceStatus:
        return self.wait_until(lambda status: status.state in states, timeout_s)

    # -- the monitor thread -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            problem = self._run_once()
            if self._stop.is_set():
                break
            now = time.monotonic()
            self._failures.append(now)
            while self._failures and now - self._failures[0] > self.policy.window_s:
                self._failures.popleft()
            if len(self._failures) > self.policy.limit:
                self._set(
                    ServiceState.FAILED, message=f"{problem}; gave up after {self.policy.limit} restarts"
                )
                self._stop.wait()
                break
            delay = backoff_delay(len(self._failures), self.policy.backoff_base_s, self.policy.backoff_max_s)
            self._set(ServiceState.BACKOFF, message=f"{problem}; restarting in {delay:.1f} s")
            self._stop.wait(delay)
        self._set(ServiceState.STOPPED, pid=None, message="")

    def _run_once(self) -> str:
        """Start the child, watch it until it fails (returns why) or a stop is requested."""
        try:
            child = spawn(self.spec.command, self.log_file, env=self.spec.env, cwd=self.spec.cwd)
        except OSError as error:
            return f"could not start {self.spec.command[0]}: {error}"
        self._child = child
        if self._on_spawn:
            self._on_spawn(child.pid)
        self._set(ServiceState.STARTING, pid=child.pid, message="", log_tail=())
        try:
            problem = self._wait_ready(child) or self._watch(child)
        finally:
            self._end(child)
        return problem

    def _wait_ready(self, child: Child) -> str:
        deadline = time.monotonic() + self.spec.start_timeout_s
        while not self._stop.is_set():
            code = child.exit_code()
            if code is not None:
                return f"exited with code {code} while starting"
            if self._probe(child):
                self._set(ServiceState.RUNNING, message="")
                return ""
            if time.monotonic() > deadline:
                return f"not ready after {self.spec.start_timeout_s:.0f} s"
            self._stop.wait(0.05)
        return ""

    def _watch(self, child: Child) -> str:
        misses = 0
        while not self._stop.wait(self.policy.probe_interval_s):
            code = child.exit_code()
            if code is not None:
                return f"exited with code {code}"
            misses = 0 if self._probe(child) else misses + 1
            if misses >= self.policy.unhealthy_after:
                return f"stopped answering ({misses} failed health checks)"
        return ""

    def _probe(self, child: Child) -> bool:
        try:
            return self.spec.probe(child.pid)
        except Exception:  # a probe bug must not kill the monitor thread
            log.exception("probe of %s raised", self.spec.name)
            return False

    def _end(self, child: Child) -> None:
        """Stop the child's whole tree, whether it is alive, hung or already dead."""
        if self._stop.is_set():
            self._set(ServiceState.STOPPING)
        stop_tree(child, self.spec.stop_timeout_s)
        self._child = None
        if self._on_exit:
            self._on_exit(child.pid)
        with self._changed:
            self._status = replace(self._status, log_tail=tuple(child.log_tail()))

    def _set(self, state: ServiceState, **changes: object) -> None:
        with self._changed:
            restarts = len(self._failures)
            self._status = replace(self._status, state=state, restarts=restarts, **changes)  # type: ignore[arg-type]
            status = self._status
            self._changed.notify_all()
        log.info("%s: %s %s", self.spec.name, state.value, status.message)
        if self._on_change:
            self._on_change(status)
