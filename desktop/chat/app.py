"""The chat's Chainlit handlers: sessions, settings (model, temperature, length), history, messages.

`install(backend)` registers the handlers, bound methods of one `Chat` over one `ChatBackend`, so
there is no module-level state. Each browser session keeps its conversation in Chainlit's user
session; sessions showing the same chat (two tabs on it) share one, and a resumed chat rebuilds it
from the stored thread. Retry and Continue are Chainlit actions the page calls on the newest answer.

Answering (the routing, the model's stream, the context's limits) is in `answers`, imported
once a page opens a chat: it needs the OpenAI client, a third of the chat server's imports. What
both use (a chat's conversation, how an answer ended, notices) is in `conversation`; what they need
of Chainlit beyond its documented API, in `chainlit_compat`.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
import weakref
from dataclasses import replace
from typing import Any

import chainlit as cl
from chainlit.input_widget import Select, Slider, Switch
from chainlit.types import ThreadDict

from desktop.chat import chainlit_compat, trimming
from desktop.chat.conversation import ChatBackend, Conversation, Ending, say, step_metadata, strip_footer
from desktop.chat.endpoint import LocalEndpoint
from desktop.runtime.service import RuntimeRequestError
from desktop.runtime.status import RuntimeState

log = logging.getLogger(__name__)

LOCAL_USER = "local"
MAX_TOKENS_RANGE = (16, 8192)
"""The settings' slider for the answer length."""


def restore_settings(conversation: Conversation, saved: dict[str, Any]) -> None:
    """The temperature and answer length of a resumed chat, or chosen in the settings; a value
    that does not read keeps what it was."""
    try:
        conversation.temperature = min(max(float(saved.get("temperature", conversation.temperature)), 0), 2)
        low, high = MAX_TOKENS_RANGE
        conversation.max_tokens = min(max(int(saved.get("max_tokens", conversation.max_tokens)), low), high)
        conversation.use_files = bool(saved.get("use_files", conversation.use_files))
        conversation.compare_with = str(saved.get("compare_with", conversation.compare_with) or "")
    except (TypeError, ValueError, OverflowError):
        log.warning("ignoring unreadable chat settings: %r", saved)


def conversation_from_thread(thread: ThreadDict) -> Conversation:
    """The conversation of a stored thread (notices and footers left out; a continued answer
    joined to the answer it continues), and its newest answer."""
    conversation = Conversation()
    turns = conversation.turns
    for step in sorted(thread.get("steps", []), key=lambda s: s.get("createdAt") or ""):
        text = step.get("output") or ""
        metadata = step_metadata(step)
        if step.get("type") == "user_message":
            turns.append({"role": "user", "content": text})
        elif step.get("type") == "assistant_message" and metadata.get("answer"):
            if compared_with(metadata):
                continue  # the conversation goes on with the chat model's answers
            if metadata.get("continues") and turns and turns[-1]["role"] == "assistant":
                turns[-1]["content"] += strip_footer(text)
            else:
                turns.append({"role": "assistant", "content": strip_footer(text)})
            conversation.last_answer = step.get("id")
            conversation.last_ending = Ending.read(metadata.get("ending"))
    return conversation


def compared_with(metadata: dict[str, Any]) -> bool:
    """An answer of Compare mode from the model compared with (not the chat's own model)."""
    compare = metadata.get("compare")
    return isinstance(compare, dict) and compare.get("side") == 1


def compare_choice(models: list[str], current: str | None, remote: str | None, chosen: str) -> Select:
    """The setting "Compare with": off, another model of the runtime, or the remote model."""
    items = {"Off": ""}
    items.update({model: model for model in models if model != current})
    if remote:
        items[f"remote: {remote}"] = "remote"
    return Select(
        id="compare_with",
        label="Compare with",
        items=items,
        initial_value=chosen if chosen in items.values() else "",
        description="Each message is answered by both models at once, side by side, measured.",
    )


def install(backend: ChatBackend) -> Chat:
    """Register the chat's handlers with Chainlit: bound methods of one `Chat`."""
    chat = Chat(backend)
    cl.data_layer(chat.history)
    cl.header_auth_callback(chat.local_user)
    chainlit_compat.install_handlers(
        on_message=chat.on_message,
        on_chat_start=chat.start,
        on_chat_resume=chat.resume,
        on_settings_update=chat.settings_changed,
    )
    cl.action_callback("retry")(chat.retry)
    cl.action_callback("continue")(chat.continue_answer)
    cl.action_callback("mark_better")(chat.mark_better)
    backend.history.on_delete = chat.thread_deleted
    return chat


