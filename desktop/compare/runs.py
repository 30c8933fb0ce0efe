"""Comparing: every round asks both models the same prompt, at the same time or one after the
other, and the rounds of each model are summed up as a median and a spread."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from desktop.compare.measure import Run, measure
from desktop.compare.sides import Pair, Side
from desktop.completions import Completions


@dataclass(frozen=True)
class Spread:
    """The median of one number over the rounds, and its lowest and highest."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: list[float]) -> Spread | None:
        return cls(statistics.median(values), min(values), max(values)) if values else None


@dataclass(frozen=True)
class Result:
    """One model over all rounds: its runs, in order, and their medians and spreads."""

    model: str
    runs: list[Run]

    @property
    def last(self) -> Run:
        return self.runs[-1]

    def spread(self, number: Callable[[Run], float | None]) -> Spread | None:
        return Spread.of([value for run in self.runs if (value := number(run)) is not None])

    def to_json(self) -> dict[str, Any]:
        """The newest answer with the medians of the rounds; with more than one round, each
        number's spread and every round's numbers too."""
        numbers: dict[str, Callable[[Run], float | None]] = {
            "output_tokens": lambda run: run.output_tokens,
            "ttft_ms": lambda run: run.ttft_ms,
            "tokens_per_s": lambda run: run.tokens_per_s,
            "total_ms": lambda run: run.total_ms,
        }
        data = self.last.to_json()
        spreads = {key: self.spread(number) for key, number in numbers.items()}
        for key, spread in spreads.items():
            data[key] = None if spread is None else spread.median
        if len(self.runs) > 1:
            data["runs"] = len(self.runs)
            data["spread"] = {key: None if s is None else [s.low, s.high] for key, s in spreads.items()}
            data["rounds"] = [{key: getattr(run, key) for key in numbers} for run in self.runs]
        return data


async def compare(
    pair: Pair,
    prompt: str,
    *,
    max_tokens: int,
    rounds: int = 1,
    at_once: bool = False,
    temperature: float = 0.0,
) -> list[Result]:
    """Ask both models `rounds` times: one after the other (each round in the same order), or at
    the same time with `at_once` when the runtime holds both (`pair.together`). On 2 cores both
    at once took as long as one after the other, and each model streamed at 51-74 % of its speed
    alone (`tests/benchmark_compare.py`): their numbers are then each other's as much as their own.
    One client per endpoint (two models of one runtime share it), closed at the end."""
    messages = [{"role": "user", "content": prompt}]
    together = at_once and pair.together
    clients = {
        (s.target.base_url, s.target.api_key): Completions(s.target.base_url, s.target.api_key)
        for s in pair.sides
    }

    async def ask(side: Side) -> Run:
        client = clients[side.target.base_url, side.target.api_key]
        return await measure(
            client, side.target, side.name, messages, max_tokens=max_tokens, temperature=temperature
        )

    runs: list[list[Run]] = [[], []]
    try:
        for _ in range(rounds):
            if together:
                for index, run in enumerate(await asyncio.gather(*(ask(side) for side in pair.sides))):
                    runs[index].append(run)
                continue
            for index, side in enumerate(pair.sides):
                await asyncio.to_thread(pair.give_turn, side)
                runs[index].append(await ask(side))
    finally:
        if not pair.together:
            await asyncio.to_thread(pair.give_turn, None)  # the chat model, as it was
        for client in clients.values():
            await client.close()
    return [Result(side.name, side_runs) for side, side_runs in zip(pair.sides, runs, strict=True)]
