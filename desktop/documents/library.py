"""The user's files as the chat and the tray see them: what was added, how far indexing is, what
matches a question. Reads and small writes only: the reading of files is the indexer's
(`indexer.py`, a child process of the app at low priority) or `foundry-desk files`'s.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from desktop.documents.embeddings import EmbeddingEndpoint, meaning_of
from desktop.documents.index import DocumentIndex, Hit, Source
from desktop.files import read_json


@dataclass(frozen=True)
class IndexingStatus:
    """What the app's indexer published last (`AppPaths.files_status_file`)."""

    state: str
    """"starting", "indexing" (`done` of `total` files read), "embedding" (`done` of `total`
    passages given a vector), "ready" (watching for changes)."""
    done: int = 0
    total: int = 0
    current: str = ""
    pid: int | None = None
    summary: str = ""
    """What its last refresh did, in words."""

    @classmethod
    def read(cls, file: Path) -> IndexingStatus | None:
        written = read_json(file)
        if not isinstance(written, dict):
            return None
        try:
            return cls(**{key: written[key] for key in cls.__dataclass_fields__ if key in written})
        except TypeError:
            return None

    @property
    def busy(self) -> bool:
        return self.state in ("indexing", "embedding") and self.total > 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FileLibrary:
    """One process's door to the index; safe to use from several threads."""

    SKIPPED_SHOWN = 200

    def __init__(self, index_file: Path, status_file: Path) -> None:
        self.index_file = index_file
        self.status_file = status_file
        self._index: DocumentIndex | None = None
        self._lock = threading.Lock()

    def _open(self) -> DocumentIndex:
        if self._index is None:
            self._index = DocumentIndex(self.index_file)
        return self._index

    def close(self) -> None:
        with self._lock:
            if self._index is not None:
                self._index.close()
                self._index = None

    def sources(self) -> list[Source]:
        with self._lock:
            return self._open().sources()

    def indexing(self) -> IndexingStatus | None:
        return IndexingStatus.read(self.status_file)

    def state(self) -> dict[str, Any]:
        """Everything a view of the user's files shows, as JSON."""
        with self._lock:
            index = self._open()
            sources = index.sources()
            skipped = index.skipped()
            files, passages = index.counts()
        indexing = self.indexing()
        return {
            "sources": [asdict(source) for source in sources],
            "files": files,
            "passages": passages,
            "skipped": [{"path": p, "reason": r} for p, r in list(skipped.items())[: self.SKIPPED_SHOWN]],
            "skipped_count": len(skipped),
            "indexing": indexing.to_json() if indexing else None,
        }

    def add(self, path: Path) -> str:
        """Add a folder or file; the indexer reads it. Raises SourceRefused with the reason."""
        with self._lock:
            return self._open().add(path)

    def remove(self, path: Path) -> str:
        with self._lock:
            return self._open().remove(path)[0]

    def request_refresh(self) -> None:
        with self._lock:
            self._open().request_refresh()

    def search(self, query: str, limit: int, endpoint: EmbeddingEndpoint | None = None) -> list[Hit]:
        """By words, and by meaning too when the runtime serves an embedding model (`endpoint`);
        by words alone when it cannot embed the query now."""
        meaning = meaning_of(query, endpoint)
        with self._lock:
            return self._open().search(query, limit, meaning)

    def is_indexed(self, path: str) -> bool:
        with self._lock:
            return self._open().is_indexed(path)
