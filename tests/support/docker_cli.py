"""The stand-in `docker` CLI (`fake_docker.py`) as the tests install it, and what it recorded.

The Docker engine cannot run here; the stand-in answers the commands the app uses as the real CLI
does (exit codes, output) and runs a "container" as a local process (`open_webui_standin.py`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from desktop.openwebui.service import CONTAINER_NAME
from desktop.probe import wait_for

SUPPORT = Path(__file__).parent
STANDIN_OWN = {"PATH", "ARGV", "CWD", "LC_CTYPE", "STANDIN_DATA_DIR"}
"""What the container stand-in records of its environment that the app did not set."""


def write_executable(folder: Path, name: str, script: Path) -> Path:
    """A command `name` in `folder` that runs the Python `script` with this interpreter."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$@"\n')
    path.chmod(0o755)
    return path


@dataclass
class FakeDocker:
    """The stand-in CLI in `bin_dir`, keeping its state (calls, containers) in `state`."""

    bin_dir: Path
    state: Path

    @classmethod
    def install(cls, folder: Path) -> FakeDocker:
        write_executable(folder / "bin", "docker", SUPPORT / "fake_docker.py")
        return cls(folder / "bin", folder / "docker-state")

    def env(self) -> dict[str, str]:
        """For a process that should find it: first on PATH, with its state folder."""
        return {
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_DOCKER_STATE": str(self.state),
        }

    def calls(self) -> list[list[str]]:
        path = self.state / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def containers(self) -> dict[str, Any]:
        path = self.state / "containers.json"
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def container_env(self, name: str = CONTAINER_NAME) -> dict[str, str]:
        """The environment the app gave the container (without the stand-in's own)."""
        env_file = self.state / f"{name}.env.json"
        assert wait_for(env_file.exists, timeout_s=5)
        recorded = json.loads(env_file.read_text())
        return {k: v for k, v in recorded.items() if k not in STANDIN_OWN}

    def kill_containers(self) -> None:
        """At a test's end: the "containers" run in sessions of their own, so nothing else ends them."""
        for container in self.containers().values():
            with contextlib.suppress(psutil.Error):
                psutil.Process(container["pid"]).kill()
