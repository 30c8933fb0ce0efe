"""The supervisor against a real child service: readiness, restarts, caps, stop, no orphans."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from desktop.probe import child_serves, http_ok, wait_for
from desktop.process import process_alive
from desktop.supervisor import (
    Probe,
    RestartPolicy,
    ServiceSpec,
    ServiceState,
    Supervisor,
    backoff_delay,
)
from tests.conftest import SUPPORT, free_port, service_command

MakeSupervisor = Callable[..., tuple[Supervisor, int]]

pytestmark = pytest.mark.usefixtures("no_leftover_children")

FAST = RestartPolicy(limit=2, window_s=60, backoff_base_s=0.05, backoff_max_s=0.2, probe_interval_s=0.1)


def health_probe(port: int) -> Probe:
    return lambda pid: http_ok(f"http://127.0.0.1:{port}/health", timeout_s=0.5)


@pytest.fixture
def make_supervisor(tmp_path: Path) -> Iterator[MakeSupervisor]:
    made: list[Supervisor] = []

    def make(
        *flags: str, policy: RestartPolicy = FAST, stop_timeout_s: float = 5.0
    ) -> tuple[Supervisor, int]:
        port = free_port()
        spec = ServiceSpec(
            name="svc",
            command=service_command(port, *flags),
            probe=health_probe(port),
            start_timeout_s=10,
            stop_timeout_s=stop_timeout_s,
        )
        supervisor = Supervisor(spec, tmp_path / "logs", policy)
        made.append(supervisor)
        return supervisor, port

    yield make
    for supervisor in made:
        supervisor.stop()


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_delay(n, 0.5, 3.0) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_running_means_the_probe_answered(make_supervisor: MakeSupervisor) -> None:
    supervisor, port = make_supervisor("--slow-start", "0.5")
    supervisor.start()
    status = supervisor.wait_for_state(ServiceState.RUNNING, timeout_s=10)
    assert status.state is ServiceState.RUNNING
    assert http_ok(f"http://127.0.0.1:{port}/health")

    stopped = supervisor.stop()
    assert stopped.state is ServiceState.STOPPED
    assert not process_alive(status.pid or 0)


def test_killed_child_is_restarted_and_answers_again(make_supervisor: MakeSupervisor) -> None:
    supervisor, port = make_supervisor()
    supervisor.start()
    first = supervisor.wait_for_state(ServiceState.RUNNING, timeout_s=10)
    os.kill(first.pid or 0, signal.SIGKILL)

    again = supervisor.wait_until(
        lambda s: s.state is ServiceState.RUNNING and s.pid != first.pid, timeout_s=10
    )
    assert again.state is ServiceState.RUNNING and again.restarts == 1
    assert http_ok(f"http://127.0.0.1:{port}/health")


def test_hung_child_is_replaced(make_supervisor: MakeSupervisor) -> None:
    supervisor, _ = make_supervisor()
    supervisor.start()
    first = supervisor.wait_for_state(ServiceState.RUNNING, timeout_s=10)
    os.kill(first.pid or 0, signal.SIGSTOP)  # alive, but no longer answering

    again = supervisor.wait_until(
        lambda s: s.state is ServiceState.RUNNING and s.pid != first.pid, timeout_s=15
    )
    assert again.state is ServiceState.RUNNING
    assert not process_alive(first.pid or 0)


def test_crash_loop_ends_failed_with_the_log_tail(make_supervisor: MakeSupervisor) -> None:
    supervisor, _ = make_supervisor("--crash")
    supervisor.start()
    status = supervisor.wait_for_state(ServiceState.FAILED, timeout_s=15)
    assert status.state is ServiceState.FAILED
    assert "exited with code 3" in status.message and "gave up after 2 restarts" in status.message
    assert any("boom: cannot open the model file" in line for line in status.log_tail)


def test_child_ignoring_sigterm_is_gone_after_stop(make_supervisor: MakeSupervisor) -> None:
    supervisor, _ = make_supervisor("--ignore-term", stop_timeout_s=1.0)
    supervisor.start()
    status = supervisor.wait_for_state(ServiceState.RUNNING, timeout_s=10)
    assert supervisor.stop().state is ServiceState.STOPPED
    assert not process_alive(status.pid or 0)


@pytest.mark.parametrize("detach", [False, True], ids=["same-group", "own-session"])
def test_grandchild_does_not_survive_stop(
    make_supervisor: MakeSupervisor, tmp_path: Path, detach: bool
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    flags = ["--grandchild", str(pid_file)] + (["--detach-grandchild"] if detach else [])
    supervisor, _ = make_supervisor(*flags)
    supervisor.start()
    supervisor.wait_for_state(ServiceState.RUNNING, timeout_s=10)
    grandchild = int(pid_file.read_text())
    assert process_alive(grandchild)

    supervisor.stop()
    assert wait_for(lambda: not process_alive(grandchild), timeout_s=3)


def test_grandchild_of_a_killed_child_is_cleaned_up(make_supervisor: MakeSupervisor, tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    supervisor, _ = make_supervisor("--grandchild", str(pid_file))
    supervisor.start()
    first = supervisor.wait_for_state(ServiceState.RUNNING, timeout_s=10)
    grandchild = int(pid_file.read_text())
    os.kill(first.pid or 0, signal.SIGKILL)

    supervisor.wait_until(lambda s: s.state is ServiceState.RUNNING and s.pid != first.pid, timeout_s=10)
    assert not process_alive(grandchild)


def test_killing_the_app_takes_its_children_along(tmp_path: Path) -> None:
    """A real parent process supervising a real child; SIGKILL the parent, the child exits."""
    port = free_port()
    with subprocess.Popen(
        [sys.executable, str(SUPPORT / "parent.py"), str(tmp_path), *service_command(port)],
        stdout=subprocess.PIPE,
        text=True,
    ) as parent:
        try:
            assert parent.stdout is not None
            child_pid = int(parent.stdout.readline())
            assert http_ok(f"http://127.0.0.1:{port}/health")
        finally:
            parent.kill()
    assert wait_for(lambda: not process_alive(child_pid), timeout_s=5)
    assert not http_ok(f"http://127.0.0.1:{port}/health")


def test_a_server_that_is_not_our_childs_does_not_count_as_our_service() -> None:
    """A port picked as free can be taken by another program before our child binds it: its
    answer must not make our service "running" (the window would load the other program)."""
    ours_port, theirs_port = free_port(), free_port()
    ours = subprocess.Popen(service_command(ours_port))
    theirs = subprocess.Popen(service_command(theirs_port))
    try:
        for port in (ours_port, theirs_port):
            url = f"http://127.0.0.1:{port}/health"
            assert wait_for(functools.partial(http_ok, url), 10)
        assert child_serves(ours.pid, f"http://127.0.0.1:{ours_port}/health")
        assert not child_serves(ours.pid, f"http://127.0.0.1:{theirs_port}/health")  # it answers, not ours
    finally:
        for process in (ours, theirs):
            process.kill()
            process.wait()
