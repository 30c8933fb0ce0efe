"""Stands in for the app: supervises the command in argv[2:], prints the child's pid once it is
RUNNING, then waits to be killed. Usage: parent.py STATE_DIR COMMAND..."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from desktop.paths import AppPaths
from desktop.probe import http_ok
from desktop.runrecord import RunRecord
from desktop.supervisor import ServiceSpec, ServiceState, Supervisor


def main() -> None:
    paths = AppPaths.under(Path(sys.argv[1])).create()
    command = sys.argv[2:]
    port = command[command.index("--port") + 1]
    record = RunRecord(paths.run_record_file)
    record.claim()
    spec = ServiceSpec(
        name="svc",
        command=command,
        probe=lambda pid: http_ok(f"http://127.0.0.1:{port}/health"),
        env=record.child_env,
    )
    supervisor = Supervisor(spec, paths.log_dir, on_spawn=record.add_child, on_exit=record.remove_child)
    supervisor.start()
    status = supervisor.wait_for_state(ServiceState.RUNNING, timeout_s=20)
    print(status.pid, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
