"""A refresh of the index: compare the added folders on disk with what is indexed, then read only
what changed (size or modification time, then the content's hash: a file touched but unchanged,
or renamed, is not read again). It commits every `BATCH_S`, so that others see its progress.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from desktop.documents.reading import SUFFIXES, Passage, Unreadable, read_passages

BATCH_S = 0.5
"""A refresh commits at least this often: others see its progress, and wait little for the lock."""


@dataclass
class Report:
    """What a refresh did."""

    indexed: int = 0
    """New files read into the index."""
    updated: int = 0
    """Changed files read again."""
    renamed: int = 0
    """Files found under a new name with the same content (not read again)."""
    removed: int = 0
    unchanged: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    """Files that could not be read, by path: the reason."""
    bytes_read: int = 0

    def summary(self) -> str:
        return (
            f"{self.indexed} indexed, {self.updated} updated, {self.renamed} renamed, "
            f"{self.removed} removed, {len(self.skipped)} skipped, {self.unchanged} unchanged"
        )


@dataclass(frozen=True)
class Progress:
    """How far a refresh is: `done` of `total` files looked at, the one being read."""

    done: int
    total: int
    current: str


@dataclass(frozen=True)
class OnDisk:
    path: str
    source: str
    size: int
    mtime_ns: int


def forget_source(db: sqlite3.Connection, source: str) -> int:
    """Take a source's files, passages and skipped files out of the index; how many files left."""
    ids = [row[0] for row in db.execute("SELECT id FROM files WHERE source = ?", (source,))]
    for file_id in ids:
        forget_file(db, file_id)
    db.execute("DELETE FROM skipped WHERE source = ?", (source,))
    return len(ids)


def forget_file(db: sqlite3.Connection, file_id: int) -> None:
    db.execute("DELETE FROM passages WHERE file_id = ?", (file_id,))
    db.execute("DELETE FROM files WHERE id = ?", (file_id,))


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction, taken at once (another writer waits, readers go on)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def digest_of(path: Path) -> str:
    hasher = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            hasher.update(chunk)
    return hasher.hexdigest()


def files_under(source: str) -> Iterator[OnDisk]:
    """The files of a kind the index reads in a source (a folder, walked without hidden entries
    or symbolic links to folders; or one file)."""
    root = Path(source)
    if root.is_file():
        with contextlib.suppress(OSError):
            stat = root.stat()
            yield OnDisk(source, source, stat.st_size, stat.st_mtime_ns)
        return
    for folder, folders, names in os.walk(root, onerror=None):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or Path(name).suffix.lower() not in SUFFIXES:
                continue
            path = os.path.join(folder, name)  # noqa: PTH118 (a Path per file costs 10x, at 20,000 files)
            with contextlib.suppress(OSError):
                stat = os.stat(path)  # noqa: PTH116 (as above)
                yield OnDisk(path, source, stat.st_size, stat.st_mtime_ns)


