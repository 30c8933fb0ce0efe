"""The chat's Chainlit handlers: sessions, settings (model, temperature, length), history, messages.

`install(backend)` registers the handlers, bound methods of one `Chat` over one `ChatBackend`, so
there is no module-level state. Each browser session keeps its conversation in Chainlit's user session; a
resumed chat rebuilds it from the stored thread.

Answering (the routing, the model's stream, the context's limits) is in `answers`, imported
once a page opens a chat: it needs the OpenAI client, a third of the chat server's imports.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import re
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import chainlit as cl
from chainlit.config import config
from chainlit.input_widget import Select, Slider
from chainlit.types import ThreadDict
from chainlit.utils import wrap_user_function

from desktop.chat import trimming
from desktop.chat.endpoint import LocalEndpoint, Target, remote_target
from desktop.chat.store import ChatStore
from desktop.config import Settings
from desktop.runtime.service import RuntimeClient, RuntimeRequestError
from desktop.runtime.status import RuntimeState

log = logging.getLogger(__name__)

LOCAL_USER = "local"
FOOTER = re.compile(r"\n\n— \*computed [^\n]*\*$")
"""The line under each answer that says where it was computed (stripped from the context)."""
STOPPED_NOTE = " *(stopped)*"


@dataclass
class Conversation:
    """One chat session's state."""

    turns: list[trimming.Message] = field(default_factory=list)
    temperature: float = 0.7
    max_tokens: int = 1024


class ChatBackend:
    """What the handlers need: settings, the local endpoint, the remote one, the history database."""

    def __init__(self, settings: Settings, runtime: RuntimeClient, database: Path) -> None:
        self.settings = settings
        self.history = ChatStore(database)
        self.local = LocalEndpoint(settings, runtime)
        self.remote = remote_target(settings)
        self.clients: dict[tuple[str, str], Any] = {}
        """One OpenAI client per endpoint (see answers.client_for)."""


def footer(target: Target) -> str:
    return f"\n\n— *computed {target.label}*"


def strip_footer(text: str) -> str:
    return FOOTER.sub("", text).removesuffix(STOPPED_NOTE)


def restore_settings(conversation: Conversation, saved: dict[str, Any]) -> None:
    """The temperature and answer length a resumed chat had; a value that does not read keeps
    the default."""
    try:
        conversation.temperature = min(max(float(saved.get("temperature", conversation.temperature)), 0), 2)
        conversation.max_tokens = max(int(saved.get("max_tokens", conversation.max_tokens)), 1)
    except (TypeError, ValueError):
        log.warning("ignoring a resumed chat's unreadable settings: %r", saved)


def step_metadata(step: Any) -> dict[str, Any]:
    """A stored step's metadata: SQLite gives it back as JSON text, other databases as a dict."""
    metadata = step.get("metadata") or {}
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return {}
    return metadata if isinstance(metadata, dict) else {}


def turns_from_thread(thread: ThreadDict) -> list[trimming.Message]:
    """The conversation of a stored thread, as chat messages (notices and footers left out)."""
    turns: list[trimming.Message] = []
    for step in sorted(thread.get("steps", []), key=lambda s: s.get("createdAt") or ""):
        text = step.get("output") or ""
        if step.get("type") == "user_message":
            turns.append({"role": "user", "content": text})
        elif step.get("type") == "assistant_message" and step_metadata(step).get("answer"):
            turns.append({"role": "assistant", "content": strip_footer(text)})
    return turns


async def say(text: str) -> cl.Message:
    """A notice in the chat (not part of the conversation the model sees)."""
    message = cl.Message(content=text, author="Foundry Desk", metadata={"notice": True})
    await message.send()
    return message


def install(backend: ChatBackend) -> Chat:
    """Register the chat's handlers with Chainlit: bound methods of one `Chat`."""
    chat = Chat(backend)
    cl.data_layer(chat.history)
    cl.header_auth_callback(chat.local_user)
    cl.on_chat_start(chat.start)
    cl.on_chat_resume(chat.resume)
    cl.on_settings_update(chat.settings_changed)
    # Not `cl.on_message`, which wraps each answer in a "run" step: one more message to the page
    # and one more write to the history before the model is asked (about 4 ms of the first
    # words' delay); this page shows no runs.
    config.code.on_message = wrap_user_function(chat.on_message)
    return chat


