"""Answers from the user's files: the passages that match a question go before it, numbered, with
an instruction to cite them; the answer keeps the citations (its message's metadata), which the
page shows under it and again when the chat is resumed.

The passages go to the local model only (or an endpoint on this computer): a remote model is
asked without them, and the chat says so. The user's files never leave the machine by the chat.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from desktop.chat import trimming
from desktop.chat.endpoint import LOCAL, Target
from desktop.documents.index import Hit
from desktop.loopback import on_this_computer

SEARCHED = 8
"""Passages looked at per question; the best that fit the budget are sent."""
MAX_SOURCE_TOKENS = 1800
"""At most this much of a request is passages (about 8 of them), so a long chat keeps its recent
turns and the answer its room."""
MIN_SOURCE_TOKENS = 40
"""Less room than this for a passage, and the question goes without one."""
INSTRUCTION = (
    "Answer the question using the numbered sources below, taken from the user's own files. "
    "Cite each source you use by its number in square brackets, like [1]. If the sources do not "
    "hold the answer, say so, then answer from what you know."
)


@dataclass(frozen=True)
class Grounding:
    """A question with the passages that go before it."""

    prompt: str
    """What is sent in place of the user's question."""
    citations: list[dict[str, Any]]
    """What the answer's message keeps: one entry per passage sent, numbered as in the prompt."""


def may_receive_files(target: Target) -> bool:
    """Whether passages of the user's files may go to `target`: a model on this computer only."""
    return target.where == LOCAL or on_this_computer(target.base_url)


def source_budget(context_length: int | None, max_tokens: int) -> int:
    """How many tokens the passages may take: at most a third of what the context leaves after
    the answer's room, and at most MAX_SOURCE_TOKENS."""
    if context_length is None:
        return MAX_SOURCE_TOKENS
    return max(0, min(MAX_SOURCE_TOKENS, (context_length - min(max_tokens, context_length // 2)) // 3))


def ground(question: str, hits: list[Hit], budget_tokens: int) -> Grounding | None:
    """The question with the best passages that fit `budget_tokens`; a small model's context may
    take only the start of the best one. None: not even that fits."""
    chosen: list[Hit] = []
    used = 0
    for hit in hits:
        cost = source_tokens(len(chosen) + 1, hit)
        if used + cost <= budget_tokens:  # else a shorter passage further down may still fit
            used += cost
            chosen.append(hit)
    if not chosen and hits and budget_tokens >= MIN_SOURCE_TOKENS:
        best = hits[0]
        room = budget_tokens - source_tokens(1, replace(best, text=""))
        chosen = [replace(best, text=best.text.encode()[: room * 3].decode(errors="ignore").rstrip() + "…")]
    if not chosen:
        return None
    sources = [source_text(number, hit) for number, hit in enumerate(chosen, start=1)]
    prompt = f"{INSTRUCTION}\n\nSources:\n\n" + "\n\n".join(sources) + f"\n\nQuestion: {question}"
    return Grounding(prompt, [citation(number, hit) for number, hit in enumerate(chosen, start=1)])


def source_text(number: int, hit: Hit) -> str:
    where = f" ({hit.where})" if hit.where else ""
    return f"[{number}] {Path(hit.path).name}{where}\n{hit.text}"


def source_tokens(number: int, hit: Hit) -> int:
    return trimming.estimate_tokens(source_text(number, hit)) + 2


def citation(number: int, hit: Hit) -> dict[str, Any]:
    """A citation as the page shows it (conversation.mjs) and the history keeps it."""
    return {
        "n": number,
        "path": hit.path,
        "name": Path(hit.path).name,
        "where": hit.where,
        "page": hit.page,
        "lines": list(hit.lines) if hit.lines else None,
        "text": hit.text,
    }


def with_question(turns: list[trimming.Message], prompt: str) -> list[trimming.Message]:
    """`turns` with the newest user message's text replaced by `prompt` (for this request only)."""
    for position in range(len(turns) - 1, -1, -1):
        if turns[position]["role"] == "user":
            return [*turns[:position], {"role": "user", "content": prompt}, *turns[position + 1 :]]
    return turns
