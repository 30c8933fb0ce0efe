"""Benchmark of the file index and answers from files (not part of the test suite).

    .venv/bin/python -m tests.benchmark_files [--sizes 2000,20000] [--runs 10] [--work-dir DIR] [--json]

For each size, a generated folder of that many .txt/.md files of ~5 kB (tests/support/corpus.py):
the first refresh of a fresh index (MB/s of text read, files/s), a second refresh with nothing
changed, the median and p95 of 200 searches (limit 8, after 10 to warm up), and the index's size on
disk after it is closed (SQLite checkpoints the WAL into the database on the last close, so that is
the .sqlite3 alone; -wal and -shm are counted if any are left). The files were just written, so
they are read from the page cache. At the largest size, the time to first token from a real
runtime host serving a tiny model: the plain question (files off), and search + grounding + the
grounded question (files on), timed from before the search. Also at the largest size:

* answers while indexing: the streaming speed (tokens/s from the first to the last of a 400-token
  answer) of an endless tiny model with real compute per token (width 1024, depth 16), alone, then
  while the app's indexer process (as the app starts it, at the lowest priority) reads the folder
  into a new index; median of 3 each, interleaved;
* search by meaning: `VectorSearch` over one random unit vector of 1024 dimensions (what e.g.
  qwen3-embedding-0.6b gives) per passage: its build time and `nearest()`; then such vectors stored
  in the index (its growth on disk) and the hybrid `search(q, 8, Meaning(...))`.

At 2,000 files, the passages/s the app's indexer embeds through a runtime host serving the tests'
tiny embedding model (256 dimensions, almost no compute: the pipeline's overhead, not a model's).

Targets: indexing at least 10 MB/s, search median under 20 ms at 20,000 files, first token with
files on within 100 ms of files off.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import openai

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from desktop.chat import grounding
from desktop.config import Settings
from desktop.documents.embeddings import Meaning, VectorSearch, sketch_bytes
from desktop.documents.index import DocumentIndex
from desktop.documents.library import IndexingStatus
from desktop.documents.service import indexer_spec
from desktop.paths import AppPaths
from desktop.probe import wait_for
from desktop.process import process_alive
from desktop.runsecret import RunSecret
from desktop.runtime.service import RuntimeClient, runtime_spec
from desktop.runtime.status import RuntimeState, RuntimeStatus
from desktop.supervisor import ServiceState, Supervisor
from tests.conftest import free_port
from tests.support.corpus import bulk_queries, write_bulk
from tests.support.tiny_embedder import build_embedding_model
from tests.tinymodel import build_model

T = TypeVar("T")

MIN_MB_S = 10.0
MAX_QUERY_MEDIAN_MS = 20.0
MAX_GROUNDING_COST_MS = 100.0
CONTEXT = 4096
"""The context of the model whose source budget is used (a typical small local model)."""
MAX_TOKENS = 256
QUESTION = "What do my notes say about {}?"
ANSWER_TOKENS = 400
ANSWER_RUNS = 3
DIMENSIONS = 1024
"""Of a real embedding model's vectors (qwen3-embedding-0.6b)."""
EMBEDDING_SIZE = 2000
"""The size at which embedding through the runtime is measured."""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def on_disk_mb(database: Path) -> float:
    files = [database, *(database.with_name(database.name + end) for end in ("-wal", "-shm"))]
    return sum(f.stat().st_size for f in files if f.exists()) / 1e6


def measure_index(index: DocumentIndex, folder: Path) -> dict[str, float]:
    index.add(folder)
    started = time.perf_counter()
    report = index.refresh()
    seconds = time.perf_counter() - started
    assert not report.skipped, report.skipped
    started = time.perf_counter()
    again = index.refresh()
    unchanged_s = time.perf_counter() - started
    assert again.unchanged == report.indexed and again.bytes_read == 0, again
    queries = bulk_queries(count=210)
    for query in queries[:10]:
        index.search(query, limit=8)
    times = []
    for query in queries[10:]:
        started = time.perf_counter()
        index.search(query, limit=8)
        times.append((time.perf_counter() - started) * 1000)
    files, passages = index.counts()
    return {
        "files": files,
        "passages": passages,
        "mb_read": report.bytes_read / 1e6,
        "index_s": seconds,
        "index_mb_s": report.bytes_read / 1e6 / seconds,
        "index_files_s": report.indexed / seconds,
        "refresh_unchanged_s": unchanged_s,
        "query_median_ms": statistics.median(times),
        "query_p95_ms": percentile(times, 0.95),
    }


