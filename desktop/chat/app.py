"""The chat's Chainlit handlers: streaming answers, settings (model, temperature, length), history.

`install(backend)` registers the handlers, bound methods of one `Chat` over one `ChatBackend`, so
there is no module-level state. Each browser session keeps its conversation in Chainlit's user session; a
resumed chat rebuilds it from the stored thread.

Answers stream through `streaming.StreamPainter`: the first token at once, then what arrives as
fast as the page paints it (and at most once per `chat_frame_ms`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import chainlit as cl
import openai
from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
from chainlit.input_widget import Select, Slider
from chainlit.types import ThreadDict
from chainlit.utils import utc_now
from openai.types.chat import ChatCompletionMessageParam

from desktop.chat import trimming
from desktop.chat.endpoint import LOCAL, LocalEndpoint, LocalState, Target, plan, remote_target
from desktop.chat.history import conninfo
from desktop.chat.streaming import PaintReports, StreamPainter
from desktop.config import Settings
from desktop.runtime.service import RuntimeRequestError
from desktop.runtime.status import RuntimeState

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 50
"""Requests per answer while fitting it into the context (each drops a turn or shrinks the budget)."""
WAIT_READY_S = 60.0
"""How long a message waits for the local runtime to become ready (starting, restarting)."""
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

    def __init__(
        self, settings: Settings, status_file: Path, database: Path, reports: PaintReports | None = None
    ) -> None:
        self.settings = settings
        self.reports = reports or PaintReports()
        self.local = LocalEndpoint(settings, status_file)
        self.remote = remote_target(settings)
        self.database = database
        self._clients: dict[tuple[str, str], openai.AsyncOpenAI] = {}

    def client(self, target: Target) -> openai.AsyncOpenAI:
        """One client per endpoint, kept: making one costs tens of ms (TLS setup), and its
        connections are reused."""
        key = (target.base_url, target.api_key)
        if key not in self._clients:
            self._clients[key] = openai.AsyncOpenAI(
                base_url=target.base_url, api_key=target.api_key, max_retries=0, timeout=120
            )
        return self._clients[key]


def footer(target: Target) -> str:
    return f"\n\n— *computed {target.label}*"


def strip_footer(text: str) -> str:
    return FOOTER.sub("", text).removesuffix(STOPPED_NOTE)


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


async def stream_answer(
    backend: ChatBackend,
    target: Target,
    messages: list[trimming.Message],
    max_tokens: int,
    temperature: float,
) -> AsyncGenerator[str, None]:
    client = backend.client(target)
    stream = await client.chat.completions.create(
        model=target.model,
        messages=cast("list[ChatCompletionMessageParam]", messages),
        max_tokens=max_tokens,
        temperature=temperature,
        stream=True,
    )
    try:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content
    finally:
        await stream.close()  # closing the connection is what stops the model generating


class NoRoom(Exception):
    """The newest message alone does not fit the model's context."""


async def say(text: str) -> cl.Message:
    """A notice in the chat (not part of the conversation the model sees)."""
    message = cl.Message(content=text, author="Foundry Desk", metadata={"notice": True})
    await message.send()
    return message


async def local_state(backend: ChatBackend) -> LocalState:
    """Hosted: a small file read, done at once (no thread hop before the first token); attached:
    an HTTP request, done off the event loop."""
    if backend.local.attached:
        return await asyncio.to_thread(backend.local.state)
    return backend.local.state()


async def wait_local(backend: ChatBackend, patience_s: float) -> LocalState:
    """The local model's state; while it is on its way (starting, downloading, restarting) show
    that in the chat and wait up to `patience_s` for it."""
    state = await local_state(backend)
    if state.target is not None or not state.transient or patience_s <= 0:
        return state
    notice = await say(state.message)
    deadline = time.monotonic() + patience_s
    while state.target is None and state.transient and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        new = await local_state(backend)
        if new.message != state.message and new.target is None:
            notice.content = new.message
            await notice.update()
        state = new
    if state.target is not None:
        notice.content += "\n\nThe local model is ready again."
        await notice.update()
    return state


