"""The two models of a comparison, each as an endpoint to ask: the runtime's chat model, a
second model the runtime loads beside it (its companion), or the configured remote endpoint.

The runtime holds both models when memory allows; then they answer at the same time. When it
does not, the runtime says so and the two take turns: the runtime loads one, then the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from desktop.chat.endpoint import LOCAL, Target, remote_target
from desktop.config import Settings
from desktop.errors import FoundryDeskError
from desktop.runtime.attach import EndpointUnreachable, list_endpoint_models
from desktop.runtime.host import byo_model_id
from desktop.runtime.service import RuntimeClient, RuntimeRequestError
from desktop.runtime.status import CompanionState, RuntimeState, RuntimeStatus

REMOTE = "remote"
"""The name that stands for the configured remote endpoint (`remote_base_url`, `remote_model`)."""
COMPANION = "companion"
CHAT = "chat"
LOADED = (CompanionState.READY, CompanionState.ONE_AT_A_TIME)
"""The companion's states in which it can be asked (together with the chat model, or in turns)."""


class CompareRefused(FoundryDeskError, ValueError):
    """A model of the comparison cannot be asked; the message says why and what to do."""


@dataclass(frozen=True)
class Side:
    """One model of the comparison, as the user named it, and where to ask it."""

    name: str
    target: Target
    companion: bool = False
    """Served as the runtime's companion model (in turns, its turn must come first)."""


@dataclass(frozen=True)
class Pair:
    """The two sides, in the user's order, and whether they can answer at the same time."""

    sides: tuple[Side, Side]
    turns: RuntimeClient | None = None
    """Set when the two cannot be loaded together: the runtime that loads one, then the other."""
    note: str = ""
    """Why they answer one after the other, for the user."""

    @property
    def together(self) -> bool:
        return self.turns is None

    def give_turn(self, side: Side | None) -> None:
        """When the two take turns: load `side`'s model (None: the chat model, as before the
        comparison). Blocking: a model load."""
        if self.turns is not None:
            self.turns.companion_turn(COMPANION if side is not None and side.companion else CHAT)


def is_remote(name: str) -> bool:
    return name == REMOTE


def serves(status: RuntimeStatus | None, name: str) -> bool:
    """Whether the runtime's chat model is the model `name` (an alias, an id or a folder)."""
    if status is None or status.state is not RuntimeState.READY:
        return False
    return _names(name, status.model_id, status.model_alias)


def serves_companion(status: RuntimeStatus | None, name: str) -> bool:
    """Whether the runtime holds `name` as its companion model (loaded, or taking turns)."""
    if status is None or status.companion_state not in LOADED:
        return False
    return _names(name, status.companion_model_id, status.companion_alias)


def _names(name: str, model_id: str | None, alias: str | None) -> bool:
    if model_id is None:
        return False
    folder = Path(name).expanduser()
    if folder.is_dir():
        return byo_model_id(folder) == model_id
    return name in (model_id, alias)


def chat_side(name: str, status: RuntimeStatus, api_key: str) -> Side:
    """The runtime's chat model (`serves(status, name)` holds)."""
    assert status.base_url is not None and status.model_id is not None
    target = Target(LOCAL, status.base_url, api_key, status.model_id, status.context_length, status.device)
    return Side(name, target)


def remote_side(settings: Settings) -> Side:
    target = remote_target(settings)
    if target is None:
        why = (
            "offline mode is on"
            if settings.offline and settings.remote_base_url
            else "no remote endpoint is configured (REMOTE_BASE_URL and REMOTE_MODEL)"
        )
        raise CompareRefused(f"Cannot compare with the remote model: {why}.")
    return Side(REMOTE, target)


def endpoint_side(settings: Settings, name: str) -> Side:
    """A model of the endpoint the app attaches to (`base_url`), which serves it as it can."""
    if is_remote(name):
        return remote_side(settings)
    assert settings.base_url is not None
    try:
        listed = list_endpoint_models(settings.base_url, settings.api_key, offline=settings.offline)
    except EndpointUnreachable as error:
        raise CompareRefused(f"{settings.base_url} is unreachable: {error}") from None
    if name not in listed:
        offered = ", ".join(listed) or "none"
        raise CompareRefused(f"{settings.base_url} does not offer {name} (it offers: {offered}).")
    return Side(name, Target(LOCAL, settings.base_url, settings.api_key, name))


def companion_side(client: RuntimeClient, name: str, api_key: str) -> tuple[Side, RuntimeStatus]:
    """Load `name` beside the runtime's chat model (no download: only a model that is here)."""
    try:
        status = client.load_companion(name)
    except RuntimeRequestError as error:
        raise CompareRefused(f"Cannot compare with {name}: {error}") from None
    except TimeoutError:
        raise CompareRefused(f"Cannot compare with {name}: the runtime did not load it in time.") from None
    return Side(name, companion_target(status, name, api_key), companion=True), status


def companion_target(status: RuntimeStatus | None, name: str, api_key: str) -> Target:
    """Where the runtime serves its companion model `name`; refused when it does not."""
    if status is None or status.companion_state not in LOADED or not status.companion_base_url:
        reason = status.companion_message if status is not None else "the model runtime is not running"
        raise CompareRefused(f"Cannot compare with {name}: {reason or 'it did not load'}.")
    assert status.companion_model_id is not None
    return Target(
        LOCAL,
        status.companion_base_url,
        api_key,
        status.companion_model_id,
        status.companion_context_length,
        status.companion_device,
    )


def pair_up(names: tuple[str, str], settings: Settings, client: RuntimeClient | None) -> Pair:
    """The two sides of `names`: "remote", or models the runtime behind `client` serves (one of
    them must be its chat model when both are local; the other is loaded as its companion)."""
    if settings.base_url:
        return Pair((endpoint_side(settings, names[0]), endpoint_side(settings, names[1])))
    sides: list[Side | None] = [remote_side(settings) if is_remote(name) else None for name in names]
    local = [index for index, name in enumerate(names) if not is_remote(name)]
    status = client.status() if client is not None and local else None
    if local and (client is None or status is None):
        raise CompareRefused("The model runtime is not running.")
    served = next((index for index in local if serves(status, names[index])), None)
    if status is not None and served is None:
        raise CompareRefused(
            f"The runtime serves {status.model_alias or status.model_id or 'no model'}: one of the models "
            "compared must be that one."
        )
    turns, note = None, ""
    if served is not None:
        assert client is not None and status is not None
        sides[served] = chat_side(names[served], status, settings.api_key)
        other = next((index for index in local if index != served), None)
        if other is not None:
            sides[other], loaded = companion_side(client, names[other], settings.api_key)
            if loaded.companion_state == CompanionState.ONE_AT_A_TIME:
                turns, note = client, loaded.companion_message
    first, second = sides
    assert first is not None and second is not None
    return Pair((first, second), turns, note)
