"""Where an answer is computed: the local model (hosted runtime or attached URL) or a remote one.

`LocalEndpoint.state()` turns the runtime's published status into either a ready `Target` or a
sentence for the user (starting, downloading 42 %, no model, restarting, unreachable). `plan()`
is the routing policy: which targets to try, in which order, for one prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from desktop.chat.trimming import estimate_tokens
from desktop.config import Settings
from desktop.process import process_alive
from desktop.runtime.attach import EndpointUnreachable, list_endpoint_models
from desktop.runtime.service import ModelEntry, RuntimeClient
from desktop.runtime.status import RuntimeState, RuntimeStatus

LOCAL = "local"
REMOTE = "remote"
LONG_PROMPT_TOKENS = 1500
"""Prompts estimated above this count as the task type "long"."""
_CODE = re.compile(
    r"```|\b(def|class|function|import|SELECT|regex|stack trace|traceback|compile|python|javascript|"
    r"typescript|rust|golang|java|c\+\+|sql|bash|script)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Target:
    """One OpenAI-compatible endpoint and model to send a request to."""

    where: str
    """LOCAL or REMOTE."""
    base_url: str
    api_key: str
    model: str
    context_length: int | None = None
    device: str | None = None

    @property
    def label(self) -> str:
        """What the answer's footer says about where it was computed."""
        if self.where == LOCAL:
            device = f", {self.device}" if self.device else ""
            return f"on this computer ({self.model}{device})"
        return f"remotely ({self.model} at {self.base_url})"

    @property
    def place(self) -> str:
        """Where it runs, in a few words (Compare's numbers): this computer's device, or the host."""
        if self.where == LOCAL:
            return f"this computer ({self.device or 'CPU'})"
        return f"remote host {urlsplit(self.base_url).hostname or self.base_url}"


@dataclass(frozen=True)
class LocalState:
    """The local model: a `target` when it can answer now, else what to tell the user."""

    target: Target | None
    message: str = ""
    transient: bool = True
    """True while it is expected to become ready by itself (starting, downloading, restarting)."""


class LocalEndpoint:
    """The local model as the chat sees it, in hosted or attach mode."""

    def __init__(self, settings: Settings, client: RuntimeClient) -> None:
        self.settings = settings
        self.client = client
        self.attached = settings.base_url is not None

    def state(self) -> LocalState:
        """Blocking (a status read, or a model list in attach mode): call it off the event loop."""
        if self.settings.base_url is not None:
            return self._attached(self.settings.base_url)
        return describe_runtime(self.client.status(), self.settings.api_key)

    def models(self) -> tuple[list[str], str | None]:
        """The model ids the endpoint offers and the current one (blocking)."""
        if self.settings.base_url is not None:
            try:
                listed = list_endpoint_models(
                    self.settings.base_url, self.settings.api_key, timeout_s=5, offline=self.settings.offline
                )
            except EndpointUnreachable:
                return [], None
            current = self.settings.model if self.settings.model in listed else next(iter(listed), None)
            return listed, current
        status = self.client.status()
        current = status.model_id if status is not None and status.state is RuntimeState.READY else None
        try:
            entries: list[ModelEntry] = self.client.models()
        except Exception:
            return ([current] if current else []), current
        return [entry.id for entry in entries], current

    def _attached(self, base_url: str) -> LocalState:
        try:
            listed = list_endpoint_models(
                base_url, self.settings.api_key, timeout_s=5, offline=self.settings.offline
            )
        except EndpointUnreachable as error:
            return LocalState(None, f"The model endpoint is unreachable. {error}", transient=True)
        if not listed:
            return LocalState(None, f"{base_url} offers no model.", transient=False)
        model = self.settings.model if self.settings.model in listed else listed[0]
        return LocalState(Target(LOCAL, base_url, self.settings.api_key, model))


def describe_runtime(status: RuntimeStatus | None, api_key: str) -> LocalState:  # noqa: PLR0911 (one sentence per state)
    """What the runtime's published status means for the chat."""
    if status is None or status.state is RuntimeState.STARTING:
        return LocalState(None, "The local model runtime is starting…")
    if not process_alive(status.pid) or status.state is RuntimeState.STOPPED:
        return LocalState(None, "The local model runtime is restarting…")
    if status.state is RuntimeState.DOWNLOADING:
        percent = f" {status.progress:.0f} %" if status.progress is not None else ""
        return LocalState(None, f"Downloading the model{percent}: {status.message}")
    if status.state is RuntimeState.LOADING:
        return LocalState(None, f"Loading the model: {status.message}")
    if status.state is RuntimeState.NO_MODEL:
        return LocalState(None, status.message or "No model available.", transient=False)
    if status.state is RuntimeState.FAILED:
        return LocalState(None, f"The local model runtime failed: {status.message}", transient=False)
    if status.base_url is None or status.model_id is None:
        return LocalState(None, "The local model runtime is starting…")
    return LocalState(
        Target(LOCAL, status.base_url, api_key, status.model_id, status.context_length, status.device)
    )


def remote_target(settings: Settings) -> Target | None:
    """The configured remote endpoint, if any (offline mode: none; every answer is computed here)."""
    if not settings.remote_base_url or not settings.remote_model or settings.offline:
        return None
    return Target(REMOTE, settings.remote_base_url, settings.remote_api_key or "none", settings.remote_model)


def classify_task(prompt: str) -> str:
    """The task type of a prompt for rule-based routing: "long", "code" or "chat"."""
    if estimate_tokens(prompt) > LONG_PROMPT_TOKENS:
        return "long"
    if _CODE.search(prompt):
        return "code"
    return "chat"


def plan(settings: Settings, prompt: str, remote_available: bool) -> list[str]:
    """Which targets to try for `prompt`, in order. local-only never names REMOTE."""
    if settings.routing == "local-only" or not remote_available:
        return [LOCAL]
    if settings.routing == "local-first":
        return [LOCAL, REMOTE]
    if classify_task(prompt) in settings.remote_task_list:
        return [REMOTE]
    return [LOCAL]