class Chat:
    """The handlers of the chat, sharing one backend."""

    def __init__(self, backend: ChatBackend) -> None:
        self.backend = backend
        self._preparing = False
        self._by_thread: weakref.WeakValueDictionary[str, Conversation] = weakref.WeakValueDictionary()
        """The conversation of each chat open in a session: a second tab on it shares it."""

    def history(self) -> chainlit_compat.DataLayer:
        """The data layer Chainlit keeps the history in."""
        return self.backend.history.layer

    async def local_user(self, headers: Any) -> cl.User:
        """A desktop app on 127.0.0.1 has one user, signed in without a login screen."""
        return cl.User(identifier=LOCAL_USER, metadata={"role": "owner", "provider": "local"})

    def use(self, conversation: Conversation) -> Conversation:
        """Make `conversation` this session's, and its chat's for other sessions on it."""
        cl.user_session.set("conversation", conversation)
        self._by_thread[chainlit_compat.current_thread()] = conversation
        return conversation

    def conversation(self) -> Conversation:
        """This session's conversation; a message that comes before the chat's start has run
        makes it (and the start keeps it)."""
        conversation = cl.user_session.get("conversation")
        if isinstance(conversation, Conversation):
            return conversation
        settings = self.backend.settings
        return self.use(Conversation(temperature=settings.temperature, max_tokens=settings.max_tokens))

    async def start(self) -> None:
        self.prepare_answering()
        await self.send_settings(self.conversation())

    async def resume(self, thread: ThreadDict) -> None:
        self.prepare_answering()
        conversation = self._by_thread.get(str(thread["id"]))
        if conversation is None:  # not open in another tab: as stored
            conversation = conversation_from_thread(thread)
            # Chainlit keeps a chat's settings with it and restores them before this handler runs.
            restore_settings(conversation, chainlit_compat.saved_chat_settings())
        await self.send_settings(self.use(conversation))

    def prepare_answering(self) -> None:
        """Import `answers`, and the HTTP client its answers are read with, in the background once
        a page has opened a chat: a user takes longer to type a message than this takes, and
        before, it would slow the page down."""
        if not self._preparing:
            self._preparing = True
            threading.Thread(target=self._prepare_answers, daemon=True).start()

    def _prepare_answers(self) -> None:
        importlib.import_module("desktop.chat.answers")

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
                min=MAX_TOKENS_RANGE[0],
                max=MAX_TOKENS_RANGE[1],
                step=16,
            ),
        ]
        if len(models) > 1 or self.backend.remote is not None or conversation.compare_with:
            remote = self.backend.remote.model if self.backend.remote is not None else None
            widgets.append(compare_choice(models, current, remote, conversation.compare_with))
        if self.backend.files is not None:
            widgets.append(
                Switch(
                    id="use_files",
                    label="Use my files",
                    initial=conversation.use_files,
                    description="Answer from the passages of your indexed files that match each question.",
                )
            )
        await cl.ChatSettings(widgets).send()

    async def settings_changed(self, values: dict[str, Any]) -> None:
        """New settings apply from the next answer; a running answer goes on as it was, with the
        model it was started with (a switch waits for it to end)."""
        conversation = self.conversation()
        restore_settings(conversation, values)
        await chainlit_compat.keep_chat_settings()
        model = values.get("model")
        _, current = await asyncio.to_thread(self.backend.local.models)
        if not model or model == current:
            conversation.pending_model = None
        elif chainlit_compat.answer_running():
            conversation.pending_model = str(model)
            await say(f"Switching to {model} once this answer is done.")
        else:
            await self.switch_model(str(model), conversation)

    async def after_answer(self, conversation: Conversation) -> None:
        if conversation.pending_model:
            model, conversation.pending_model = conversation.pending_model, None
            await self.switch_model(model, conversation)

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
        refusal = trimming.refusal(message.content)
        if refusal:  # our page sends none of these
            self.backend.history.first_words_sent(message.thread_id)  # no answer will come
            await say(refusal)
            return
        await chainlit_compat.show_in_other_tabs(message)
        conversation = self.conversation()
        first = not conversation.turns  # this message stores the chat
        conversation.turns.append({"role": "user", "content": message.content})
        from desktop.chat import answers  # imported after start, off the page's way (server.py)

        try:
            if conversation.compare_with:
                from desktop.chat import comparing

                answered = await comparing.respond_compared(self.backend, conversation)
            else:
                answered = await answers.respond(self.backend, conversation)
        finally:  # no first words (no model, an error, Stop): the chat's writes need not wait
            self.backend.history.first_words_sent(message.thread_id)
            await asyncio.shield(self.after_answer(conversation))  # also after Stop
            if first:  # its settings go with it now (later changes are kept as they are made)
                await asyncio.shield(chainlit_compat.keep_chat_settings())
        if not answered:
            conversation.turns.pop()  # unanswered: the context keeps answered turns only

    async def retry(self, action: cl.Action) -> None:
        """Ask again for the newest answer, which the model's runtime left unfinished."""
        await self.act_on_newest(action, "retry")

    async def continue_answer(self, action: cl.Action) -> None:
        """Go on with the newest answer, which stopped at the answer length."""
        await self.act_on_newest(action, "continue")

    async def mark_better(self, action: cl.Action) -> None:
        """Compare mode: the user marks which of two answers was better (or clears the mark)."""
        from desktop.chat import comparing

        better = bool((action.payload or {}).get("better", True))
        await comparing.mark_better(self.history(), action.forId or "", better)

    async def act_on_newest(self, action: cl.Action, what: str) -> None:
        conversation = self.conversation()
        if chainlit_compat.answer_running():
            await say("An answer is on its way: stop it first.")
            return
        if action.forId is None or action.forId != conversation.last_answer:
            await say(f"Only the newest answer can be {'retried' if what == 'retry' else 'continued'}.")
            return
        if conversation.last_ending.offers != what:
            await say(f"This answer ended {conversation.last_ending.value}: there is nothing to {what}.")
            return
        from desktop.chat import answers

        async def work() -> None:
            try:
                if what == "retry":
                    await answers.retry(self.backend, conversation, action.forId or "")
                else:
                    await answers.go_on(self.backend, conversation)
            finally:
                await asyncio.shield(self.after_answer(conversation))

        chainlit_compat.run_answer(work())

    async def thread_deleted(self, thread_id: str) -> None:
        """A chat is being deleted: its answers stop first, so none of it is saved again, and a
        tab still showing it moves to a new chat (what it sent there would not be kept)."""
        await chainlit_compat.stop_answers(thread_id, timeout_s=10.0)
        await chainlit_compat.turn_away(thread_id, "it was deleted")
