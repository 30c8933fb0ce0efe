"""The index of the user's files: which folders and files are in it, their passages, and a
full-text index of the passages (SQLite FTS5, ranked by BM25).

One SQLite file in the app's data folder, in WAL mode: the running app reads it while
`foundry-desk files add` writes it, and the other process sees each change once committed.
A refresh (`refresh.py`) reads only what changed on disk. Writers take turns through a lock file,
so two refreshes never read the same files twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from desktop import compat
from desktop.documents.embeddings import CANDIDATES, Meaning, VectorSearch, fuse, sketch_bytes
from desktop.documents.reading import SUFFIXES
from desktop.documents.refresh import Progress, Refresh, Report, forget_source, transaction
from desktop.errors import FoundryDeskError
from desktop.files import set_aside

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS sources(path TEXT PRIMARY KEY, added REAL NOT NULL);
CREATE TABLE IF NOT EXISTS requests(what TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS files(
    id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, source TEXT NOT NULL,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, digest TEXT NOT NULL,
    passages INTEGER NOT NULL, indexed REAL NOT NULL);
CREATE INDEX IF NOT EXISTS files_by_source ON files(source);
CREATE TABLE IF NOT EXISTS skipped(
    path TEXT PRIMARY KEY, source TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS passages(
    id INTEGER PRIMARY KEY, file_id INTEGER NOT NULL, text TEXT NOT NULL,
    page INTEGER, first_line INTEGER, last_line INTEGER);
CREATE INDEX IF NOT EXISTS passages_by_file ON passages(file_id);
CREATE VIRTUAL TABLE IF NOT EXISTS passages_fts USING fts5(
    text, content='passages', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2');
-- Fewer, larger merges of the full-text index's segments while writing (+30 % indexing speed).
INSERT INTO passages_fts(passages_fts, rank) VALUES ('crisismerge', 64);
INSERT INTO passages_fts(passages_fts, rank) VALUES ('automerge', 8);
CREATE TRIGGER IF NOT EXISTS passages_added AFTER INSERT ON passages BEGIN
    INSERT INTO passages_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TABLE IF NOT EXISTS vectors(
    passage_id INTEGER PRIMARY KEY, model TEXT NOT NULL, sketch BLOB NOT NULL, vector BLOB NOT NULL);
CREATE TRIGGER IF NOT EXISTS passages_removed AFTER DELETE ON passages BEGIN
    INSERT INTO passages_fts(passages_fts, rowid, text) VALUES ('delete', old.id, old.text);
    DELETE FROM vectors WHERE passage_id = old.id;
END;
"""
CACHE_KB = 64 * 1024
"""SQLite's page cache while writing: the full-text index merges its segments in memory (+15 %)."""
VECTORS_STALE_S = 5.0
"""How old the sketches a search by meaning uses may be while the index changes (passages added
meanwhile are found by words at once, by meaning within this time)."""
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "that",
        "the",
        "their",
        "there",
        "these",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)
"""Words left out of a query: they are in nearly every passage, so they rank nothing and would
make every query read the whole index."""
WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Hit:
    """A passage that matches a query."""

    path: str
    score: float
    """Higher is better (BM25, or the fused rank of a hybrid search)."""
    text: str
    page: int | None
    lines: tuple[int, int] | None
    passage_id: int

    @property
    def where(self) -> str:
        """Where the passage is, for people: "page 2", "lines 10-24"."""
        if self.page is not None:
            return f"page {self.page}"
        if self.lines is not None:
            first, last = self.lines
            return f"line {first}" if first == last else f"lines {first}-{last}"
        return ""

    def to_json(self) -> dict[str, object]:
        located: dict[str, object] = {"page": self.page} if self.page is not None else {}
        if self.lines is not None:
            located["lines"] = list(self.lines)
        return {"path": self.path, "score": round(self.score, 6), "text": self.text, **located}


@dataclass(frozen=True)
class Source:
    """A folder or file the user added, and what the index holds of it."""

    path: str
    files: int
    passages: int
    skipped: int
    exists: bool


@dataclass(frozen=True)
class CachedVectors:
    """The sketches of one model's vectors as read at `version` of the index."""

    model: str
    version: tuple[int, int]
    read_at: float
    search: VectorSearch


class SourceRefused(FoundryDeskError, ValueError):
    """A path that cannot be added or removed; the message says why."""


