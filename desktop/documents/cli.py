"""`foundry-desk files …`: the index of the user's files from a terminal or a script.

It works on the same index as the running app, whether or not the app runs: the app's chat
sees each change as soon as it is written, and its indexer does not read a file twice.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from desktop import APP_NAME
from desktop.documents.embeddings import EmbeddingEndpoint, Meaning, meaning_of
from desktop.documents.index import DocumentIndex, SourceRefused
from desktop.documents.refresh import Progress, Report
from desktop.paths import AppPaths


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{APP_NAME} files",
        description='Your own files, indexed on this computer, for the chat\'s "Use my files".',
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add = commands.add_parser("add", help="add folders or files to the index, or update them")
    add.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    commands.add_parser("refresh", help="update the index with what changed in the added folders")
    search = commands.add_parser("search", help="the passages that best match a query")
    search.add_argument("query", nargs="+")
    search.add_argument("--limit", type=int, default=10, help="how many passages (default 10)")
    search.add_argument("--json", action="store_true", help="print a JSON list")
    listing = commands.add_parser("list", help="the added folders and files, with what the index holds")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    remove = commands.add_parser("remove", help="take folders or files out of the index")
    remove.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    return parser


def main(argv: Sequence[str], paths: AppPaths, out: TextIO | None = None) -> int:
    options = build_parser().parse_args(argv)
    out = out or sys.stdout
    paths.create()
    with DocumentIndex(paths.files_index_file) as index:
        if index.set_aside is not None:
            print(
                f"{APP_NAME} files: the index could not be read; it was moved to {index.set_aside} and a "
                "new one started: add your folders again.",
                file=sys.stderr,
            )
        if options.command == "add":
            return add(index, options.paths, out)
        if options.command == "refresh":
            return finish_refresh(index, out)
        if options.command == "search":
            # By meaning too while the app's runtime serves an embedding model.
            query = " ".join(options.query)
            meaning = meaning_of(query, EmbeddingEndpoint.published(paths.runtime_status_file))
            return search(index, query, options.limit, options.json, out, meaning=meaning)
        if options.command == "list":
            return list_sources(index, options.json, out)
        return remove(index, options.paths, out)


def add(index: DocumentIndex, targets: list[Path], out: TextIO) -> int:
    refused = 0
    for target in targets:
        try:
            index.add(target)
        except SourceRefused as error:
            print(f"{APP_NAME} files: {error}", file=sys.stderr)
            refused += 1
    if refused == len(targets):
        return 2
    code = finish_refresh(index, out)
    return 2 if refused else code


def finish_refresh(index: DocumentIndex, out: TextIO) -> int:
    """Refresh the index with a progress bar on a terminal; the skipped files with their reasons,
    then a line of counts."""
    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    try:
        report = index.refresh(bar.show if bar else None)
    finally:
        if bar:
            bar.clear()
    print_report(report, out)
    return 0


def print_report(report: Report, out: TextIO) -> None:
    for path, reason in sorted(report.skipped.items()):
        print(f"skipped {path}: {reason}", file=out)
    print(report.summary(), file=out)


def search(
    index: DocumentIndex,
    query: str,
    limit: int,
    as_json: bool,
    out: TextIO,
    *,
    meaning: Meaning | None = None,
) -> int:
    hits = index.search(query, max(1, limit), meaning)
    if as_json:
        print(json.dumps([hit.to_json() for hit in hits], indent=2, ensure_ascii=False), file=out)
        return 0
    if not hits:
        files, _ = index.counts()
        print(
            "No passage matches." if files else f"The index is empty: `{APP_NAME} files add FOLDER`.",
            file=out,
        )
    for rank, hit in enumerate(hits, start=1):
        text = " ".join(hit.text.split())
        print(f"{rank}. {hit.path} ({hit.where}) score {hit.score:.3f}", file=out)
        print(f"   {text[:240]}{'…' if len(text) > 240 else ''}", file=out)
    return 0


def list_sources(index: DocumentIndex, as_json: bool, out: TextIO) -> int:
    sources = index.sources()
    if as_json:
        rows = [{"path": s.path, "files": s.files, "passages": s.passages, "skipped": s.skipped,
                 "exists": s.exists} for s in sources]  # fmt: skip
        print(json.dumps(rows, indent=2, ensure_ascii=False), file=out)
        return 0
    if not sources:
        print(f"Nothing added yet: `{APP_NAME} files add FOLDER`.", file=out)
    for source in sources:
        missing = "" if source.exists else " (not found: moved, deleted or not mounted)"
        skipped = f", {source.skipped} skipped" if source.skipped else ""
        print(f"{source.path}: {source.files} files, {source.passages} passages{skipped}{missing}", file=out)
    return 0


def remove(index: DocumentIndex, targets: list[Path], out: TextIO) -> int:
    code = 0
    for target in targets:
        try:
            path, files = index.remove(target)
        except SourceRefused as error:
            print(f"{APP_NAME} files: {error} `{APP_NAME} files list` shows what is.", file=sys.stderr)
            code = 2
            continue
        print(f"removed {path} ({files} files)", file=out)
    return code


class ProgressBar:
    """One line on a terminal, rewritten in place: a bar, the count, the file being read."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.width = shutil.get_terminal_size().columns

    def show(self, progress: Progress) -> None:
        if not progress.total:
            return
        filled = 24 * progress.done // progress.total
        line = f"[{'#' * filled}{'.' * (24 - filled)}] {progress.done}/{progress.total} {progress.current}"
        self.stream.write("\r" + line[: self.width - 1].ljust(self.width - 1))
        self.stream.flush()

    def clear(self) -> None:
        self.stream.write("\r" + " " * (self.width - 1) + "\r")
        self.stream.flush()
