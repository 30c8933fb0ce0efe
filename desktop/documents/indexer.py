"""The app's indexer: a child process (`foundry-desk files-indexer`) that keeps the index in line
with the user's folders while the app runs, and publishes its progress for the tray and the chat.

It runs at the lowest CPU and disk priority, so reading thousands of files never slows an answer
the model is computing; and in a process of its own, so the tray and the chat never wait for it.
It refreshes when it starts, when a watched folder changes (a file system watcher, watchdog),
when the index changes under it (a folder added in the tray or the chat, Re-index, `foundry-desk
files`), and every `RESCAN_S` in case the watcher missed something (a network drive). When the
runtime serves an embedding model, it then gives every new passage a vector (`embeddings.py`).
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
import time
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from desktop import compat
from desktop.documents.embeddings import EMBED_BATCH, MAX_EMBED_CHARS, EmbeddingEndpoint, EmbeddingFailed
from desktop.documents.index import DocumentIndex
from desktop.documents.library import IndexingStatus
from desktop.documents.reading import SUFFIXES
from desktop.documents.refresh import Progress, Report
from desktop.files import write_json_atomic
from desktop.runtime.status import RuntimeState, read_status
from desktop.signals import capture_signals

log = logging.getLogger(__name__)

QUIET_S = 1.0
"""After a change on disk, wait until the folder has been quiet this long (a copy in progress)."""
LOOK_S = 1.0
"""How often the index is asked whether another process changed it."""
RESCAN_S = 600.0
BUSY_CORES = 0.3
"""The runtime counts as busy (answering) above this many cores of CPU."""
BUSY_WAIT_S = 0.25
EMBED_RETRY_S = 60.0
EMBED_SAMPLE_S = 0.05
"""Before each batch of passages to embed, the runtime is watched this long (it is idle between
our own requests unless an answer runs)."""
PUBLISH_S = 0.25
"""Progress is written at most this often."""


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="foundry-desk files-indexer")
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--status-file", type=Path, required=True)
    parser.add_argument("--runtime-status", type=Path, help="the runtime's status: its embedding model")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    lower_priority()
    stop = threading.Event()
    compat.exit_with_parent(os.getppid(), stop.set)
    with capture_signals(stop.set), DocumentIndex(args.index) as index:
        Indexer(index, StatusWriter(args.status_file), stop, args.runtime_status).run()
    return 0


def lower_priority() -> None:
    """The lowest CPU priority, and idle disk priority where the system has one."""
    process = psutil.Process()
    try:
        if compat.IS_WINDOWS:
            process.nice(psutil.IDLE_PRIORITY_CLASS)  # type: ignore[attr-defined,unused-ignore]
        else:
            process.nice(19)
        if hasattr(process, "ionice") and hasattr(psutil, "IOPRIO_CLASS_IDLE"):
            process.ionice(psutil.IOPRIO_CLASS_IDLE)
    except (psutil.Error, OSError) as error:
        log.warning("could not lower the indexer's priority: %s", error)


class RuntimeLoad:
    """How busy the model runtime is: while it computes an answer, the indexer waits. Its lowest
    priority is not enough on a 2-core laptop: the runtime leaves a core idle, the indexer takes
    it, and the two share caches and memory bandwidth (answers were 12 % slower, measured)."""

    def __init__(self, status_file: Path | None, stop: threading.Event) -> None:
        self.status_file = status_file
        self.stop = stop
        self._process: psutil.Process | None = None
        self._last: tuple[float, float] | None = None
        """(wall clock, the runtime's CPU seconds) when last looked at."""

    def wait_while_busy(self, sample_s: float = 0.0) -> None:
        """Return once the runtime has been using less than `BUSY_CORES` (measured since the last
        call, or over `sample_s` from now), or when the indexer must stop."""
        if sample_s:
            self._last = None
            self._cpu_rate()
            self.stop.wait(sample_s)
        while not self.stop.is_set() and self._cpu_rate() >= BUSY_CORES:
            self.stop.wait(BUSY_WAIT_S)

    def _cpu_rate(self) -> float:
        """Cores the runtime used since the last call (0 when it does not run)."""
        process = self._runtime()
        if process is None:
            return 0.0
        try:
            times = process.cpu_times()
        except psutil.Error:
            self._process = None
            return 0.0
        now, used = time.monotonic(), times.user + times.system
        last, self._last = self._last, (now, used)
        if last is None or now - last[0] <= 0:
            return 0.0
        return (used - last[1]) / (now - last[0])

    def _runtime(self) -> psutil.Process | None:
        status = read_status(self.status_file) if self.status_file else None
        if status is None or status.state in (RuntimeState.STOPPED, RuntimeState.FAILED):
            self._process = None
            return None
        if self._process is None or self._process.pid != status.pid:
            try:
                self._process, self._last = psutil.Process(status.pid), None
            except psutil.Error:
                return None
        return self._process


class StatusWriter:
    """Publishes an `IndexingStatus` (atomically: the tray and the chat read it any time)."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self._written_at = 0.0
        self.summary = ""

    def write(self, state: str, progress: Progress | None = None, *, force: bool = True) -> None:
        now = time.monotonic()
        if not force and now - self._written_at < PUBLISH_S:
            return
        self._written_at = now
        status = IndexingStatus(
            state=state,
            done=progress.done if progress else 0,
            total=progress.total if progress else 0,
            current=progress.current if progress else "",
            pid=os.getpid(),
            summary=self.summary,
        )
        write_json_atomic(self.file, status.to_json())


class Indexer:
    """Refresh, then wait for a reason to refresh again, until stopped."""

    def __init__(
        self, index: DocumentIndex, status: StatusWriter, stop: threading.Event, runtime_status: Path | None
    ) -> None:
        self.index = index
        self.status = status
        self.stop = stop
        self.runtime_status = runtime_status
        self.embedded_with: EmbeddingEndpoint | None = None
        """The embedding model the index's vectors were last made with (None: none served)."""
        self.retry_embedding_at: float | None = None
        """When to try embedding again after the runtime could not."""
        self.runtime_load = RuntimeLoad(runtime_status, stop)
        self.changed = threading.Event()
        self.watcher = FolderWatcher(self.changed)

    def run(self) -> None:
        self.status.write("starting")
        try:
            while not self.stop.is_set():
                self.watcher.follow(self.index.source_paths())
                self.refresh()
                self.embed()
                self.wait_for_a_change()
        finally:
            self.watcher.close()

    def refresh(self) -> None:
        self.changed.clear()
        report = self.index.refresh(
            lambda progress: self.status.write("indexing", progress, force=progress.done == 0),
            should_stop=self.stop.is_set,
            pause=self.runtime_load.wait_while_busy,
        )
        self.status.summary = summary(report)
        self.status.write("ready")
        log.info("refreshed: %s", report.summary())

    def embed(self) -> None:
        """Give every passage a vector of the runtime's embedding model, when one is served: in
        batches, with progress; passages added meanwhile are embedded after the next refresh.
        When the runtime cannot (it restarts, the model went), it is tried again later."""
        endpoint = self.endpoint()
        self.embedded_with, self.retry_embedding_at = endpoint, None
        if endpoint is None:
            return
        total, done = self.index.count_missing_vectors(endpoint.model), 0
        while not self.stop.is_set():
            self.runtime_load.wait_while_busy(sample_s=EMBED_SAMPLE_S)  # not busy with our own requests
            batch = self.index.missing_vectors(endpoint.model, EMBED_BATCH)
            if not batch:
                break
            self.status.write("embedding", Progress(done, total, ""), force=done == 0)
            try:
                vectors = embed_batch(endpoint, [text for _, text in batch])
            except EmbeddingFailed as error:
                log.warning("embedding passages failed (tried again in %.0f s): %s", EMBED_RETRY_S, error)
                self.retry_embedding_at = time.monotonic() + EMBED_RETRY_S
                break
            self.index.store_vectors(
                endpoint.model, [(i, v) for (i, _), v in zip(batch, vectors, strict=True)]
            )
            done += len(batch)
        if total:
            log.info("embedded %d of %d passages with %s", done, total, endpoint.model)
            self.status.write("ready")

    def endpoint(self) -> EmbeddingEndpoint | None:
        return EmbeddingEndpoint.published(self.runtime_status) if self.runtime_status else None

    def wait_for_a_change(self) -> None:
        """Until a folder changes, the index changes under us, the runtime's embedding model
        comes or goes, or it is time to rescan."""
        seen = self.index.changes_seen()
        deadline = time.monotonic() + RESCAN_S
        while not self.stop.is_set() and time.monotonic() < deadline:
            if self.changed.wait(LOOK_S):
                while self.changed.is_set() and not self.stop.is_set():  # until quiet
                    self.changed.clear()
                    self.stop.wait(QUIET_S)
                return
            if self.index.changes_seen() != seen or self.endpoint() != self.embedded_with:
                return
            if self.retry_embedding_at is not None and time.monotonic() >= self.retry_embedding_at:
                return


def embed_batch(endpoint: EmbeddingEndpoint, texts: list[str]) -> list[array[float]]:
    """The texts' vectors. One text the model refuses (longer than its context, say) fails its
    whole batch: then each is asked alone, and one refused alone is asked with its start only."""
    try:
        return endpoint.embed(texts)
    except EmbeddingFailed:
        if len(texts) == 1:
            return endpoint.embed([texts[0][: MAX_EMBED_CHARS // 4]])
    return [embed_batch(endpoint, [text])[0] for text in texts]


def summary(report: Report) -> str:
    """The last refresh in words, for the tray and the chat; empty when nothing changed."""
    done = [f"{count} {what}" for what, count in (("new", report.indexed), ("updated", report.updated),
            ("renamed", report.renamed), ("removed", report.removed)) if count]  # fmt: skip
    if report.skipped:
        done.append(f"{len(report.skipped)} skipped")
    return ", ".join(done)


IGNORED_EVENTS = frozenset({"opened", "closed_no_write"})
"""Reading a file (the indexer's own reading among others) changes nothing."""


def concerns_index(path: str, is_directory: bool) -> bool:
    """Whether a change at `path` may change the index: a folder, or a file of a kind it reads,
    not hidden (refreshes skip hidden entries: among them the app's own folders, when the user
    added their home folder, which the indexer writes to)."""
    if any(part.startswith(".") for part in Path(path).parts):
        return False
    return is_directory or Path(path).suffix.lower() in SUFFIXES


class FolderWatcher:
    """Sets `changed` when a file of a kind the index reads changes in a watched folder."""

    def __init__(self, changed: threading.Event) -> None:
        self.changed = changed
        self._watched: dict[str, Any] = {}
        self._observer: Any = None

    def follow(self, sources: list[str]) -> None:
        """Watch exactly `sources` (folders; a file added alone is watched through its folder)."""
        try:
            from watchdog.events import FileSystemEvent, FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:  # the rescan still finds changes, later
            return
        changed = self.changed

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in IGNORED_EVENTS or (
                    event.is_directory and event.event_type == "modified"
                ):
                    return
                paths = [str(p) for p in (event.src_path, getattr(event, "dest_path", "")) if p]
                if any(concerns_index(path, event.is_directory) for path in paths):
                    changed.set()

        if self._observer is None:
            self._observer = Observer()
            self._observer.daemon = True
            self._observer.start()
        folders = {source if Path(source).is_dir() else str(Path(source).parent) for source in sources}
        for gone in self._watched.keys() - folders:
            self._observer.unschedule(self._watched.pop(gone))
        for folder in folders - self._watched.keys():
            try:
                self._watched[folder] = self._observer.schedule(Handler(), folder, recursive=True)
            except OSError as error:  # e.g. the system's limit of watches: rescans still find changes
                log.warning("cannot watch %s: %s", folder, error)

    def close(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