class DocumentIndex:
    """The index in `database` (created on first use, the user's alone)."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.set_aside: Path | None = None
        """Where an index that SQLite could not read was moved (it was started afresh)."""
        self._vectors: CachedVectors | None = None
        database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self._db = self._connect()
        except sqlite3.DatabaseError as error:  # not a database, or damaged: nothing in it is lost
            log.warning("the index %s cannot be read (%s): starting a new one", database, error)
            self.set_aside = set_aside(database)
            for end in ("-wal", "-shm"):
                database.with_name(database.name + end).unlink(missing_ok=True)
            self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.database, timeout=60.0, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA cache_size=-{CACHE_KB}")
            db.executescript(f"BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> DocumentIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def lock_file(self) -> Path:
        return self.database.with_name(self.database.name + ".lock")

    def changes_seen(self) -> int:
        """A number that changes whenever another process commits to the index (cheap to ask)."""
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def _write(self) -> contextlib.AbstractContextManager[None]:
        return transaction(self._db)

    # -- what the user added -------------------------------------------------------------------

    def add(self, path: Path) -> str:
        """Add a folder or file (read by the next refresh); its absolute path."""
        resolved = path.expanduser().resolve()
        if not resolved.exists():
            raise SourceRefused(f"{path} does not exist.")
        if not (resolved.is_dir() or resolved.is_file()):
            raise SourceRefused(f"{path} is neither a folder nor a file.")
        if resolved.is_file() and resolved.suffix.lower() not in SUFFIXES:
            raise SourceRefused(f"{path}: only {', '.join(sorted(SUFFIXES))} files are indexed.")
        if not os.access(resolved, os.R_OK | (os.X_OK if resolved.is_dir() else 0)):
            raise SourceRefused(f"{path} cannot be read: you have no permission to read it.")
        with self._write():
            self._db.execute("INSERT OR IGNORE INTO sources VALUES (?, ?)", (str(resolved), time.time()))
        return str(resolved)

    def remove(self, path: Path) -> tuple[str, int]:
        """Take a folder or file the user added out of the index, with all it holds: its path and
        how many files left the index."""
        wanted = str(path.expanduser().resolve())
        if wanted not in self.source_paths():
            raise SourceRefused(f"{path} is not in the index.")
        with self._write():
            removed = forget_source(self._db, wanted)
            self._db.execute("DELETE FROM sources WHERE path = ?", (wanted,))
        return wanted, removed

    def request_refresh(self) -> None:
        """Ask the app's indexer to refresh now (it sees every commit to the index)."""
        with self._write():
            self._db.execute("INSERT OR REPLACE INTO requests VALUES ('refresh', ?)", (time.time(),))

    def source_paths(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT path FROM sources ORDER BY path")]

    def sources(self) -> list[Source]:
        counts = {
            row[0]: row[1:]
            for row in self._db.execute("SELECT source, count(*), sum(passages) FROM files GROUP BY source")
        }
        skipped = dict(self._db.execute("SELECT source, count(*) FROM skipped GROUP BY source").fetchall())
        return [
            Source(
                path,
                counts.get(path, (0, 0))[0],
                counts.get(path, (0, 0))[1] or 0,
                skipped.get(path, 0),
                Path(path).exists(),
            )
            for path in self.source_paths()
        ]

    def skipped(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT path, reason FROM skipped ORDER BY path").fetchall())

    def counts(self) -> tuple[int, int]:
        """Files and passages in the index."""
        files, passages = self._db.execute(
            "SELECT count(*), coalesce(sum(passages), 0) FROM files"
        ).fetchone()
        return int(files), int(passages)

    def is_indexed(self, path: str) -> bool:
        """Whether `path` is a file in the index (the only files the chat may open)."""
        return self._db.execute("SELECT 1 FROM files WHERE path = ?", (path,)).fetchone() is not None

    # -- keeping up with the disk --------------------------------------------------------------

    def refresh(
        self,
        progress: Callable[[Progress], None] | None = None,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        pause: Callable[[], None] = lambda: None,
    ) -> Report:
        """Bring the index in line with the files on disk; only what changed is read. Waits for
        another process's refresh to end first (its work is then not done again). `pause` is
        called between batches, with nothing locked: it may wait (the app's indexer waits there
        while the model answers)."""
        with self._refresh_lock():
            return Refresh(self._db, progress, should_stop, pause).run()

    @contextlib.contextmanager
    def _refresh_lock(self) -> Iterator[None]:
        with open(self.lock_file, "a+") as stream:
            while not compat.try_lock(stream):
                time.sleep(0.2)  # another process refreshes: files it reads are not read twice
            yield

    # -- vectors (embeddings.py) ---------------------------------------------------------------

    def missing_vectors(self, model: str, limit: int) -> list[tuple[int, str]]:
        """Passages that have no vector of `model` yet: (id, text)."""
        return self._db.execute(
            "SELECT p.id, p.text FROM passages p LEFT JOIN vectors v ON v.passage_id = p.id "
            "WHERE v.passage_id IS NULL OR v.model != ? LIMIT ?",
            (model, limit),
        ).fetchall()

    def count_missing_vectors(self, model: str) -> int:
        return int(
            self._db.execute(
                "SELECT count(*) FROM passages p LEFT JOIN vectors v ON v.passage_id = p.id "
                "WHERE v.passage_id IS NULL OR v.model != ?",
                (model,),
            ).fetchone()[0]
        )

    def store_vectors(self, model: str, vectors: list[tuple[int, array[float]]]) -> None:
        """Keep the vectors of passages (those removed meanwhile are left out)."""
        with self._write():
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors SELECT ?, ?, ?, ? "
                "WHERE EXISTS (SELECT 1 FROM passages WHERE id = ?)",
                [
                    (passage_id, model, sketch_bytes(vector), vector.tobytes(), passage_id)
                    for passage_id, vector in vectors
                ],
            )

    def _vector_search(self, model: str) -> VectorSearch:
        """The sketches of `model`'s vectors: read again when the index changed, at most every
        `VECTORS_STALE_S` (the indexer commits twice a second while it embeds)."""
        cached = self._vectors
        if cached is not None and cached.model == model:
            if time.monotonic() - cached.read_at < VECTORS_STALE_S:
                return cached.search
            if cached.version == (self.changes_seen(), self._db.total_changes):
                return cached.search
        version = (self.changes_seen(), self._db.total_changes)
        rows = self._db.execute("SELECT passage_id, sketch FROM vectors WHERE model = ?", (model,)).fetchall()
        self._vectors = CachedVectors(model, version, time.monotonic(), VectorSearch(rows))
        return self._vectors.search

    def _vectors_of(self, passage_ids: list[int]) -> dict[int, array[float]]:
        places = ", ".join("?" * len(passage_ids))
        rows = self._db.execute(
            f"SELECT passage_id, vector FROM vectors WHERE passage_id IN ({places})", passage_ids
        )
        return {passage_id: array("f", blob) for passage_id, blob in rows}

    # -- searching -----------------------------------------------------------------------------

    def search(self, query: str, limit: int = 10, meaning: Meaning | None = None) -> list[Hit]:
        """The passages that best match `query`, best first: by BM25, or, with `meaning` (the
        query's vector and the model that made it), by BM25 and by meaning, fused."""
        if meaning is None:
            return self._hits(self._best_by_words(query, limit))
        by_words = list(self._best_by_words(query, CANDIDATES))
        nearest = self._vector_search(meaning.model).nearest(meaning.vector, self._vectors_of)
        by_meaning = [passage_id for passage_id, _ in nearest]
        return self._hits(dict(fuse(by_words, by_meaning)[:limit]))

    def _best_by_words(self, query: str, limit: int) -> dict[int, float]:
        """The best `limit` passages by BM25 (id: score, best first), from the full-text index
        alone: their text is read only for those that are shown (joined before the sort, every
        matching passage's text would be read: 3x slower at 20,000 files)."""
        expression = match_expression(query)
        if not expression:
            return {}
        rows = self._db.execute(
            "SELECT rowid, -bm25(passages_fts) FROM passages_fts WHERE passages_fts MATCH ? "
            "ORDER BY bm25(passages_fts) LIMIT ?",
            (expression, limit),
        )
        return dict(rows.fetchall())

    def _hits(self, scores: dict[int, float]) -> list[Hit]:
        """The passages with these ids, with their files, best score first."""
        if not scores:
            return []
        rows = self._db.execute(
            "SELECT f.path, 0.0, p.text, p.page, p.first_line, p.last_line, p.id FROM passages p "
            f"JOIN files f ON f.id = p.file_id WHERE p.id IN ({', '.join('?' * len(scores))})",
            list(scores),
        ).fetchall()
        hits = [replace(hit_of(row), score=scores[row[-1]]) for row in rows]
        return sorted(hits, key=lambda hit: hit.score, reverse=True)


def hit_of(row: tuple[str, float, str, int | None, int | None, int | None, int]) -> Hit:
    path, score, text, page, first, last, passage_id = row
    lines = (first, last) if first is not None and last is not None else None
    return Hit(path, score, text, page, lines, passage_id)


def match_expression(query: str) -> str:
    """An FTS5 query for the words of `query`: any of them (ranked by BM25), each quoted, so that
    what the user typed is never read as FTS5 syntax."""
    words = [word for word in WORD.findall(query.lower()) if word not in STOP_WORDS]
    if not words:  # only common words: search for them after all
        words = WORD.findall(query.lower())
    return " OR ".join(f'"{word}"' for word in dict.fromkeys(words))
