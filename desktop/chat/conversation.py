"""What a chat is made of, shared by its handlers (`app`) and its answers (`answers`): the
conversation, how an answer ended, the backend the handlers share, the footer under each answer,
and the chat's notices.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import chainlit as cl

from desktop.chat import trimming
from desktop.chat.endpoint import LocalEndpoint, Target, remote_target
from desktop.chat.store import ChatStore
from desktop.config import Settings
from desktop.documents.library import FileLibrary
from desktop.runtime.service import RuntimeClient

if TYPE_CHECKING:  # its type only: the measuring comes with the answers (`answers`), imported later
    from desktop.compare.measure import Run

FOOTER = re.compile(r"\n\n— \*computed [^\n]*\*$")
"""The line under each answer that says where it was computed (stripped from the context)."""


ENDING_SAID = {"stopped": "stopped", "cut": "cut off at Max tokens", "interrupted": "interrupted"}
"""The note at the end of an answer that did not end by itself (resources/…/conversation.mjs)."""


class Ending(enum.Enum):
    """How an answer ended; the page shows it, and offers Retry or Continue after the newest."""

    DONE = "done"
    STOPPED = "stopped"
    """The user pressed Stop (or deleted the chat)."""
    CUT = "cut"
    """The model reached the answer length (Max tokens): Continue."""
    INTERRUPTED = "interrupted"
    """The connection to the model was lost (its runtime stopped): Retry."""
    FAILED = "failed"
    """The model sent an error partway."""

    @property
    def note(self) -> str:
        """What the answer's text ends with (the page and a copy of the history show it)."""
        said = ENDING_SAID.get(self.value)
        return f" *({said})*" if said else ""

    @classmethod
    def read(cls, stored: object) -> Ending:
        """How a stored answer ended; one from before endings were kept (or unreadable): done."""
        try:
            return cls(stored)
        except ValueError:
            return cls.DONE

    @property
    def offers(self) -> str | None:
        """The action the page offers under the newest answer that ended so (conversation.mjs)."""
        return {"cut": "continue", "interrupted": "retry", "failed": "retry"}.get(self.value)


ENDING_NOTES = tuple(ending.note for ending in Ending if ending.note)


@dataclass
class Conversation:
    """One chat's state, shared by the sessions that show it."""

    turns: list[trimming.Message] = field(default_factory=list)
    temperature: float = 0.7
    max_tokens: int = 1024
    last_answer: str | None = None
    """The id of the newest answer's message, the only one Retry and Continue act on."""
    last_ending: Ending = Ending.DONE
    pending_model: str | None = None
    """A model chosen while an answer was running: switched to once it ends."""
    use_files: bool = False
    """"Use my files": the passages of the user's files that match a question go before it."""
    compare_with: str = ""
    """Compare mode: the model (or "remote") that answers each message beside the chat's model;
    empty: off."""


@dataclass(frozen=True)
class ComparedSide:
    """One of the two answers to a message in Compare mode (`desktop.chat.comparing`)."""

    group: str
    """Shared by the two answers of one message."""
    index: int
    """0: the chat's own model, whose answer the conversation keeps; 1: the one compared with."""
    name: str
    """The model as the user chose it."""

    def numbers(self, target: Target, run: Run | None = None) -> dict[str, Any]:
        """What the answer's metadata says of it (the page draws it side by side, with its
        numbers once `run` ended, and the chart of the chat's runs)."""
        return {
            "group": self.group,
            "side": self.index,
            "model": self.name,
            "where": target.where,
            "label": target.place,
            "ttft_ms": run.ttft_ms if run else None,
            "tokens_per_s": run.tokens_per_s if run else None,
            "output_tokens": run.output_tokens if run else None,
            "total_ms": run.total_ms if run else None,
            "better": False,
        }


class ChatBackend:
    """What the handlers need: settings, the local endpoint, the remote one, the history database,
    the user's files."""

    def __init__(
        self, settings: Settings, runtime: RuntimeClient, database: Path, files: FileLibrary | None = None
    ) -> None:
        self.settings = settings
        self.files = files
        """The index of the user's files ("Use my files"); None: the chat has none."""
        self.history = ChatStore(database)
        self.local = LocalEndpoint(settings, runtime)
        self.remote = remote_target(settings)
        self.clients: dict[tuple[str, str], Any] = {}
        """One OpenAI client per endpoint (see answers.client_for)."""


def footer(target: Target) -> str:
    """The line under an answer that says where it was computed."""
    return f"\n\n— *computed {target.label}*"


def strip_footer(text: str) -> str:
    """An answer's text as the model gave it: without its footer, nor the note of how it ended."""
    text = FOOTER.sub("", text)
    for note in ENDING_NOTES:
        text = text.removesuffix(note)
    return text


def step_metadata(step: Any) -> dict[str, Any]:
    """A stored step's metadata: SQLite gives it back as JSON text, other databases as a dict."""
    metadata = step.get("metadata") or {}
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return {}
    return metadata if isinstance(metadata, dict) else {}


async def say(text: str) -> cl.Message:
    """A notice in the chat (not part of the conversation the model sees)."""
    message = cl.Message(content=text, author="Foundry Desk", metadata={"notice": True})
    await message.send()  # type: ignore[no-untyped-call]  # Chainlit leaves it unannotated
    return message