async def open_stream(
    backend: ChatBackend, target: Target, conversation: Conversation
) -> tuple[AsyncGenerator[str, None], str, int]:
    """Start an answer that fits the context: the token stream, its first piece, and how many
    earlier messages were left out. Raises NoRoom, or the endpoint's errors."""
    fitted = trimming.fit(
        backend.settings.system_prompt, conversation.turns, target.context_length, conversation.max_tokens
    )
    if not fitted.fits:
        raise NoRoom()
    messages, dropped, max_tokens = fitted.messages, fitted.dropped, fitted.max_tokens
    for _ in range(MAX_ATTEMPTS):
        stream = stream_answer(backend, target, messages, max_tokens, conversation.temperature)
        try:
            return stream, await anext(stream), dropped
        except StopAsyncIteration:
            return stream, "", dropped
        except openai.APIError as error:
            if not trimming.is_context_error(str(error.message)):
                raise
            # Our estimate was off: the endpoint's own count says how much to leave out.
            budget = trimming.parse_budget(str(error.message))
            if budget is not None and budget.answer_room >= trimming.MIN_ANSWER_TOKENS:
                max_tokens = min(max_tokens, budget.answer_room)
                continue
            shorter = trimming.drop_oldest_turn(messages)
            if shorter is None:
                raise NoRoom() from None
            messages, more = shorter
            dropped += more
            if budget is not None:
                max_tokens = max(trimming.MIN_ANSWER_TOKENS, min(max_tokens, budget.context_length // 2))
    raise NoRoom()


async def answer_with(backend: ChatBackend, target: Target, conversation: Conversation) -> tuple[str, bool]:
    """Stream an answer from `target` into a new message; returns its text and whether it ended
    normally. Raises NoRoom, or openai errors raised before the first token."""
    stream, first, dropped = await open_stream(backend, target, conversation)
    first_token = time.time()
    if dropped:
        await say(
            f"This conversation is longer than {target.model} can read at once, so the "
            f"{dropped} oldest message{'s' if dropped != 1 else ''} were left out of this answer."
        )
    message = cl.Message(content="", metadata={"answer": True, "where": target.where})
    # Not sent empty first: its first token shows it (one render, not two), and every write of
    # it to the history is ours, in order (Chainlit writes in background tasks that could race).
    message.created_at = utc_now()
    frame_s = backend.settings.chat_frame_ms / 1000
    painter = StreamPainter(message, cl.context.session.id, frame_s, backend.reports)
    finished = False
    model_done = 0.0
    try:
        async with painter:
            await painter.add(first)
            async for token in stream:
                await painter.add(token)
            model_done = time.time()
        finished = True
    except openai.APIError as error:
        await say(f"The answer was cut short: {error.message}")
    finally:
        with contextlib.suppress(Exception):
            await stream.aclose()  # at once, also when the user pressed Stop (task cancelled)
        text = message.content
        conversation.turns.append({"role": "assistant", "content": text})
        if not finished:
            message.content += STOPPED_NOTE
        message.content += footer(target)
        await asyncio.shield(painter.end(wait_for_paint=finished))
        if model_done:
            log.info(
                "answer %s: %d characters from %s, first token at %.3f, model finished at %.3f, "
                "the page had it all %.1f ms later", message.id, len(text), target.model,
                first_token, model_done, (time.time() - model_done) * 1000,
            )  # fmt: skip
    return text, finished


def install(backend: ChatBackend) -> Chat:
    """Register the chat's handlers with Chainlit: bound methods of one `Chat`."""
    chat = Chat(backend)
    cl.data_layer(chat.history)
    cl.header_auth_callback(chat.local_user)
    cl.on_chat_start(chat.start)
    cl.on_chat_resume(chat.resume)
    cl.on_settings_update(chat.settings_changed)
    cl.on_message(chat.on_message)
    return chat


class Chat:
    """The handlers of the chat, sharing one backend."""

    def __init__(self, backend: ChatBackend) -> None:
        self.backend = backend

    def history(self) -> SQLAlchemyDataLayer:
        return SQLAlchemyDataLayer(conninfo=conninfo(self.backend.database))

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
        await self.send_settings(self.new_conversation())

    async def resume(self, thread: ThreadDict) -> None:
        await self.send_settings(self.new_conversation(turns_from_thread(thread)))

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
            backend.local = LocalEndpoint(backend.settings, backend.local.client.status_file)
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
        conversation = self.conversation()
        conversation.turns.append({"role": "user", "content": message.content})
        text = await self.respond(conversation, message.content)
        if text is None:
            conversation.turns.pop()  # unanswered: the context keeps answered turns only

    async def respond(self, conversation: Conversation, prompt: str) -> str | None:
        """Answer from the first target of the routing plan that can; tell the user if none can."""
        backend = self.backend
        order = plan(backend.settings, prompt, backend.remote is not None)
        problems: list[str] = []
        for where in order:
            fallback_left = where != order[-1]
            target = backend.remote
            if where == LOCAL:
                state = await wait_local(backend, 5.0 if fallback_left else WAIT_READY_S)
                target = state.target
                if target is None:
                    problems.append(not_ready(state))
                    continue
            assert target is not None
            try:
                return await self.answer(target, conversation, retry_local=not fallback_left)
            except NoRoom:
                problems.append(f"Your message is too long for {target.model}: shorten it.")
            except openai.APIConnectionError:
                problems.append(f"The {where} model is unreachable ({target.base_url}).")
            except openai.APIError as error:
                problems.append(f"The {where} model could not answer: {error.message}")
            if fallback_left:
                await say(f"{problems[-1]} Asking the {order[-1]} model instead.")
        await say("\n\n".join(problems[-1:]))
        return None

    async def answer(self, target: Target, conversation: Conversation, retry_local: bool) -> str:
        try:
            text, _ = await answer_with(self.backend, target, conversation)
            return text
        except openai.APIConnectionError as error:
            if target.where != LOCAL or not retry_local:
                raise
            lost = error
        # The runtime went away under us: it is restarting. Say so, and answer once it is back.
        notice = await say("The local model runtime is restarting…")
        deadline = time.monotonic() + WAIT_READY_S
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            state = await local_state(self.backend)
            if state.target is None:
                if state.message != notice.content and not state.transient:
                    break
                continue
            try:
                text, _ = await answer_with(self.backend, state.target, conversation)
            except openai.APIConnectionError as error:
                lost = error
                continue
            notice.content += " It is back."
            await notice.update()
            return text
        raise lost


def not_ready(state: LocalState) -> str:
    if state.transient:
        return f"{state.message} The local model is not ready yet: send your message again in a moment."
    return state.message
