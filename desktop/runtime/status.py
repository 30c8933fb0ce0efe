"""The runtime's published state: one small JSON file that the app and other tools can read.

The runtime host writes it at every change; `GET /status` on its control port returns the same.
"""

from __future__ import annotations

import enum
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from desktop.files import read_json, write_json_atomic


class RuntimeState(enum.Enum):
    STARTING = "starting"
    DOWNLOADING = "downloading"
    LOADING = "loading"
    READY = "ready"
    NO_MODEL = "no_model"
    """Alive and answering, but there is no model to serve; `message` says what to do."""
    FAILED = "failed"
    STOPPED = "stopped"


class CompanionState(enum.StrEnum):
    """The companion's states (`RuntimeStatus.companion_state`): strings, so that the status file
    stays plain JSON and a reader compares with either."""

    NONE = ""
    LOADING = "loading"
    READY = "ready"
    """Loaded beside the chat model (or the chat model itself): both answer at once."""
    ONE_AT_A_TIME = "one-at-a-time"
    """Memory does not hold both: one is loaded at a time, and they take turns."""
    FAILED = "failed"


COMPANION_SETTLED = frozenset({CompanionState.READY, CompanionState.ONE_AT_A_TIME, CompanionState.FAILED})
"""Companion states that wait for the user rather than working towards READY."""


@dataclass(frozen=True)
class RuntimeStatus:
    """What the runtime is doing, and where to reach it."""

    state: RuntimeState
    message: str = ""
    progress: float | None = None
    """Download progress in percent, while DOWNLOADING."""
    base_url: str | None = None
    """OpenAI-compatible base URL (ends in /v1) of the current model, once READY."""
    model_id: str | None = None
    model_alias: str | None = None
    context_length: int | None = None
    """Tokens the current model can attend to (prompt and answer together)."""
    device: str | None = None
    """Where the model runs, e.g. "CPU" or "GPU via CUDAExecutionProvider"."""
    service_url: str | None = None
    """Root URL of the model endpoint on its real port: the runtime's web service, behind the
    host's front (`front`)."""
    control_url: str | None = None
    """The host's own routes: /health, /status, /models, /models/select, /models/companion (and
    /release, /turn), /catalog/retry."""
    catalog_reachable: bool | None = None
    """Whether the model catalog answered (online, or from its copy on disk) when the host last
    looked for a model; None until it has looked. False means: offline, nothing can be downloaded."""
    download_alias: str | None = None
    """A catalog model that is not downloaded yet: offered (NO_MODEL: a select request downloads
    it) or being downloaded (DOWNLOADING)."""
    download_size_mb: int | None = None
    """The size of `download_alias`'s download, as the catalog states it."""
    embedding_model_id: str | None = None
    """The embedding model loaded beside the chat model (`embedding_model`), once it is."""
    embeddings_url: str | None = None
    """OpenAI-compatible base URL (ends in /v1) whose /embeddings serves `embedding_model_id`."""
    embeddings_problem: str = ""
    """Why the configured embedding model is not served (the index is then searched by words only)."""
    companion_state: str = CompanionState.NONE
    """The second chat model held beside the chat model, to compare answers: "" (none), "loading",
    "ready" (loaded beside it: both answer at once), "one-at-a-time" (memory does not hold both:
    they take turns, see `/models/companion/turn`) or "failed" (`CompanionState`)."""
    companion_message: str = ""
    """What is happening to the companion ("Loading X beside Y") or its problem, for the user."""
    companion_model_id: str | None = None
    companion_alias: str | None = None
    companion_base_url: str | None = None
    """OpenAI-compatible base URL (ends in /v1) of the companion; the chat model's when they are
    the same model."""
    companion_context_length: int | None = None
    """Tokens the companion can attend to (prompt and answer together)."""
    companion_device: str | None = None
    """Where the companion runs, as `device` says it for the chat model."""
    pid: int = field(default_factory=os.getpid)
    updated_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        return data

    @classmethod
    def from_json(cls, data: Any) -> RuntimeStatus | None:
        """Parse a status; None for anything malformed (a reader must never crash on it)."""
        if not isinstance(data, dict):
            return None
        try:
            known = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
            known["state"] = RuntimeState(data["state"])
            return cls(**known)
        except (KeyError, TypeError, ValueError):
            return None

    def but(self, **changes: Any) -> RuntimeStatus:
        """A copy with `changes`, stamped now."""
        return replace(self, updated_at=time.time(), **changes)


def write_status(path: Path, status: RuntimeStatus) -> None:
    write_json_atomic(path, status.to_json())


def read_status(path: Path) -> RuntimeStatus | None:
    return RuntimeStatus.from_json(read_json(path))
