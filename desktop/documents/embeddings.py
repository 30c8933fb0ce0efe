"""Passages found by meaning: vectors from the runtime's embedding model (when one is configured,
`embedding_model`), searched in memory and fused with the ranking by words.

The vectors come from the runtime's OpenAI-compatible `/embeddings`, the same endpoint the chat
uses, so no second model is loaded anywhere. They are searched without numpy (which the app does
not ship): each vector's signs are packed into one integer (its sketch, stored beside it), the
nearest sketches by Hamming distance are found with `int.bit_count` (about 40 ms for 140,000
passages of 1,024 dimensions), and those are ranked by the cosine of their vectors.
The two rankings, by words (BM25) and by meaning, are fused by reciprocal rank (Cormack et al.,
2009; weighted, `MEANING_WEIGHT`): no scores to calibrate between them.
"""

from __future__ import annotations

import heapq
import logging
import math
import operator
import sys
import urllib.error
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from desktop.errors import FoundryDeskError
from desktop.probe import http_post_json
from desktop.runtime.status import RuntimeState, RuntimeStatus, read_status

log = logging.getLogger(__name__)

EMBED_BATCH = 32
"""Passages per request: larger batches gain little, and one over-long text fails its batch."""
MAX_EMBED_CHARS = 2000
"""A passage is cut here before it is embedded (its start says what it is about)."""
CANDIDATES = 50
"""How many passages each ranking brings to the fusion."""
SHORTLIST = 4 * CANDIDATES
"""How many nearest by Hamming distance are ranked by cosine."""
QUERY_TIMEOUT_S = 10.0
RRF_K = 60
"""Reciprocal rank fusion's constant: a passage's fused score is the sum of weight / (60 + rank)."""
MEANING_WEIGHT = 0.5
"""The ranking by meaning counts half as much as the one by words: questions about one's own
documents name things (people, places, numbers) that words match exactly, and an embedding
model may know little of them; meaning adds what no word matches. Measured with the tests'
embedding model on their 50 documents: at 64 dimensions, equal weights pushed 8 of 50 answering
files out of the best 8 passages, half weight 2; at 256, half weight put 27 of 50 first, equal
weights 18."""


class EmbeddingFailed(FoundryDeskError, RuntimeError):
    """The runtime did not give the vectors; the message says why."""


@dataclass(frozen=True)
class EmbeddingEndpoint:
    """The runtime's embedding model, where it is served."""

    url: str
    """OpenAI-compatible base URL, ending in /v1."""
    model: str

    @classmethod
    def of(cls, status: RuntimeStatus | None) -> EmbeddingEndpoint | None:
        """The embedding model a runtime status says is served, if any."""
        if status is None or status.state in (RuntimeState.STOPPED, RuntimeState.FAILED):
            return None
        if not status.embeddings_url or not status.embedding_model_id:
            return None
        return cls(status.embeddings_url, status.embedding_model_id)

    @classmethod
    def published(cls, status_file: Path) -> EmbeddingEndpoint | None:
        return cls.of(read_status(status_file))

    def embed(self, texts: Sequence[str], timeout_s: float = 120.0) -> list[array[float]]:
        """One vector per text, in order. Raises EmbeddingFailed."""
        body = {"model": self.model, "input": [text[:MAX_EMBED_CHARS] for text in texts]}
        try:
            answer = http_post_json(f"{self.url}/embeddings", body, timeout_s=timeout_s)
            data = sorted(answer["data"], key=operator.itemgetter("index"))
            vectors = [normalized(item["embedding"]) for item in data]
        except urllib.error.HTTPError as error:
            raise EmbeddingFailed(f"the runtime refused ({error.code}): {error.read()[:300]!r}") from error
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise EmbeddingFailed(f"no vectors from the runtime: {error}") from error
        if len(vectors) != len(texts):
            raise EmbeddingFailed(f"{len(vectors)} vectors for {len(texts)} texts")
        return vectors


@dataclass(frozen=True)
class Meaning:
    """A query's vector, and the embedding model that made it."""

    model: str
    vector: array[float]


def meaning_of(query: str, endpoint: EmbeddingEndpoint | None) -> Meaning | None:
    """The query's vector, when an embedding model is served and answers now (else the index is
    searched by words only, and the log says why)."""
    if endpoint is None:
        return None
    try:
        return Meaning(endpoint.model, endpoint.embed([query], timeout_s=QUERY_TIMEOUT_S)[0])
    except EmbeddingFailed as error:
        log.warning("searching by words only: %s", error)
        return None


def normalized(values: Sequence[float]) -> array[float]:
    vector = array("f", values)
    norm = math.sqrt(math.fsum(x * x for x in vector)) or 1.0
    return array("f", (x / norm for x in vector))


SIGN_BYTE = 3 if sys.byteorder == "little" else 0
"""The byte of a float32 that holds its sign (in its top bit)."""
SIGNS_AS_DIGITS = bytes(ord("1") if byte >= 0x80 else ord("0") for byte in range(256))
"""Maps that byte to the digit "1" for a negative number, "0" otherwise."""


def sketch_of(vector: array[float]) -> int:
    """The signs of a vector's values as the bits of one integer, the sketch that Hamming distance
    compares: made by slicing and translating bytes, and parsed once (C speed, not a Python loop
    over 1,024 values)."""
    digits = vector.tobytes()[SIGN_BYTE::4].translate(SIGNS_AS_DIGITS)
    return int(digits, 2) if digits else 0


def sketch_bytes(vector: array[float]) -> bytes:
    """`sketch_of` as stored beside the vector."""
    return sketch_of(vector).to_bytes((len(vector) + 7) // 8, "little")


class VectorSearch:
    """The sketches of one embedding model's vectors, in memory (about 25 MB for 140,000 passages
    of 1,024 dimensions; the vectors themselves, 570 MB, stay in the index)."""

    def __init__(self, rows: Sequence[tuple[int, bytes]]) -> None:
        self.ids = [passage_id for passage_id, _ in rows]
        self.sketches = [int.from_bytes(sketch, "little") for _, sketch in rows]

    def nearest(
        self,
        query: array[float],
        vectors_of: Callable[[list[int]], dict[int, array[float]]],
        limit: int = CANDIDATES,
    ) -> list[tuple[int, float]]:
        """The `limit` passages nearest to `query` (id, cosine), nearest first: a shortlist by
        Hamming distance of the sketches, ranked by cosine of the vectors (`vectors_of` reads them)."""
        if not self.ids:
            return []
        sketch = sketch_of(query)
        distances = [(other ^ sketch).bit_count() for other in self.sketches]
        shortlist = heapq.nsmallest(SHORTLIST, range(len(distances)), key=distances.__getitem__)
        vectors = vectors_of([self.ids[i] for i in shortlist])
        scored = [
            (passage_id, math.fsum(map(operator.mul, vector, query)))
            for passage_id, vector in vectors.items()
        ]
        scored.sort(key=operator.itemgetter(1), reverse=True)
        return scored[:limit]


def fuse(by_words: Sequence[int], by_meaning: Sequence[int]) -> list[tuple[int, float]]:
    """Weighted reciprocal rank fusion of two rankings of passage ids: (id, fused score), best first."""
    scores: dict[int, float] = {}
    for ranking, weight in ((by_words, 1.0), (by_meaning, MEANING_WEIGHT)):
        for rank, passage_id in enumerate(ranking, start=1):
            scores[passage_id] = scores.get(passage_id, 0.0) + weight / (RRF_K + rank)
    return sorted(scores.items(), key=operator.itemgetter(1), reverse=True)
