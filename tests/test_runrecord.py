"""The run record: a crashed run's leftovers are cleaned up at the next start, nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.paths import AppPaths
from desktop.probe import wait_for
from desktop.process import process_alive
from desktop.runrecord import AlreadyRunning, RunRecord, live_services
from tests.conftest import SUPPORT, free_port, service_command


def test_next_start_kills_what_a_killed_run_left_behind(tmp_path: Path) -> None:
    grandchild_file = tmp_path / "grandchild.pid"
    command = service_command(free_port(), "--grandchild", str(grandchild_file), "--detach-grandchild")
    with subprocess.Popen(
        [sys.executable, str(SUPPORT / "parent.py"), str(tmp_path), *command],
        stdout=subprocess.PIPE,
        text=True,
    ) as crashed_app:
        assert crashed_app.stdout is not None
        int(crashed_app.stdout.readline())
        crashed_app.kill()  # no chance to clean up
    # The grandchild left the process group, so neither stop nor the parent-death signal reached it.
    grandchild = int(grandchild_file.read_text())
    assert process_alive(grandchild)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])

    try:
        record = RunRecord(AppPaths.under(tmp_path).run_record_file)
        leftovers = record.claim()
        assert leftovers is not None and grandchild in leftovers.pids
        assert wait_for(lambda: not process_alive(grandchild), timeout_s=3)
        assert process_alive(bystander.pid), "a process we did not start was killed"
        record.release()
        assert not record.path.exists()
    finally:
        bystander.kill()
        bystander.wait()
        if process_alive(grandchild):
            os.kill(grandchild, 9)


def test_a_live_owner_is_never_cleaned_up(tmp_path: Path) -> None:
    """Nor is its record: a launch that found it running leaves the record (and the services it
    published, which `--status` shows) as they are."""
    path = tmp_path / "run.json"
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from desktop.runrecord import RunRecord; "
            f"record = RunRecord(__import__('pathlib').Path({str(path)!r})); record.claim(); "
            "record.publish('open-webui', {'state': 'running', 'pid': 1}); print('ok', flush=True); "
            "time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "ok"
        refused = RunRecord(path)
        with pytest.raises(AlreadyRunning) as raised:
            refused.claim()
        assert raised.value.pid == owner.pid
        assert process_alive(owner.pid)
        refused.publish("open-webui", None)
        refused.release()
        assert live_services(path) == {"open-webui": {"state": "running", "pid": 1}}
    finally:
        owner.kill()
        owner.wait()
        assert owner.stdout is not None
        owner.stdout.close()


def test_a_run_that_crashed_hands_its_services_to_the_next_launch(tmp_path: Path) -> None:
    """What the crashed run had published (a container, which is no child to kill) is what the
    next launch gets to clean up; then the record is the new run's."""
    path = tmp_path / "run.json"
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import os; from desktop.runrecord import RunRecord; "
            f"record = RunRecord(__import__('pathlib').Path({str(path)!r})); record.claim(); "
            "record.publish('open-webui', {'state': 'running', 'container': 'foundry-desk-open-webui'}); "
            "os._exit(9)",
        ],
        check=False,
    )
    record = RunRecord(path)
    leftovers = record.claim()
    assert leftovers is not None and leftovers.pids == ()
    assert leftovers.services == {"open-webui": {"state": "running", "container": "foundry-desk-open-webui"}}
    assert live_services(path) == {}
    record.release()
    assert not path.exists()
