"""One answer measured as it streams: time to first token, tokens per second, output tokens.

The same numbers for the chat's Compare mode and for `foundry-desk compare`, from the same
definitions:

- time to first token (TTFT): from sending the request to the first text of the answer;
- output tokens: as the endpoint counted them (`usage`), else one per chunk of text;
- tokens per second: the tokens after the first, over the time from the first to the last
  (the speed of generating, not of reading the prompt; that is TTFT's part);
- total: from sending the request to the end of the answer.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from desktop.chat.endpoint import Target
from desktop.completions import Completions, StreamEnd


@dataclass(frozen=True)
class Run:
    """One model's answer to one prompt, and how fast it came."""

    model: str
    """As the user named it (an alias, a folder, "remote")."""
    where: str
    """Where it ran: "this computer (CPU)", "remote host example.com"."""
    text: str
    output_tokens: int
    ttft_ms: float | None
    """None when the model gave no text."""
    tokens_per_s: float | None
    """None with fewer than two tokens."""
    total_ms: float
    finish_reason: str | None = None
    """"stop" (the model ended it), "length" (cut at the token budget), or None (cut short)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Timing:
    """The clock of one answer: started when the request is sent; `saw` marks each piece."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first: float | None = None
        self.last: float | None = None
        self.ended: float | None = None

    def saw(self) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.last = now

    def end(self) -> None:
        self.ended = time.perf_counter()

    def run(self, model: str, where: str, text: str, stream_end: StreamEnd) -> Run:
        """The numbers of the answer; call once it ended (`end`)."""
        ended = self.ended if self.ended is not None else time.perf_counter()
        tokens = stream_end.output_tokens if stream_end.output_tokens is not None else stream_end.pieces
        ttft = None if self.first is None else (self.first - self.started) * 1000
        rate = None
        if self.first is not None and self.last is not None and tokens > 1 and self.last > self.first:
            rate = (tokens - 1) / (self.last - self.first)
        return Run(
            model=model,
            where=where,
            text=text,
            output_tokens=tokens,
            ttft_ms=ttft,
            tokens_per_s=rate,
            total_ms=(ended - self.started) * 1000,
            finish_reason=stream_end.finish_reason,
        )


async def measure(
    client: Completions,
    target: Target,
    name: str,
    messages: Sequence[dict[str, Any]],
    *,
    max_tokens: int,
    temperature: float = 0.0,
    on_text: Callable[[str], Awaitable[None]] | None = None,
) -> Run:
    """Ask `target` and measure its answer; `on_text` gets each piece as it comes (the chat
    shows it). Raises the endpoint's errors (`desktop.completions.CompletionError`)."""
    stream_end = StreamEnd()
    timing = Timing()
    pieces: list[str] = []
    stream = client.stream(
        target.model,
        messages,
        max_tokens=max_tokens,
        temperature=temperature,
        end=stream_end,
        count_usage=True,
    )
    try:
        async for text in stream:
            timing.saw()
            pieces.append(text)
            if on_text is not None:
                await on_text(text)
    finally:
        timing.end()
        await stream.aclose()
    return timing.run(name, target.place, "".join(pieces), stream_end)
