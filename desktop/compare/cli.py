"""`foundry-desk compare PROMPT --model A --model B`: two models, the same prompt, measured.

Each model is a catalog alias or id (downloaded), a model folder, or `remote` (the configured
remote endpoint). The running app's runtime is used when it serves one of them (the other is
loaded beside it); otherwise a runtime is started for the comparison and stopped after it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from desktop import APP_NAME
from desktop.compare.runs import Result, Spread, compare
from desktop.compare.sides import pair_up
from desktop.completions import CompletionError, Unreachable
from desktop.config import Settings, SettingsError, load_settings
from desktop.errors import FoundryDeskError
from desktop.paths import AppPaths


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{APP_NAME} compare",
        description="Ask two models the same prompt and measure their answers.",
    )
    parser.add_argument("prompt", nargs="+", help="the prompt (quote it, or give it as words)")
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="MODEL",
        help="a catalog alias or id, a model folder, or 'remote'; give it twice",
    )
    parser.add_argument("--max-tokens", type=int, default=256, help="answer length (default 256)")
    parser.add_argument("--runs", type=int, default=1, help="rounds; more give a median and a spread")
    parser.add_argument(
        "--at-once",
        action="store_true",
        help="ask both models at the same time (default: one after the other, so that each "
        "model's numbers are its own: on a laptop two models at once share its cores)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object per model")
    return parser


def main(argv: Sequence[str], paths: AppPaths, out: TextIO | None = None) -> int:
    parser = build_parser()
    options = parser.parse_args(argv)
    out = out or sys.stdout
    if len(options.model) != 2:
        parser.error("give --model exactly twice: the two models to compare")
    if options.max_tokens < 1 or options.runs < 1:
        parser.error("--max-tokens and --runs must be 1 or more")
    try:
        settings = load_settings(paths.settings_file, os.environ).settings
    except SettingsError as error:
        print(f"{APP_NAME} compare: {error}", file=sys.stderr)
        return 2
    paths.create()
    try:
        results = run(options, settings, paths)
    except Unreachable as error:
        print(f"{APP_NAME} compare: a model's endpoint is unreachable: {error}", file=sys.stderr)
        return 1
    except CompletionError as error:
        status = f" (HTTP {error.status})" if error.status else ""
        print(f"{APP_NAME} compare: a model could not answer{status}: {error.message}", file=sys.stderr)
        return 1
    except FoundryDeskError as error:  # CompareRefused, a runtime that refused
        print(f"{APP_NAME} compare: {error}", file=sys.stderr)
        return 1
    if options.json:
        print(json.dumps([result.to_json() for result in results], indent=2), file=out)
    else:
        print_table(results, out)
    return 0


def run(options: argparse.Namespace, settings: Settings, paths: AppPaths) -> list[Result]:
    """The comparison the command line asks for, on the runtime it finds or starts."""
    from desktop.compare.runtime import runtime_for  # the service stack: not for --help

    names = (options.model[0], options.model[1])
    prompt = " ".join(options.prompt)
    with runtime_for(names, settings, paths, say=lambda line: print(line, file=sys.stderr)) as client:
        pair = pair_up(names, settings, client)
        if pair.note:
            print(pair.note, file=sys.stderr)
        try:
            asked = compare(
                pair, prompt, max_tokens=options.max_tokens, rounds=options.runs, at_once=options.at_once
            )
            return asyncio.run(asked)
        finally:
            if client is not None and any(side.companion for side in pair.sides):
                client.release_companion()


def print_table(results: list[Result], out: TextIO) -> None:
    """The numbers as a table (medians, and the spread with more than one round), then each
    model's answer."""
    rows = [("model", "TTFT ms", "tokens/s", "output tokens", "total s", "where")]
    for result in results:
        rows.append(
            (
                result.model,
                _number(result.spread(lambda run: run.ttft_ms), "{:.0f}"),
                _number(result.spread(lambda run: run.tokens_per_s), "{:.1f}"),
                _number(result.spread(lambda run: run.output_tokens), "{:.0f}"),
                _number(result.spread(lambda run: run.total_ms / 1000), "{:.2f}"),
                result.last.where,
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        cells = [
            cell.ljust(width) if column in (0, 5) else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip(), file=out)
    if len(results[0].runs) > 1:
        print(f"\nMedians of {len(results[0].runs)} rounds (lowest to highest).", file=out)
    for result in results:
        ending = " [cut at --max-tokens]" if result.last.finish_reason == "length" else ""
        print(f"\n── {result.model}{ending}\n{result.last.text.strip()}", file=out)


def _number(spread: Spread | None, form: str) -> str:
    if spread is None:
        return "-"
    if spread.low == spread.high:
        return form.format(spread.median)
    return f"{form.format(spread.median)} ({form.format(spread.low)}-{form.format(spread.high)})"