class Refresh:
    """One refresh of an index: compare the disk with what is indexed, then read what changed."""

    def __init__(
        self,
        db: sqlite3.Connection,
        progress: Callable[[Progress], None] | None,
        should_stop: Callable[[], bool],
        pause: Callable[[], None],
    ) -> None:
        self.db = db
        self.progress = progress or (lambda _: None)
        self.should_stop = should_stop
        self.pause = pause
        self.report = Report()

    def run(self) -> Report:
        sources = [row[0] for row in self.db.execute("SELECT path FROM sources ORDER BY path")]
        on_disk = {file.path: file for source in sources for file in files_under(source)}
        known = {
            row[0]: row[1:] for row in self.db.execute("SELECT path, id, size, mtime_ns, digest FROM files")
        }
        skipped = {row[0]: row[1:] for row in self.db.execute("SELECT path, size, mtime_ns FROM skipped")}
        with transaction(self.db):
            self._forget_gone(on_disk, known, skipped, sources)
        to_read = [
            file for path, file in on_disk.items()
            if (known.get(path, (None, None, None))[1:3] != (file.size, file.mtime_ns))
            and skipped.get(path) != (file.size, file.mtime_ns)
        ]  # fmt: skip
        self.report.unchanged = len(on_disk) - len(to_read)
        gone = {row[3]: (path, row[0]) for path, row in known.items() if path not in on_disk}
        self._read(to_read, known, gone)
        return self.report

    def _forget_gone(
        self,
        on_disk: dict[str, OnDisk],
        known: dict[str, tuple[int, int, int, str]],
        skipped: dict[str, tuple[int, int]],
        sources: list[str],
    ) -> None:
        """Skip-list entries of files now gone, and files of sources no longer added (their
        passages go with them; gone files of added sources wait: they may have been renamed)."""
        for path in skipped.keys() - on_disk.keys():
            self.db.execute("DELETE FROM skipped WHERE path = ?", (path,))
        added = set(sources)
        for source in {row[0] for row in self.db.execute("SELECT DISTINCT source FROM files")} - added:
            self.report.removed += forget_source(self.db, source)

    def _read(
        self,
        to_read: list[OnDisk],
        known: dict[str, tuple[int, int, int, str]],
        gone: dict[str, tuple[str, int]],
    ) -> None:
        total, committed_at = len(to_read), time.monotonic()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for done, file in enumerate(to_read):
                if self.should_stop():
                    break
                self.progress(Progress(done, total, file.path))
                self._read_one(file, known.get(file.path), gone)
                if time.monotonic() - committed_at >= BATCH_S:
                    self.db.execute("COMMIT")
                    self.pause()
                    self.db.execute("BEGIN IMMEDIATE")
                    committed_at = time.monotonic()
            for _, file_id in gone.values():  # not found again under another name: deleted
                forget_file(self.db, file_id)
                self.report.removed += 1
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        self.progress(Progress(total, total, ""))

    def _read_one(
        self, file: OnDisk, known: tuple[int, int, int, str] | None, gone: dict[str, tuple[str, int]]
    ) -> None:
        try:
            digest = digest_of(Path(file.path))
        except OSError as error:
            self._skip(file, f"could not be read: {error.strerror or error}")
            return
        if known is not None and known[3] == digest:  # touched, not changed
            self._keep(file, known[0], digest)
            self.report.unchanged += 1
            return
        if known is None and digest in gone:  # renamed or moved: the same content
            _, file_id = gone.pop(digest)
            self.db.execute("DELETE FROM files WHERE path = ?", (file.path,))
            self.db.execute("UPDATE files SET path = ? WHERE id = ?", (file.path, file_id))
            self._keep(file, file_id, digest)
            self.report.renamed += 1
            return
        try:
            passages = read_passages(Path(file.path), file.size)
        except Unreadable as error:
            self._skip(file, str(error))
            return
        self._store(file, digest, passages, known[0] if known else None)
        self.report.bytes_read += file.size
        if known is None:
            self.report.indexed += 1
        else:
            self.report.updated += 1

    def _keep(self, file: OnDisk, file_id: int, digest: str) -> None:
        self.db.execute(
            "UPDATE files SET source = ?, size = ?, mtime_ns = ?, digest = ? WHERE id = ?",
            (file.source, file.size, file.mtime_ns, digest, file_id),
        )
        self.db.execute("DELETE FROM skipped WHERE path = ?", (file.path,))

    def _skip(self, file: OnDisk, reason: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO skipped VALUES (?, ?, ?, ?, ?)",
            (file.path, file.source, file.size, file.mtime_ns, reason),
        )
        row = self.db.execute("SELECT id FROM files WHERE path = ?", (file.path,)).fetchone()
        if row is not None:  # it was readable before: what it said is gone
            forget_file(self.db, row[0])
        self.report.skipped[file.path] = reason

    def _store(self, file: OnDisk, digest: str, passages: list[Passage], file_id: int | None) -> None:
        if file_id is not None:
            self.db.execute("DELETE FROM passages WHERE file_id = ?", (file_id,))
            self.db.execute(
                "UPDATE files SET source = ?, size = ?, mtime_ns = ?, digest = ?, passages = ?, indexed = ? "
                "WHERE id = ?",
                (file.source, file.size, file.mtime_ns, digest, len(passages), time.time(), file_id),
            )
        else:
            file_id = self.db.execute(
                "INSERT INTO files(path, source, size, mtime_ns, digest, passages, indexed) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (file.path, file.source, file.size, file.mtime_ns, digest, len(passages), time.time()),
            ).lastrowid
        self.db.execute("DELETE FROM skipped WHERE path = ?", (file.path,))
        self.db.executemany(
            "INSERT INTO passages(file_id, text, page, first_line, last_line) VALUES (?, ?, ?, ?, ?)",
            [(file_id, p.text, p.page, p.first_line, p.last_line) for p in passages],
        )
