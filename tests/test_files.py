"""Your files: real documents (text, Markdown, HTML, PDF, Word) indexed by the real command line
and by the app's indexer process, searched as the chat searches them."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop.config import Settings
from desktop.documents.index import DocumentIndex
from desktop.documents.library import FileLibrary, IndexingStatus
from desktop.documents.service import indexer_spec
from desktop.paths import AppPaths
from desktop.probe import wait_for
from desktop.process import process_alive
from desktop.runsecret import RunSecret
from desktop.runtime.service import RuntimeClient, runtime_spec
from desktop.runtime.status import RuntimeState
from desktop.supervisor import RestartPolicy, ServiceState, Supervisor
from tests.conftest import TinyModels, app_command, free_port, not_private
from tests.support import corpus
from tests.support.corpus import Fact
from tests.support.tiny_embedder import build_embedding_model


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Fact]]:
    folder = tmp_path_factory.mktemp("documents")
    return folder, corpus.write_corpus(folder, count=60)


def files_command(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`foundry-desk files …` as a user runs it, with the app's folders under `home`."""
    return app_command(home, "files", *args)


def test_questions_find_the_one_file_that_answers_them(
    tmp_path: Path, documents: tuple[Path, list[Fact]]
) -> None:
    folder, facts = documents
    added = files_command(tmp_path, "add", str(folder))
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines()[-1] == (
        f"{len(facts)} indexed, 0 updated, 0 renamed, 0 removed, 0 skipped, 0 unchanged"
    )
    index_file = AppPaths.under(tmp_path).files_index_file
    assert not_private(index_file.parent) == []

    ranks = []
    with DocumentIndex(index_file) as index:
        for fact in facts:
            paths = [hit.path for hit in index.search(fact.question, limit=3)]
            assert str(fact.path) in paths, (fact.question, paths)
            ranks.append(paths.index(str(fact.path)))
    first = ranks.count(0) / len(ranks)
    assert first >= 0.9, f"the answering file came first for {first:.0%} of the questions"

    kinds = {fact.path.suffix for fact in facts}
    assert kinds == {".txt", ".md", ".html", ".pdf", ".docx"}
    for suffix in kinds:  # one question per kind through the command line, as a script asks
        fact = next(f for f in facts if f.path.suffix == suffix)
        found = files_command(tmp_path, "search", fact.question, "--limit", "3", "--json")
        assert found.returncode == 0, found.stderr
        best = json.loads(found.stdout)[0]
        assert best["path"] == str(fact.path)
        assert fact.answer in best["text"]
        assert isinstance(best["score"], float)
        if fact.page is not None:
            assert best["page"] == fact.page
        elif fact.line is not None:
            first_line, last_line = best["lines"]
            assert first_line <= fact.line <= last_line
        else:  # a Word document: its paragraphs count as lines
            assert len(best["lines"]) == 2


def test_script_and_style_of_a_web_page_are_not_indexed(
    tmp_path: Path, documents: tuple[Path, list[Fact]]
) -> None:
    folder, _ = documents
    with DocumentIndex(tmp_path / "index.sqlite3") as index:
        index.add(folder)
        index.refresh()
        assert index.search(corpus.SCRIPT_DECOY) == []
        assert index.search(corpus.STYLE_DECOY) == []


