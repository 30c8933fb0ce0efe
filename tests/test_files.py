"""Your files: real documents (text, Markdown, HTML, PDF, Word) indexed by the real command line
and by the app's indexer process, searched as the chat searches them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop.documents.index import DocumentIndex
from desktop.documents.library import FileLibrary, IndexingStatus
from desktop.documents.service import indexer_spec
from desktop.paths import AppPaths
from desktop.probe import wait_for
from desktop.process import process_alive
from desktop.supervisor import RestartPolicy, ServiceState, Supervisor
from tests.conftest import not_private
from tests.support import corpus
from tests.support.corpus import Fact


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Fact]]:
    folder = tmp_path_factory.mktemp("documents")
    return folder, corpus.write_corpus(folder, count=60)


def files_command(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`foundry-desk files …` as a user runs it, with the app's folders under `home`."""
    env = {**os.environ, "FOUNDRY_DESK_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "desktop", "files", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


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
