"""Fitting a conversation into the model's context window: pure functions, no I/O.

The chat keeps every turn, but a request carries only what fits: the system prompt, then the
newest turns that fit in `context_length` minus the room kept for the answer. Whole turns are
dropped from the oldest end (a user message with the answer that followed it), so the model never
sees half an exchange. Token counts are estimates (no tokenizer here); when the server still says
the prompt is too long, `drop_oldest_turn` removes one more turn and the chat tries again.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

Message = dict[str, str]
"""An OpenAI chat message: {"role": ..., "content": ...}."""

PER_MESSAGE_TOKENS = 4
"""Role markers and separators that each message adds in a chat template."""
MIN_ANSWER_TOKENS = 16
"""Never ask for fewer tokens than this for an answer; trim the conversation instead."""
MAX_MESSAGE_CHARS = 500_000
"""The longest message the chat takes at all: about 125,000 tokens, more than a local model reads
at once. The page keeps a longer one in its message box and says so (assets/app.mjs)."""

_CONTEXT_ERROR = re.compile(
    r"context (?:length|window|size)|maximum context|too many tokens"
    r"|(?:prompt|input|message)s? (?:is )?too long",
    re.IGNORECASE,
)
"""How endpoints word "the prompt does not fit" (Foundry Local, OpenAI, llama.cpp, vLLM, Ollama)."""
_BUDGET = re.compile(r"\((\d+) input \+ (\d+) output\).*?context length of (\d+)", re.IGNORECASE | re.DOTALL)


def is_blank(text: str) -> bool:
    """Nothing to answer: only spaces and invisible characters (a zero-width space, say)."""
    return all(c.isspace() or unicodedata.category(c) in ("Cf", "Cc") for c in text)


def refusal(text: str) -> str | None:
    """Why a message is not answered at all, or None. (The page sends none of these.)"""
    if is_blank(text):
        return "Your message is empty: there is nothing to answer."
    if len(text) > MAX_MESSAGE_CHARS:
        return (
            f"Your message is {len(text):,} characters long; the chat takes at most "
            f"{MAX_MESSAGE_CHARS:,}. Shorten it, or send it in parts."
        )
    return None


def estimate_tokens(text: str) -> int:
    """A cautious token count: about 3 bytes of UTF-8 per token (real tokenizers average ~4)."""
    return len(text.encode("utf-8")) // 3 + 1


def message_tokens(message: Message) -> int:
    return estimate_tokens(message["content"]) + PER_MESSAGE_TOKENS


@dataclass(frozen=True)
class Fitted:
    """What to send: the messages, how many earlier messages were left out, the answer budget."""

    messages: list[Message]
    dropped: int
    max_tokens: int
    fits: bool
    """False when even the newest message alone leaves no room for an answer."""


def fit(
    system: str,
    turns: Sequence[Message],
    context_length: int | None,
    max_tokens: int,
) -> Fitted:
    """The system prompt plus the newest `turns` that fit with room for an answer.

    `turns` alternate user and assistant messages and end with the user's new message. The answer
    budget is `max_tokens`, shrunk to what the context leaves (at least `MIN_ANSWER_TOKENS`) before
    any turn is dropped, and at most half the context when turns must be dropped.
    """
    head = [{"role": "system", "content": system}] if system else []
    if context_length is None:
        return Fitted([*head, *turns], 0, max_tokens, True)
    used = sum(message_tokens(m) for m in head)
    total = used + sum(message_tokens(m) for m in turns)
    if total + MIN_ANSWER_TOKENS <= context_length:
        return Fitted(
            [*head, *turns], 0, max(MIN_ANSWER_TOKENS, min(max_tokens, context_length - total)), True
        )
    budget = max(MIN_ANSWER_TOKENS, min(max_tokens, context_length // 2))
    kept: list[Message] = []
    for index in turn_starts(turns)[::-1]:
        candidate = list(turns[index:])
        if used + sum(message_tokens(m) for m in candidate) + budget > context_length:
            break
        kept = candidate
    if not kept:
        newest = list(turns[-1:])
        room = context_length - used - sum(message_tokens(m) for m in newest)
        fits = room >= MIN_ANSWER_TOKENS
        return Fitted([*head, *newest], len(turns) - len(newest), max(MIN_ANSWER_TOKENS, room), fits)
    return Fitted([*head, *kept], len(turns) - len(kept), budget, True)


def turn_starts(turns: Sequence[Message]) -> list[int]:
    """Indexes where a turn (a user message and what followed it) begins."""
    return [i for i, m in enumerate(turns) if m["role"] == "user"]


def drop_oldest_turn(messages: Sequence[Message]) -> tuple[list[Message], int] | None:
    """`messages` (system first, maybe) without its oldest turn, and how many messages went;
    None when only the newest user message is left."""
    head = [m for m in messages[:1] if m["role"] == "system"]
    body = list(messages[len(head) :])
    starts = turn_starts(body)
    if len(starts) < 2:
        return None
    return [*head, *body[starts[1] :]], starts[1]


def is_context_error(status: int | None, message: str) -> bool:
    """True when an endpoint's error says the prompt does not fit the model's context: a refusal
    of the request (HTTP 400 or 413, or an error event in a stream, which has no status) that says
    so. A server error (5xx) never is, whatever its text mentions (a sliding-window model's "KV
    cache capacity … local_window_size" once read as "too long")."""
    if status is not None and status not in (400, 413):
        return False
    return parse_budget(message) is not None or bool(_CONTEXT_ERROR.search(message))


@dataclass(frozen=True)
class Budget:
    """The token arithmetic of a "does not fit" error (Foundry Local states it)."""

    prompt_tokens: int
    answer_tokens: int
    context_length: int

    @property
    def answer_room(self) -> int:
        """Tokens left for the answer with this prompt."""
        return self.context_length - self.prompt_tokens


def parse_budget(message: str) -> Budget | None:
    """The exact counts from an endpoint's context error, when it gives them."""
    match = _BUDGET.search(message)
    if match is None:
        return None
    prompt, answer, context = (int(group) for group in match.groups())
    return Budget(prompt, answer, context)
