"""Answering a message: the routing plan, the model's stream into the page, the context's limits.

Imported in the background once a page opens a chat (`Chat.prepare_answering`): the OpenAI
client it needs is a third of the chat server's imports, and the page does not need it to appear.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace

import chainlit as cl

from desktop.chat import chainlit_compat, grounding, trimming
from desktop.chat.conversation import ChatBackend, ComparedSide, Conversation, Ending, footer, say
from desktop.chat.endpoint import LOCAL, LocalState, Target, plan
from desktop.chat.grounding import Grounding
from desktop.chat.streaming import AnswerStream
from desktop.compare.measure import Timing
from desktop.completions import CompletionError, Completions, Refused, StreamEnd, Unreachable
from desktop.documents.embeddings import EmbeddingEndpoint
from desktop.documents.index import Hit

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 50
"""Requests per answer while fitting it into the context (each drops a turn or shrinks the budget)."""
WAIT_READY_S = 60.0
"""How long a message waits for the local runtime to become ready (starting, restarting)."""
CONTINUE_PROMPT = "Continue your last answer exactly where it stopped, without repeating any of it."
"""The request behind Continue (not shown, not stored)."""


async def respond(
    backend: ChatBackend, conversation: Conversation, extra: trimming.Message | None = None
) -> bool:
    """Answer the conversation's newest message from the first target of the routing plan that
    can; tell the user if none can. `extra`: a message sent after the conversation, not kept."""
    # Routed by the user's newest message (Continue asks on behalf of the answer after it).
    prompt = next((turn["content"] for turn in reversed(conversation.turns) if turn["role"] == "user"), "")
    order = plan(backend.settings, prompt, backend.remote is not None)
    # Continue goes on with an answer: the passages were before its question already.
    asked = Asked(prompt, extra, None if extra else await passages_for(backend, conversation, prompt))
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
            await answer(backend, target, conversation, asked, retry_local=not fallback_left)
            return True
        except NoRoom:
            problems.append(f"Your message is too long for {target.model}: shorten it.")
        except Unreachable:
            problems.append(f"The {where} model is unreachable ({target.base_url}).")
        except CompletionError as error:
            problems.append(could_not_answer(where, error, conversation.max_tokens))
        if fallback_left:
            await say(f"{problems[-1]} Asking the {order[-1]} model instead.")
    await say("\n\n".join(problems[-1:]))
    return False


def could_not_answer(where: str, error: CompletionError, max_tokens: int) -> str:
    """What the endpoint said when it refused, and what may help."""
    said = f" (HTTP {error.status})" if error.status else ""
    return (
        f"The {where} model could not answer{said}: {error.message}\n\nIf it says the same for every "
        f"message, change Max tokens (now {max_tokens}) in the chat's ⚙ settings, or choose another model."
    )


async def retry(backend: ChatBackend, conversation: Conversation, answer_id: str) -> None:
    """Ask again, in place of the newest answer (left unfinished): it goes, and a new one comes."""
    if conversation.turns and conversation.turns[-1]["role"] == "assistant":
        conversation.turns.pop()
    await cl.Message(content="", id=answer_id).remove()
    await respond(backend, conversation)


async def go_on(backend: ChatBackend, conversation: Conversation) -> None:
    """Continue the newest answer (cut at the answer length) in a new message after it."""
    await respond(backend, conversation, extra={"role": "user", "content": CONTINUE_PROMPT})


async def answer(
    backend: ChatBackend,
    target: Target,
    conversation: Conversation,
    asked: Asked,
    retry_local: bool,
) -> None:
    try:
        await answer_with(backend, target, conversation, asked)
        return
    except Unreachable as error:
        if target.where != LOCAL or not retry_local:
            raise
        lost = error
    # The runtime went away under us: it is restarting. Say so, and answer once it is back.
    notice = await say("The local model runtime is restarting…")
    deadline = time.monotonic() + WAIT_READY_S
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        state = await local_state(backend)
        if state.target is None:
            if state.message != notice.content and not state.transient:
                break
            continue
        try:
            await answer_with(backend, state.target, conversation, asked)
        except Unreachable as error:
            lost = error
            continue
        notice.content += " It is back."
        await notice.update()
        return
    raise lost


def not_ready(state: LocalState) -> str:
    if state.transient:
        return f"{state.message} The local model is not ready yet: send your message again in a moment."
    return state.message


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


@dataclass(frozen=True)
class Asked:
    """What a request asks besides the conversation: a message after it (Continue), and the
    passages of the user's files found for the question (None: "Use my files" is off)."""

    question: str = ""
    extra: trimming.Message | None = None
    passages: list[Hit] | None = None
    grounding: Grounding | None = None
    """The passages that fit the model's context, set per target (`for_target`)."""

    async def for_target(self, target: Target, max_tokens: int) -> Asked:
        """The passages go to a model on this computer only: a remote one is asked without them."""
        if not self.passages:
            return self
        if not grounding.may_receive_files(target):
            await say(f"Your files stay on this computer: {target.model} is asked without them.")
            return replace(self, passages=None)
        budget = grounding.source_budget(target.context_length, max_tokens)
        return replace(self, grounding=grounding.ground(self.question, self.passages, budget))