def test_the_index_follows_edits_additions_renames_and_deletions(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    facts = corpus.write_corpus(folder, count=50)
    home = tmp_path / "home"
    assert files_command(home, "add", str(folder)).returncode == 0
    edited, renamed, deleted = [f for f in facts if f.path.suffix == ".txt"][:3]
    edited.path.write_text(edited.path.read_text().replace(edited.answer, "7531"))
    (folder / "new.md").write_text("# Added later\n\nThe glassworks of Ombrelle ship every Thursday.\n")
    moved = folder / "archive" / "moved-here.txt"
    renamed.path.rename(moved)
    deleted.path.unlink()
    corpus.write_corrupt_pdf(folder / "broken.pdf")
    corpus.write_binary(folder / "data.txt")
    corpus.write_encrypted_pdf(folder / "sealed.pdf")

    refreshed = files_command(home, "refresh")
    assert refreshed.returncode == 0, refreshed.stderr
    lines = refreshed.stdout.splitlines()
    assert lines[-1] == "1 indexed, 1 updated, 1 renamed, 1 removed, 3 skipped, 47 unchanged"
    skipped = dict(line.removeprefix("skipped ").split(": ", 1) for line in lines[:-1])
    assert skipped[str(folder / "broken.pdf")].startswith("not a readable PDF")
    assert skipped[str(folder / "data.txt")] == "not a text file (binary content)"
    assert skipped[str(folder / "sealed.pdf")] == "password-protected PDF"

    with DocumentIndex(AppPaths.under(home).files_index_file) as index:
        assert "7531" in index.search(edited.question)[0].text
        assert not any(edited.answer in hit.text for hit in index.search(edited.answer))
        assert index.search("glassworks Ombrelle Thursday")[0].path == str(folder / "new.md")
        assert index.search(renamed.question)[0].path == str(moved)
        assert all(hit.path != str(deleted.path) for hit in index.search(deleted.question))
        assert index.search(corpus.ENCRYPTED_WORD) == []

    again = files_command(home, "refresh")  # nothing changed: nothing is read again, nor tried again
    assert (
        again.stdout.splitlines()[-1] == "0 indexed, 0 updated, 0 renamed, 0 removed, 0 skipped, 53 unchanged"
    )


def test_list_and_remove_from_the_command_line(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    facts = corpus.write_corpus(folder, count=50)
    home = tmp_path / "home"
    missing = files_command(home, "add", str(tmp_path / "nowhere"))
    assert missing.returncode == 2
    assert "nowhere does not exist" in missing.stderr
    assert files_command(home, "add", str(folder)).returncode == 0

    listed = json.loads(files_command(home, "list", "--json").stdout)
    assert listed == [{"path": str(folder), "files": 50, "passages": listed[0]["passages"], "skipped": 0,
                       "exists": True}]  # fmt: skip
    assert listed[0]["passages"] >= 50

    removed = files_command(home, "remove", str(folder))
    assert removed.stdout.strip() == f"removed {folder} (50 files)"
    assert json.loads(files_command(home, "list", "--json").stdout) == []
    found = files_command(home, "search", facts[0].question, "--json")
    assert json.loads(found.stdout) == []
    again = files_command(home, "remove", str(folder))
    assert again.returncode == 2
    assert "is not in the index" in again.stderr


@pytest.fixture
def indexer(tmp_path: Path) -> Iterator[tuple[Supervisor, FileLibrary]]:
    """The app's indexer process, supervised as the app runs it, and the library the chat reads."""
    paths = AppPaths.under(tmp_path / "app").create()
    supervisor = Supervisor(indexer_spec(paths, {}), paths.log_dir, RestartPolicy(probe_interval_s=0.2))
    library = FileLibrary(paths.files_index_file, paths.files_status_file)
    supervisor.start()
    try:
        yield supervisor, library
    finally:
        pid = supervisor.status.pid
        supervisor.stop()
        library.close()
        assert pid is None or not process_alive(pid), "the indexer outlived its supervisor"


def test_the_apps_indexer_reads_an_added_folder_and_notices_changes(
    tmp_path: Path, indexer: tuple[Supervisor, FileLibrary]
) -> None:
    supervisor, library = indexer
    assert supervisor.wait_for_state(ServiceState.RUNNING, timeout_s=30).state is ServiceState.RUNNING
    folder = tmp_path / "notes"
    facts = corpus.write_corpus(folder, count=50)

    library.add(folder)  # as the tray or the chat adds it: the indexer sees the index change
    found = wait_for(lambda: library.search(facts[-1].question, 1), timeout_s=60)
    assert found and found[0].path == str(facts[-1].path)
    status = wait_for(
        lambda: (s := library.indexing()) is not None and s.state == "ready" and s, timeout_s=60
    )
    assert isinstance(status, IndexingStatus) and status.summary == "50 new"
    assert library.state()["sources"][0]["files"] == 50

    (folder / "later.txt").write_text("The lighthouse of Marrowind is painted every spring.\n")
    later = str(folder / "later.txt")
    assert wait_for(lambda: [h.path for h in library.search("Marrowind", 3)] == [later], timeout_s=30)

    facts[0].path.unlink()
    assert wait_for(lambda: str(facts[0].path) not in [h.path for h in library.search(facts[0].question, 5)],
                    timeout_s=30)  # fmt: skip


def test_with_an_embedding_model_passages_are_found_by_meaning_too(
    tmp_path: Path, tiny_models: TinyModels
) -> None:
    """The runtime serves an embedding model beside the chat model; the app's indexer gives every
    passage its vector; a search finds by meaning what no word of the query matches."""
    embedder = build_embedding_model(tmp_path / "embedder", dim=256, synonyms={"automobile": "car"})
    home = tmp_path / "app"
    paths = AppPaths.under(home).create()
    secret = RunSecret.create(paths.state_dir)
    settings = Settings(model_path=tiny_models.alpha, embedding_model=str(embedder), runtime_port=free_port())
    fast = RestartPolicy(probe_interval_s=0.2)
    runtime = Supervisor(runtime_spec(settings, paths, secret), paths.log_dir, fast)
    indexer = Supervisor(indexer_spec(paths, {}), paths.log_dir, fast)
    folder = tmp_path / "notes"
    facts = corpus.write_corpus(folder, count=50)
    (folder / "garage.txt").write_text("Garage of Tolvern Lane\n\nOne small car.\n")
    runtime.start()
    indexer.start()
    try:
        client = RuntimeClient(paths.runtime_status_file, secret)
        served = client.wait(lambda s: s.embedding_model_id is not None or bool(s.embeddings_problem), 60)
        assert served.embedding_model_id == "embedder-generic-cpu:1", served.embeddings_problem
        assert [m.alias for m in client.models()] == ["alpha"]  # not offered as a chat model

        with DocumentIndex(paths.files_index_file) as index:
            index.add(folder)
            assert wait_for(lambda: index.counts()[0] == 51 and not index.count_missing_vectors(
                "embedder-generic-cpu:1"), timeout_s=60), "not every passage got a vector"  # fmt: skip
            assert index.search("automobile") == []  # no passage has the word

        found = files_command(home, "search", "automobile", "--json")
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)[0]["path"] == str(folder / "garage.txt")
        for fact in facts[::5]:  # what words found still goes to the model (the best 8 passages)
            best = json.loads(files_command(home, "search", fact.question, "--limit", "8", "--json").stdout)
            assert str(fact.path) in [hit["path"] for hit in best], fact.question
    finally:
        indexer.stop()
        runtime.stop()


def test_an_unreadable_index_is_set_aside_and_a_new_one_started(tmp_path: Path) -> None:
    index_file = AppPaths.under(tmp_path).files_index_file
    index_file.parent.mkdir(parents=True)
    index_file.write_bytes(b"not a database, but the user's only copy of something" * 100)
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_text("The kiln of Ostrava fires on Mondays.\n")

    added = files_command(tmp_path, "add", str(folder))
    assert added.returncode == 0, added.stderr
    assert "the index could not be read; it was moved to" in added.stderr
    assert added.stdout.splitlines()[-1].startswith("1 indexed,")
    kept = list(index_file.parent.glob("index.sqlite3.broken-*"))
    assert [path.read_bytes()[:15] for path in kept] == [b"not a database,"]
    assert json.loads(files_command(tmp_path, "search", "kiln Ostrava", "--json").stdout)[0]["path"] == str(
        folder / "a.txt"
    )


def test_an_embedding_model_that_is_not_there_leaves_the_chat_model_served(
    tmp_path: Path, tiny_models: TinyModels
) -> None:
    paths = AppPaths.under(tmp_path / "app").create()
    secret = RunSecret.create(paths.state_dir)
    settings = Settings(
        model_path=tiny_models.alpha,
        embedding_model="no-such-embedder",
        runtime_port=free_port(),
        offline=True,
    )
    runtime = Supervisor(
        runtime_spec(settings, paths, secret), paths.log_dir, RestartPolicy(probe_interval_s=0.2)
    )
    runtime.start()
    try:
        client = RuntimeClient(paths.runtime_status_file, secret)
        status = client.wait(lambda s: bool(s.embeddings_problem), 60)
        assert status.embeddings_problem == (
            "The embedding model is not used: no-such-embedder is not a model folder, "
            "nor a model downloaded before"
        )
        assert status.embeddings_url is None
        ready = client.wait(lambda s: s.state is RuntimeState.READY, 60)
        assert ready.model_alias == "alpha"
    finally:
        runtime.stop()
