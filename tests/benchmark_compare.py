"""Benchmark of comparing two models: both at once, or one after the other?

    .venv/bin/python tests/benchmark_compare.py [--rounds 5] [--tokens 256]

Two real models of the real runtime (tiny ONNX models with real compute per token: a small one
and one three times its depth), the same prompt, through `desktop.compare` as `foundry-desk
compare` runs it. For each way, per round: the wall time of the comparison, and each model's
tokens/s and time to first token. Medians of the rounds (after one warm-up round each).

On a 2-core laptop two models at once share the cores: each may stream slower than alone, and
the comparison may still end sooner. The numbers chose the default of `foundry-desk compare`: one
after the other (at once took as long, and halved the small model's tokens/s). The chat's Compare
mode answers at once: there the user watches both answers come.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from desktop.compare.runs import Result, compare
from desktop.compare.runtime import runtime_for
from desktop.compare.sides import Pair, pair_up
from desktop.config import Settings
from desktop.paths import AppPaths
from tests.conftest import free_port
from tests.tinymodel import build_model


async def one_round(pair: Pair, tokens: int, at_once: bool) -> tuple[float, list[Result]]:
    started = time.perf_counter()
    results = await compare(pair, "Tell me a story", max_tokens=tokens, at_once=at_once)
    return (time.perf_counter() - started) * 1000, results


def measure(pair: Pair, rounds: int, tokens: int, at_once: bool) -> dict[str, float]:
    asyncio.run(one_round(pair, tokens, at_once))  # warm-up
    walls: list[float] = []
    rates: list[list[float]] = [[], []]
    ttfts: list[list[float]] = [[], []]
    for _ in range(rounds):
        wall, results = asyncio.run(one_round(pair, tokens, at_once))
        walls.append(wall)
        for index, result in enumerate(results):
            assert result.last.output_tokens == tokens, "the models must not stop early"
            rates[index].append(result.last.tokens_per_s or 0.0)
            ttfts[index].append(result.last.ttft_ms or 0.0)
    return {
        "wall_ms": statistics.median(walls),
        "small_tokens_per_s": statistics.median(rates[0]),
        "large_tokens_per_s": statistics.median(rates[1]),
        "small_ttft_ms": statistics.median(ttfts[0]),
        "large_ttft_ms": statistics.median(ttfts[1]),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        small = build_model(root / "small", "and on", endless=True, width=1024, depth=8, context_length=4096)
        large = build_model(root / "large", "on and", endless=True, width=1024, depth=24, context_length=4096)
        paths = AppPaths.under(root / "home")
        settings = Settings(runtime_port=free_port(), offline=True, allow_download=False)
        names = (str(small), str(large))
        with runtime_for(names, settings, paths, say=lambda line: None) as client:
            pair = pair_up(names, settings, client)
            assert pair.together, pair.note
            found = {
                way: measure(pair, args.rounds, args.tokens, way == "at once")
                for way in ("at once", "in turn")
            }
            assert client is not None
            client.release_companion()
    print(f"two models, {args.tokens} tokens each, median of {args.rounds} rounds (2 cores):")
    for way, numbers in found.items():
        print(
            f"  {way:8}: comparison {numbers['wall_ms'] / 1000:.2f} s; small model "
            f"{numbers['small_tokens_per_s']:.0f} tokens/s (TTFT {numbers['small_ttft_ms']:.0f} ms), "
            f"large {numbers['large_tokens_per_s']:.0f} tokens/s (TTFT {numbers['large_ttft_ms']:.0f} ms)"
        )
    together, apart = found["at once"], found["in turn"]
    print(
        f"  at once takes {together['wall_ms'] / apart['wall_ms'] * 100:.0f} % of the time in turn; each "
        f"model streams at {together['small_tokens_per_s'] / apart['small_tokens_per_s'] * 100:.0f} % "
        f"(small) and {together['large_tokens_per_s'] / apart['large_tokens_per_s'] * 100:.0f} % (large) "
        "of its speed alone"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