def wait(check: Callable[[], T | None], timeout_s: float, what: str, interval_s: float = 0.05) -> T:
    found = wait_for(check, timeout_s, interval_s)
    if not found:
        raise TimeoutError(f"no {what} within {timeout_s:.0f} s")
    return found


def start_host(root: Path, **settings: Any) -> tuple[Supervisor, RuntimeStatus, AppPaths]:
    """A runtime host, ready (with its embedding model loaded, when `settings` name one)."""
    paths = AppPaths.under(root).create()
    secret = RunSecret.create(paths.state_dir)
    config = Settings(runtime_port=free_port(), **settings)
    supervisor = Supervisor(runtime_spec(config, paths, secret), paths.log_dir)
    supervisor.start()
    try:
        supervisor.wait_for_state(ServiceState.RUNNING, timeout_s=60)
        status = RuntimeClient(paths.runtime_status_file, secret).wait(
            lambda s: s.state is RuntimeState.READY and s.pid == supervisor.status.pid
            and (not config.embedding_model or bool(s.embedding_model_id or s.embeddings_problem)),
            timeout_s=120,
        )  # fmt: skip
    except BaseException:
        stop(supervisor)
        raise
    return supervisor, status, paths


def start_indexer(paths: AppPaths, folder: Path) -> Supervisor:
    """The app's indexer process, started as the app starts it, with `folder` added to its index."""
    with DocumentIndex(paths.files_index_file) as index:
        index.add(folder)
    supervisor = Supervisor(indexer_spec(paths, {}), paths.log_dir)
    supervisor.start()
    return supervisor


def stop(supervisor: Supervisor) -> None:
    pid = supervisor.status.pid
    supervisor.stop()
    assert pid is None or not process_alive(pid), f"process {pid} outlived its supervisor's stop"


def published(paths: AppPaths, state: str, least_done: int = 0) -> IndexingStatus | None:
    """The indexer's status, if it is in `state` with at least `least_done` done."""
    status = IndexingStatus.read(paths.files_status_file)
    return status if status is not None and status.state == state and status.done >= least_done else None


def first_token_ms(client: openai.OpenAI, model: str, index: DocumentIndex | None, question: str) -> float:
    """Ms from before the search (files on) or the request (files off) to the first answer token."""
    started = time.perf_counter()
    prompt = question
    if index is not None:
        hits = index.search(question, grounding.SEARCHED)
        grounded = grounding.ground(question, hits, grounding.source_budget(CONTEXT, MAX_TOKENS))
        assert grounded is not None, "no passage found for the question"
        prompt = grounded.prompt
    first = None
    for chunk in client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": Settings().system_prompt},
            {"role": "user", "content": prompt},
        ],
        max_tokens=16,
        stream=True,
    ):
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter()
    assert first is not None, "no answer token"
    return (first - started) * 1000


def measure_first_token(index: DocumentIndex, root: Path, runs: int) -> dict[str, float]:
    # One token per byte (the tiny model's tokenizer): room for a 4096-token model's sources.
    model = build_model(root / "model", "The notes say little.", context_length=4 * CONTEXT)
    supervisor, status, _ = start_host(root / "app", model_path=model)
    try:
        client = openai.OpenAI(base_url=status.base_url, api_key="unused", max_retries=0, timeout=60)
        questions = [QUESTION.format(q) for q in bulk_queries(seed=2, count=runs + 1)]
        model_id = status.model_id or ""
        samples: dict[str, list[float]] = {"off": [], "on": []}
        for number, question in enumerate(questions):  # interleaved; the first is a warm-up
            off = first_token_ms(client, model_id, None, question)
            on = first_token_ms(client, model_id, index, question)
            if number:
                samples["off"].append(off)
                samples["on"].append(on)
    finally:
        stop(supervisor)
    result = {f"first_token_{kind}_ms": statistics.median(times) for kind, times in samples.items()}
    return {**result, "first_token_added_ms": result["first_token_on_ms"] - result["first_token_off_ms"]}


def tokens_s(client: openai.OpenAI, model: str) -> float:
    """Tokens/s of a 400-token answer, from its first token to its last (one chunk per token)."""
    times = [time.perf_counter() for chunk in client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Go on."}], max_tokens=ANSWER_TOKENS, stream=True
    ) if chunk.choices and chunk.choices[0].delta.content]  # fmt: skip
    assert len(times) >= ANSWER_TOKENS - 2, f"{len(times)} tokens of {ANSWER_TOKENS}"
    return (len(times) - 1) / (times[-1] - times[0])