async def passages_for(backend: ChatBackend, conversation: Conversation, question: str) -> list[Hit] | None:
    """The passages of the user's files that match `question`, when the chat uses them."""
    if not conversation.use_files or backend.files is None:
        return None
    # By meaning too when the runtime serves an embedding model (the hosted one; not an attached endpoint).
    status = None if backend.local.attached else backend.local.client.status()
    endpoint = EmbeddingEndpoint.of(status)
    hits = await asyncio.to_thread(backend.files.search, question, grounding.SEARCHED, endpoint)
    indexing = backend.files.indexing()
    if indexing is not None and indexing.busy and indexing.state == "indexing":
        await say(
            f"Your files are being indexed ({indexing.done:,} of {indexing.total:,}): "
            "this answer uses those read so far."
        )
    if not hits:
        if not await asyncio.to_thread(backend.files.sources):
            await say("No folder of yours is indexed yet: add one under **Your files**, then ask again.")
        else:
            await say("Nothing in your files matches this question: answering without them.")
    return hits


class NoRoom(Exception):
    """The newest message alone does not fit the model's context."""


def client_for(backend: ChatBackend, target: Target) -> Completions:
    """One client per endpoint, kept: its connections are reused."""
    key = (target.base_url, target.api_key)
    client: Completions | None = backend.clients.get(key)
    if client is None:
        client = Completions(target.base_url, target.api_key)
        backend.clients[key] = client
    return client


def stream_answer(
    backend: ChatBackend,
    target: Target,
    messages: list[trimming.Message],
    max_tokens: int,
    temperature: float,
    *,
    end: StreamEnd,
    count_usage: bool = False,
) -> AsyncGenerator[str, None]:
    return client_for(backend, target).stream(
        target.model,
        messages,
        max_tokens=max_tokens,
        temperature=temperature,
        end=end,
        count_usage=count_usage,
    )


async def open_stream(
    backend: ChatBackend,
    target: Target,
    conversation: Conversation,
    asked: Asked,
    *,
    end: StreamEnd,
    count_usage: bool = False,
) -> tuple[AsyncGenerator[str, None], str, int]:
    """Start an answer that fits the context: the token stream, its first piece, and how many
    earlier messages were left out. Raises NoRoom, or the endpoint's errors."""
    turns = [*conversation.turns, asked.extra] if asked.extra else conversation.turns
    if asked.grounding is not None:
        turns = grounding.with_question(turns, asked.grounding.prompt)
    fitted = trimming.fit(
        backend.settings.system_prompt, turns, target.context_length, conversation.max_tokens
    )
    if not fitted.fits:
        raise NoRoom()
    messages, dropped, max_tokens = fitted.messages, fitted.dropped, fitted.max_tokens
    for _ in range(MAX_ATTEMPTS):
        stream = stream_answer(
            backend, target, messages, max_tokens, conversation.temperature, end=end, count_usage=count_usage
        )
        try:
            return stream, await anext(stream), dropped
        except StopAsyncIteration:
            return stream, "", dropped
        except Refused as error:
            if not trimming.is_context_error(error.status, error.message):
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