class Chat:
    """The handlers of the chat, sharing one backend."""

    def __init__(self, backend: ChatBackend) -> None:
        self.backend = backend
        self._preparing = False

    def history(self) -> ChatStore:
        return self.backend.history

    async def local_user(self, headers: Any) -> cl.User:
        """A desktop app on 127.0.0.1 has one user, signed in without a login screen."""
        return cl.User(identifier=LOCAL_USER, metadata={"role": "owner", "provider": "local"})

    def new_conversation(self, turns: list[trimming.Message] | None = None) -> Conversation:
        settings = self.backend.settings
        conversation = Conversation(turns or [], settings.temperature, settings.max_tokens)
        cl.user_session.set("conversation", conversation)
        return conversation

    def conversation(self) -> Conversation:
        conversation = cl.user_session.get("conversation")
        return conversation if isinstance(conversation, Conversation) else self.new_conversation()

    async def start(self) -> None:
        self.prepare_answering()
        await self.send_settings(self.new_conversation())

    async def resume(self, thread: ThreadDict) -> None:
        self.prepare_answering()
        conversation = self.new_conversation(turns_from_thread(thread))
        # Chainlit keeps a chat's settings with it and restores them before this handler runs.
        restore_settings(conversation, cl.context.session.chat_settings or {})
        await self.send_settings(conversation)

    def prepare_answering(self) -> None:
        """Import `answers`, and what its first answer needs, in the background once a page has
        opened a chat: a user takes longer to type a message than this takes, and before, it
        would slow the page down (a third of the chat server's start, on a 2-core laptop)."""
        if not self._preparing:
            self._preparing = True
            threading.Thread(target=self._prepare_answers, daemon=True).start()

    def _prepare_answers(self) -> None:
        importlib.import_module("desktop.chat.answers").warm_up(self.backend)

    async def send_settings(self, conversation: Conversation) -> None:
        models, current = await asyncio.to_thread(self.backend.local.models)
        items = {(f"{m} (current)" if m == current else m): m for m in models}
        widgets: list[Any] = []
        if items:
            widgets.append(Select(id="model", label="Model", items=items, initial_value=current or models[0]))
        widgets += [
            Slider(
                id="temperature",
                label="Temperature",
                initial=conversation.temperature,
                min=0,
                max=2,
                step=0.1,
            ),
            Slider(
                id="max_tokens",
                label="Max tokens",
                initial=conversation.max_tokens,
                min=16,
                max=8192,
                step=16,
            ),
        ]
        await cl.ChatSettings(widgets).send()

    async def settings_changed(self, values: dict[str, Any]) -> None:
        conversation = self.conversation()
        conversation.temperature = float(values.get("temperature", conversation.temperature))
        conversation.max_tokens = int(values.get("max_tokens", conversation.max_tokens))
        model = values.get("model")
        _, current = await asyncio.to_thread(self.backend.local.models)
        if model and model != current:
            await self.switch_model(str(model), conversation)

    async def switch_model(self, model: str, conversation: Conversation) -> None:
        backend = self.backend
        if backend.local.attached:
            backend.settings = replace(backend.settings, model=model)
            backend.local = LocalEndpoint(backend.settings, backend.local.client)
            await say(f"Now using {model}.")
            return
        notice = await say(f"Switching to {model}…")
        try:
            status = await asyncio.to_thread(backend.local.client.select, model, 600.0)
        except (RuntimeRequestError, TimeoutError) as error:
            notice.content = f"Could not switch to {model}: {error}"
        else:
            if status.state is RuntimeState.READY:
                notice.content = f"Now using {status.model_id}."
            else:
                notice.content = f"Could not switch to {model}: {status.message}"
        await notice.update()
        await self.send_settings(conversation)

    async def on_message(self, message: cl.Message) -> None:
        if len(message.content) > trimming.MAX_MESSAGE_CHARS:  # our page sends none this long
            self.backend.history.first_words_sent(message.thread_id)  # none will come
            await say(
                f"Your message is {len(message.content):,} characters long; the chat takes at most "
                f"{trimming.MAX_MESSAGE_CHARS:,}. Shorten it, or send it in parts."
            )
            return
        conversation = self.conversation()
        conversation.turns.append({"role": "user", "content": message.content})
        from desktop.chat import answers  # imported after start, off the page's way (server.py)

        try:
            text = await answers.respond(self.backend, conversation, message.content)
        finally:  # no first words (no model, an error, Stop): the chat's writes need not wait
            self.backend.history.first_words_sent(message.thread_id)
        if text is None:
            conversation.turns.pop()  # unanswered: the context keeps answered turns only