def measure_answers_while_indexing(folder: Path, work: Path) -> dict[str, Any]:
    model = build_model(work / "model", " and so on", endless=True, width=1024, depth=16, context_length=4096)
    host, status, paths = start_host(work / "host", model_path=model)  # the indexer sees it, as in the app
    samples: dict[str, list[float]] = {"alone": [], "indexing": [], "files_read": [], "overlapped": []}
    try:
        client = openai.OpenAI(base_url=status.base_url, api_key="unused", max_retries=0, timeout=120)
        answer = functools.partial(tokens_s, client, status.model_id or "")
        answer()  # warm-up
        for _ in range(ANSWER_RUNS):  # interleaved
            samples["alone"].append(answer())
            for stale in paths.files_index_file.parent.glob("*"):  # a new index each run
                stale.unlink()
            paths.files_status_file.unlink(missing_ok=True)
            indexer = start_indexer(paths, folder)
            try:
                before = wait(lambda: published(paths, "indexing", 1), 300, "indexing")
                samples["indexing"].append(answer())
                after = published(paths, "indexing")  # None: done before the answer was
                samples["files_read"].append((after.done if after else before.total) - before.done)
                samples["overlapped"].append(after is not None)
            finally:
                stop(indexer)
    finally:
        stop(host)
    alone, indexing = (statistics.median(samples[kind]) for kind in ("alone", "indexing"))
    return {"answer_alone_tokens_s": alone, "answer_indexing_tokens_s": indexing, "answer_slowdown_pct":
            100 * (1 - indexing / alone), "files_read_during_answer": samples["files_read"],
            "answers_ended_while_indexing": sum(samples["overlapped"])}  # fmt: skip


def unit_vectors(rng: np.random.Generator, count: int) -> list[array[float]]:
    values = rng.standard_normal((count, DIMENSIONS), dtype=np.float32)
    values /= np.linalg.norm(values, axis=1, keepdims=True)
    return [array("f", row.tobytes()) for row in values]


