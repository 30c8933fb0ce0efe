"""The Docker CLI, as far as Foundry Desk uses it, with errors a user can act on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from desktop.errors import FoundryDeskError


class DockerError(FoundryDeskError, RuntimeError):
    """Docker could not do what was asked; the message says what to do."""


DAEMON_DOWN = (
    "Docker is installed but its engine is not running. Start Docker Desktop "
    "(on Linux: `sudo systemctl start docker`), then try again."
)


@dataclass(frozen=True)
class ContainerState:
    """What `docker inspect` says about a container."""

    status: str
    """created, running, restarting, exited, dead ..."""
    exit_code: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.status == "running"


class DockerCli:
    """Runs `docker` subcommands with a deadline; never waits forever on a hung engine."""

    def __init__(self, executable: str, timeout_s: float = 30.0) -> None:
        self.executable = executable
        self.timeout_s = timeout_s

    @classmethod
    def find(cls) -> DockerCli | None:
        executable = shutil.which("docker")
        return cls(executable) if executable else None

    def _run(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [self.executable, *args],
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                check=False,
                env={**os.environ, **env} if env else None,
            )
        except subprocess.TimeoutExpired:
            raise DockerError(
                f"`docker {args[0]}` did not answer within {self.timeout_s:.0f} s; is Docker still starting?"
            ) from None
        except OSError as error:
            raise DockerError(f"Cannot run {self.executable}: {error}") from None

    def engine_version(self) -> str:
        """The engine's version; raises `DockerError` when the engine does not answer."""
        done = self._run("version", "--format", "{{.Server.Version}}")
        if done.returncode != 0 or not done.stdout.strip():
            raise DockerError(DAEMON_DOWN)
        return done.stdout.strip()

    def has_image(self, image: str) -> bool:
        return self._run("image", "inspect", image).returncode == 0

    def inspect(self, name: str) -> ContainerState | None:
        """The container's state, or None when there is no such container."""
        done = self._run("inspect", "--type", "container", name)
        if done.returncode != 0:
            return None
        try:
            data = json.loads(done.stdout)[0]
            return ContainerState(
                status=str(data["State"]["Status"]),
                exit_code=int(data["State"].get("ExitCode", 0)),
                labels=dict(data.get("Config", {}).get("Labels") or {}),
            )
        except (ValueError, KeyError, IndexError, TypeError):
            raise DockerError(f"Unexpected answer from `docker inspect {name}`.") from None

    def has_volume(self, name: str) -> bool:
        return self._run("volume", "inspect", name).returncode == 0

    def run_detached(self, args: Sequence[str], env: Mapping[str, str] | None = None) -> str:
        """`docker run -d ARGS`; returns the new container's id. `env` is the CLI's own environment:
        where `--env NAME` (no value) takes a secret from, so that no command line shows it."""
        done = self._run("run", "-d", *args, env=env)
        if done.returncode != 0:
            raise DockerError(f"Docker could not start the container: {_last_line(done.stderr)}")
        return done.stdout.strip()

    def logs(self, name: str, lines: int) -> list[str]:
        done = self._run("logs", "--tail", str(lines), name)
        return (done.stdout + done.stderr).splitlines()[-lines:]

    def stop(self, name: str, timeout_s: int = 10) -> None:
        self._run("stop", "--time", str(timeout_s), name)

    def remove(self, name: str) -> None:
        done = self._run("rm", "--force", name)
        if done.returncode != 0 and "No such container" not in done.stderr:
            raise DockerError(f"Could not remove container {name}: {_last_line(done.stderr)}")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no details"
