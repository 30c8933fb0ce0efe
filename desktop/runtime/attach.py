"""Endpoints the app uses but does not host: any OpenAI-compatible URL, or the Foundry Local app.

The Foundry Local app (Windows/macOS) installs a `foundry` command; like the Foundry Local
samples, we ask `foundry service status` where its service listens, and reuse its model cache so
that no model is downloaded twice.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import urllib.error
from dataclasses import dataclass
from pathlib import Path

from desktop.errors import FoundryDeskError
from desktop.loopback import on_this_computer
from desktop.probe import http_get_json

_SERVICE_URL = re.compile(r"https?://(?:[a-zA-Z0-9.-]+|\d{1,3}(?:\.\d{1,3}){3}):\d+")


class EndpointUnreachable(FoundryDeskError, ConnectionError):
    """The endpoint did not answer like an OpenAI-compatible server; the message says what to do."""


def list_endpoint_models(
    base_url: str, api_key: str, timeout_s: float = 10.0, *, offline: bool = False
) -> list[str]:
    """Ids of the models an OpenAI-compatible endpoint offers (`GET {base_url}/models`).

    In offline mode an endpoint that is not on this computer is not asked at all."""
    url = base_url.rstrip("/") + "/models"
    if offline and not on_this_computer(base_url):
        raise EndpointUnreachable(
            f"Offline mode is on, and {base_url} is not on this computer. Turn offline mode off to use "
            "it, or unset BASE_URL to use the built-in runtime."
        )
    try:
        data = http_get_json(url, timeout_s=timeout_s, headers={"Authorization": f"Bearer {api_key}"})
    except urllib.error.HTTPError as error:
        error.close()
        hint = (
            " Check API_KEY."
            if error.code in (401, 403)
            else " Is BASE_URL the API root (often ending in /v1)?"
        )
        raise EndpointUnreachable(f"{url} answered HTTP {error.code}.{hint}") from None
    except (OSError, ValueError) as error:
        raise EndpointUnreachable(
            f"Cannot reach {url} ({getattr(error, 'reason', error)}). Start that server, or unset BASE_URL "
            "to use the built-in runtime."
        ) from None
    try:
        return [str(model["id"]) for model in data["data"]]
    except (KeyError, TypeError):
        raise EndpointUnreachable(f"{url} did not answer with an OpenAI model list.") from None


@dataclass(frozen=True)
class FoundryApp:
    """A Foundry Local app installation found on this machine."""

    executable: str
    service_url: str | None
    """Where its service listens, when it is running."""
    cache_dir: Path | None
    """Its model cache folder, when it could tell."""

    @property
    def base_url(self) -> str | None:
        return f"{self.service_url}/v1" if self.service_url else None


def discover_foundry_app(timeout_s: float = 5.0) -> FoundryApp | None:
    """Find the `foundry` command, its running service and its model cache; None if not installed."""
    executable = shutil.which("foundry")
    if executable is None:
        return None
    status = _run(executable, ["service", "status"], timeout_s)
    match = _SERVICE_URL.search(status)
    service_url = match.group(0) if match else None
    cache_dir = _cache_from_service(service_url) if service_url else None
    if cache_dir is None:
        cache_dir = _cache_from_cli(_run(executable, ["cache", "location"], timeout_s))
    return FoundryApp(executable, service_url, cache_dir)


def _run(executable: str, args: list[str], timeout_s: float) -> str:
    try:
        done = subprocess.run(
            [executable, *args], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout + done.stderr


def _cache_from_service(service_url: str) -> Path | None:
    try:
        data = http_get_json(f"{service_url}/openai/status", timeout_s=3.0)
    except (OSError, ValueError):
        return None
    folder = data.get("modelDirPath") if isinstance(data, dict) else None
    return Path(folder) if isinstance(folder, str) and Path(folder).is_dir() else None


def _cache_from_cli(output: str) -> Path | None:
    """`foundry cache location` prints a line ending in the folder (after an emoji and a label)."""
    for line in output.splitlines():
        candidate = line.split(": ", 1)[-1].strip()
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None