def times_ms(call: Callable[[], object], count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def measure_meaning(database: Path, passages: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    vectors = dict(enumerate(unit_vectors(rng, passages)))
    started = time.perf_counter()
    search = VectorSearch([(number, sketch_bytes(vector)) for number, vector in vectors.items()])
    build_s = time.perf_counter() - started
    queries = iter(unit_vectors(rng, 50))
    nearest = times_ms(lambda: search.nearest(next(queries), lambda ids: {i: vectors[i] for i in ids}), 50)
    vectors.clear()
    before, model = on_disk_mb(database), "random-1024"
    with DocumentIndex(database) as index:
        started = time.perf_counter()
        while batch := index.missing_vectors(model, 2000):
            ids = [passage_id for passage_id, _ in batch]
            index.store_vectors(model, list(zip(ids, unit_vectors(rng, len(ids)), strict=True)))
        store_s = time.perf_counter() - started
        meanings = iter(zip(bulk_queries(seed=3, count=51), unit_vectors(rng, 51), strict=True))
        hybrid = times_ms(lambda: index.search((q := next(meanings))[0], 8, Meaning(model, q[1])), 51)
    return {"vector_passages": passages, "vector_build_s": build_s, "vectors_store_s": store_s,
            "nearest_median_ms": statistics.median(nearest), "nearest_p95_ms": percentile(nearest, 0.95),
            "hybrid_first_ms": hybrid[0], "hybrid_median_ms": statistics.median(hybrid[1:]), "hybrid_p95_ms":
            percentile(hybrid[1:], 0.95), "vectors_on_disk_mb": on_disk_mb(database) - before}  # fmt: skip


def measure_embedding(folder: Path, work: Path) -> dict[str, float]:
    chat = build_model(work / "chat", "Fine.")
    embedder = build_embedding_model(work / "embedder", dim=256)
    host, status, paths = start_host(work / "app", model_path=chat, embedding_model=str(embedder))
    try:
        model = status.embedding_model_id
        assert model, f"no embedding model served: {status.embeddings_problem}"
        indexer = start_indexer(paths, folder)
        try:
            first = wait(lambda: published(paths, "embedding"), 300, "embedding", 0.01)
            started = time.perf_counter()
            with DocumentIndex(paths.files_index_file) as index:
                wait(lambda: index.count_missing_vectors(model) == 0, 600, "end of embedding")
            seconds = time.perf_counter() - started
        finally:
            stop(indexer)
    finally:
        stop(host)
    return {"embedded_passages": first.total, "embed_s": seconds, "embed_passages_s": first.total / seconds}


def verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def run(sizes: list[int], runs: int, work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"sizes": {}}
    for size in sizes:
        folder, database = work / f"files-{size}", work / f"index-{size}" / "index.sqlite3"
        write_bulk(folder, size)
        index = DocumentIndex(database)
        try:
            numbers = measure_index(index, folder)
            if size == max(sizes):
                results.update(measure_first_token(index, work / "runtime", runs))
        finally:
            index.close()
        numbers["index_on_disk_mb"] = on_disk_mb(database)
        results["sizes"][str(size)] = numbers
        if size == EMBEDDING_SIZE:
            results["embedding"] = measure_embedding(folder, work / "embedding")
        if size == max(sizes):
            results["indexing"] = measure_answers_while_indexing(folder, work / "while-indexing")
            results["meaning"] = measure_meaning(database, int(numbers["passages"]))
    return results


def print_table(results: dict[str, Any]) -> None:
    print(f"{'files':>7} {'MB':>7} {'MB/s':>7} {'files/s':>8} {'unchanged s':>11} "
          f"{'q median ms':>11} {'q p95 ms':>8} {'index MB':>8}")  # fmt: skip
    for size, n in results["sizes"].items():
        print(
            f"{size:>7} {n['mb_read']:>7.1f} {n['index_mb_s']:>7.1f} {n['index_files_s']:>8.0f} "
            f"{n['refresh_unchanged_s']:>11.3f} {n['query_median_ms']:>11.2f} {n['query_p95_ms']:>8.2f} "
            f"{n['index_on_disk_mb']:>8.1f}"
        )
    largest = results["sizes"][max(results["sizes"], key=int)]
    slowest = min(n["index_mb_s"] for n in results["sizes"].values())
    print(
        f"indexing >= {MIN_MB_S:.0f} MB/s: {slowest:.1f} MB/s at the slowest, {verdict(slowest >= MIN_MB_S)}"
    )
    median = largest["query_median_ms"]
    print(
        f"search median < {MAX_QUERY_MEDIAN_MS:.0f} ms at {largest['files']} files: {median:.2f} ms, "
        f"{verdict(median < MAX_QUERY_MEDIAN_MS)}"
    )
    if "first_token_added_ms" in results:
        added = results["first_token_added_ms"]
        print(
            f"first token: files off {results['first_token_off_ms']:.1f} ms, files on "
            f"{results['first_token_on_ms']:.1f} ms, added {added:.1f} ms "
            f"(target <= {MAX_GROUNDING_COST_MS:.0f} ms): {verdict(added <= MAX_GROUNDING_COST_MS)}"
        )
    if "indexing" in results:
        n = results["indexing"]
        print(
            f"answers while the indexer reads {largest['files']} files (median of {ANSWER_RUNS}): alone "
            f"{n['answer_alone_tokens_s']:.1f} tokens/s, while indexing {n['answer_indexing_tokens_s']:.1f} "
            f"tokens/s, slowdown {n['answer_slowdown_pct']:.1f} % (files the indexer read during each "
            f"answer: {', '.join(map(str, n['files_read_during_answer']))}; still indexing when it ended: "
            f"{n['answers_ended_while_indexing']} of {ANSWER_RUNS})"
        )
    if "meaning" in results:
        n = results["meaning"]
        print(
            f"search by meaning, {n['vector_passages']} passages x {DIMENSIONS} dims: VectorSearch built in "
            f"{n['vector_build_s']:.1f} s, nearest() median {n['nearest_median_ms']:.1f} ms, p95 "
            f"{n['nearest_p95_ms']:.1f} ms; vectors stored in {n['vectors_store_s']:.1f} s, index +"
            f"{n['vectors_on_disk_mb']:.0f} MB on disk; hybrid search median {n['hybrid_median_ms']:.1f} ms, "
            f"p95 {n['hybrid_p95_ms']:.1f} ms (the first, loading the vectors: {n['hybrid_first_ms']:.0f} ms)"
        )
    if "embedding" in results:
        n = results["embedding"]
        print(
            f"embedding through the runtime at {EMBEDDING_SIZE} files: {n['embedded_passages']} passages in "
            f"{n['embed_s']:.1f} s, {n['embed_passages_s']:.0f} passages/s (the tests' tiny embedder does "
            "almost no compute: this is the pipeline's overhead, not a real model's speed)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,20000", help="file counts, comma-separated")
    parser.add_argument("--runs", type=int, default=10, help="first-token measurements of each kind")
    parser.add_argument("--work-dir", type=Path, help="where the files and index go (default: a temp folder)")
    parser.add_argument("--json", action="store_true", help="also print all numbers as JSON")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.work_dir:
        args.work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="foundry-desk-files-", dir=args.work_dir) as temp:
        results = run(sizes, args.runs, Path(temp))
    print_table(results)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
