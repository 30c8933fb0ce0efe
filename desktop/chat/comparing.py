"""Compare mode: each message answered by the chat's model and by a second one, at the same time,
side by side, each answer measured (`desktop.compare.measure`).

The second model is another model of the runtime (its companion, loaded beside the chat model),
a model of the attached endpoint, or the remote endpoint ("remote"). When memory does not allow
the runtime to hold both, the two answer one after the other, and the chat says why.
"""

from __future__ import annotations

import asyncio
import uuid

import chainlit as cl

from desktop.chat import chainlit_compat
from desktop.chat.answers import (
    WAIT_READY_S,
    Asked,
    NoRoom,
    answer_with,
    could_not_answer,
    not_ready,
    passages_for,
    respond,
    wait_local,
)
from desktop.chat.conversation import ChatBackend, ComparedSide, Conversation, say, step_metadata
from desktop.chat.endpoint import Target
from desktop.chat.streaming import persist
from desktop.compare.sides import (
    CHAT,
    COMPANION,
    REMOTE,
    CompareRefused,
    companion_side,
    companion_target,
    endpoint_side,
    remote_side,
    serves_companion,
)
from desktop.completions import CompletionError, Unreachable
from desktop.runtime.service import RuntimeRequestError
from desktop.runtime.status import CompanionState


async def respond_compared(backend: ChatBackend, conversation: Conversation) -> bool:
    """Answer the newest message with both models; True when the chat's model answered."""
    prompt = conversation.turns[-1]["content"]
    state = await wait_local(backend, WAIT_READY_S)
    if state.target is None:
        await say(not_ready(state))
        return False
    try:
        other, together = await compared_target(backend, conversation.compare_with, state.target)
    except CompareRefused as error:
        await say(f"{error} Answering with {state.target.model} alone.")
        return await respond(backend, conversation)
    asked = Asked(prompt, None, await passages_for(backend, conversation, prompt))
    group = uuid.uuid4().hex
    chat = ComparedSide(group, 0, state.target.model)
    compared = ComparedSide(group, 1, conversation.compare_with)
    if together:
        done = await asyncio.gather(
            answer_side(backend, state.target, conversation, asked, chat),
            answer_side(backend, other, conversation, asked, compared),
        )
        return done[0]
    answered = await answer_side(backend, state.target, conversation, asked, chat)
    try:
        await take_turn(backend, COMPANION)
        await answer_side(backend, other, conversation, asked, compared)
    finally:
        await asyncio.shield(take_turn(backend, CHAT))
    return answered


async def answer_side(
    backend: ChatBackend, target: Target, conversation: Conversation, asked: Asked, side: ComparedSide
) -> bool:
    """One side's answer; a side that cannot answer says why, and the other goes on."""
    try:
        await answer_with(backend, target, conversation, asked, side)
        return True
    except NoRoom:
        problem = f"Your message is too long for {target.model}: shorten it."
    except Unreachable:
        problem = f"The {target.where} model is unreachable ({target.base_url})."
    except CompletionError as error:
        problem = could_not_answer(target.where, error, conversation.max_tokens)
    await say(f"{side.name}: {problem}")
    return False


async def compared_target(backend: ChatBackend, name: str, chat: Target) -> tuple[Target, bool]:
    """Where to ask `name`, and whether it can answer at the same time as the chat's model."""
    if name == REMOTE:
        return remote_side(backend.settings).target, True
    if backend.local.attached:  # a model of the same endpoint: it answers both as it can
        return (await asyncio.to_thread(endpoint_side, backend.settings, name)).target, True
    client = backend.local.client
    status = client.status()
    if serves_companion(status, name):
        assert status is not None
        return companion_target(status, name, chat.api_key), status.companion_state == CompanionState.READY
    notice = await say(f"Loading {name} beside {chat.model}…")
    side, loaded = await asyncio.to_thread(companion_side, client, name, chat.api_key)
    notice.content = loaded.companion_message or f"{name} is loaded."
    await notice.update()
    return side.target, loaded.companion_state == CompanionState.READY


async def take_turn(backend: ChatBackend, which: str) -> None:
    """The two models take turns (memory): load `which` before it answers."""
    try:
        await asyncio.to_thread(backend.local.client.companion_turn, which)
    except (RuntimeRequestError, TimeoutError) as error:
        await say(f"Could not load the {which} model: {error}")


async def mark_better(history: chainlit_compat.DataLayer, answer_id: str, better: bool) -> None:
    """Mark `answer_id` as the better of its pair (`better` False: no mark): both answers of the
    pair are updated, in the page and in the history, where the mark stays with the chat."""
    thread = await history.get_thread(chainlit_compat.current_thread())
    steps = thread["steps"] if thread else []
    marked = next((step for step in steps if step.get("id") == answer_id), None)
    group = step_metadata(marked).get("compare", {}).get("group") if marked else None
    if not group:
        await say("Only an answer of Compare mode can be marked as the better one.")
        return
    for step in steps:
        metadata = step_metadata(step)
        compare = metadata.get("compare")
        if not isinstance(compare, dict) or compare.get("group") != group:
            continue
        metadata["compare"] = {**compare, "better": better and step.get("id") == answer_id}
        message = cl.Message(
            content=step.get("output") or "",
            author=step.get("name"),
            metadata=metadata,
            id=step.get("id"),
            parent_id=step.get("parentId"),
            created_at=step.get("createdAt"),
        )
        await message.update()
        await persist(message)
        await chainlit_compat.show_in_other_tabs(message)