async def answer_with(
    backend: ChatBackend,
    target: Target,
    conversation: Conversation,
    asked: Asked,
    side: ComparedSide | None = None,
) -> None:
    """Stream an answer from `target` into a new message, which says how it ended. In Compare
    mode (`side`) the answer is measured, and only the chat model's answer joins the
    conversation. Raises NoRoom, or the endpoint's errors (`CompletionError`) raised before the
    first token."""
    end = StreamEnd()
    timing = Timing()
    asked = await asked.for_target(target, conversation.max_tokens)
    stream, first, dropped = await open_stream(
        backend, target, conversation, asked, end=end, count_usage=side is not None
    )
    first_token = time.time()
    if first:
        timing.saw()
    if dropped:
        await say(
            f"This conversation is longer than {target.model} can read at once, so the "
            f"{dropped} oldest message{'s' if dropped != 1 else ''} were left out of this answer."
        )
    continued = asked.extra is not None and conversation.turns[-1]["role"] == "assistant"
    metadata = answer_metadata(target, asked, continued, side)
    message = cl.Message(content="", metadata=metadata)
    # Not sent empty first: its first token shows it, and every write of it to the history is
    # ours, in order (Chainlit writes in background tasks that could race).
    message.created_at = chainlit_compat.timestamp()
    to_page = AnswerStream(message)
    ending = Ending.STOPPED  # unless the stream ends: Stop, or the chat deleted (task cancelled)
    failure = ""
    try:
        await to_page.add(first)
        backend.history.first_words_sent(message.thread_id)
        async for token in stream:
            timing.saw()
            await to_page.add(token)
        ending = Ending.CUT if end.finish_reason == "length" else Ending.DONE
    except Unreachable:
        ending = Ending.INTERRUPTED
    except CompletionError as error:
        ending, failure = Ending.FAILED, error.message
    finally:
        timing.end()
        ended = time.time()  # the model's last token (or the end of waiting for it)
        with contextlib.suppress(Exception):
            await stream.aclose()  # at once, also when the user pressed Stop (task cancelled)
        text = to_page.settle()
        if side is None or side.index == 0:  # the conversation goes on with the chat model's answer
            keep(conversation, text, continued, message.id, ending)
        message.metadata = {**metadata, "ending": ending.value}
        if side is None:
            message.content += ending.note + footer(target)
        else:  # the numbers under it say where it was computed
            message.metadata["compare"] = side.numbers(target, timing.run(side.name, target.place, text, end))
            message.content += ending.note
        await asyncio.shield(to_page.end())
        await asyncio.shield(chainlit_compat.show_in_other_tabs(message))
        log.info(
            "answer %s in chat %s: %d characters from %s, first token at %.3f, %s at %.3f",
            message.id, message.thread_id, len(text), target.model, first_token, ending.value, ended,
        )  # fmt: skip
    await say_how_it_ended(target, ending, failure, side)


def answer_metadata(
    target: Target, asked: Asked, continued: bool, side: ComparedSide | None
) -> dict[str, object]:
    """What an answer's message carries for the page and the history, besides how it ended."""
    metadata: dict[str, object] = {"answer": True, "where": target.where}
    if continued:
        metadata["continues"] = True
    if asked.grounding is not None:
        metadata["citations"] = asked.grounding.citations
    if side is not None:
        metadata["compare"] = side.numbers(target)
    return metadata


def keep(conversation: Conversation, text: str, continued: bool, answer_id: str, ending: Ending) -> None:
    """The answer joins the conversation (the next request's context), as the newest answer."""
    if continued:
        conversation.turns[-1]["content"] += text
    else:
        conversation.turns.append({"role": "assistant", "content": text})
    conversation.last_answer, conversation.last_ending = answer_id, ending


async def say_how_it_ended(target: Target, ending: Ending, failure: str, side: ComparedSide | None) -> None:
    """After an answer that did not end by itself: what happened, and what to do."""
    who = f"{side.name}: " if side is not None else ""
    if ending is Ending.INTERRUPTED:
        lost = (
            "The model runtime stopped"
            if target.where == LOCAL
            else f"The connection to {target.base_url} was lost"
        )
        restarting = "; it is restarting" if target.where == LOCAL else ""
        again = " Press Retry to ask again." if side is None else " Send your message again."
        await say(f"{who}{lost} while answering{restarting}.{again}")
    elif ending is Ending.FAILED:
        await say(f"{who}The answer was cut short: {failure}")
