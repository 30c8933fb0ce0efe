"""Chat with your files, end to end in Debian's Chromium: a folder added in the page is indexed by
the app's indexer process; with "Use my files" on, the passage that answers goes to the model
before the question (the endpoint stand-in on 127.0.0.1 records what it was sent), the answer
shows its citations, a citation opens its passage, and a chat resumed from history shows them
again. Every request the page makes stays on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from desktop.chat.endpoint import LOCAL, REMOTE, Target
from desktop.chat.grounding import may_receive_files
from desktop.documents.service import indexer_spec
from desktop.supervisor import RestartPolicy, ServiceState, Supervisor
from tests.support import corpus
from tests.support.chat_browser import ANSWER, ChatStack, open_chat, send, wait_for_answer, wait_idle
from tests.support.openai_standin import REMOTE_ANSWER, RemoteStandIn
from tests.support.webgpu_browser import CHROMIUM

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Chromium at {CHROMIUM}")


@pytest.fixture
def remote() -> Iterator[RemoteStandIn]:
    with RemoteStandIn() as standin:
        yield standin


@pytest.fixture
def stack(tmp_path: Path, remote: RemoteStandIn) -> Iterator[tuple[ChatStack, Supervisor]]:
    """The chat server with its endpoint on this computer (every message goes to the stand-in),
    and the app's indexer process."""
    chat = ChatStack.start(tmp_path / "app", remote.answering_all(), with_runtime=False)
    indexer = Supervisor(
        indexer_spec(chat.paths, {}), chat.paths.log_dir, RestartPolicy(probe_interval_s=0.2)
    )
    indexer.start()
    try:
        yield chat, indexer
    finally:
        indexer.stop()
        chat.stop()


def test_use_my_files_answers_from_the_passage_and_cites_it_again_when_resumed(
    tmp_path: Path, stack: tuple[ChatStack, Supervisor], remote: RemoteStandIn, page: Page
) -> None:
    chat, indexer = stack
    folder = tmp_path / "documents"
    facts = corpus.write_corpus(folder, count=50)
    fact = next(f for f in facts if f.path.suffix == ".pdf" and f.page and f.page > 1)
    chat.chat_ready()
    assert indexer.wait_for_state(ServiceState.RUNNING, timeout_s=30).state is ServiceState.RUNNING
    open_chat(page, chat.link())

    # Your files: add the folder by its path (a browser has no folder dialog); the indexer reads it.
    page.click("#files-button")
    page.fill("#files-path", str(folder))
    page.locator("#files").get_by_role("button", name="Add", exact=True).click()
    page.locator("#files .files-source-counts", has_text="50 files").wait_for(timeout=60_000)
    page.keyboard.press("Escape")

    page.check("#use-files")
    remote.answer = f"It is {fact.answer} [1]."  # as a model that follows the instruction to cite
    send(page, fact.question)
    wait_for_answer(page, remote.answer)
    wait_idle(page)
    sent = remote.bodies[-1]["messages"][-1]["content"]
    assert fact.answer in sent, "the passage that answers was not sent before the question"
    assert sent.rstrip().endswith(f"Question: {fact.question}")
    assert f"[1] {fact.path.name} (page {fact.page})" in sent
    assert "[2] " in sent, "only one passage went before the question"

    answer = page.locator(ANSWER).last
    label = f"[1] {fact.path.name} · page {fact.page}"
    assert answer.locator(".citation").all_inner_texts() == [label]  # the one the answer cites
    answer.locator(".cite-marker", has_text="[1]").click()  # the [1] in the answer's text
    passage = page.locator("#passage")
    passage.wait_for(state="visible")
    assert fact.answer in passage.inner_text()
    page.keyboard.press("Escape")
    passage.wait_for(state="hidden")

    refused = page.evaluate(
        """async () => (await fetch('/files/open', {
            method: 'POST', body: JSON.stringify({path: '/etc/passwd'}),
            headers: {'Content-Type': 'application/json'}})).status"""
    )
    assert refused == 404, "the chat opened a file that is not in the user's index"

    page.click("#new-chat")  # leave the chat, then resume it from history
    page.wait_for_url(f"{chat.url}/")
    page.locator("#thread-history [id^='thread-']").first.click()
    wait_for_answer(page, remote.answer)
    resumed = page.locator(ANSWER).last.locator(".citation").first
    resumed.wait_for()
    assert resumed.inner_text().strip() == label
    assert page.is_checked("#use-files"), "the chat's Use my files was not kept with it"

    page.uncheck("#use-files")  # off: the question goes alone
    remote.answer = REMOTE_ANSWER
    send(page, fact.question)
    wait_for_answer(page, REMOTE_ANSWER)
    assert remote.bodies[-1]["messages"][-1]["content"] == fact.question


def test_passages_of_the_users_files_go_only_to_a_model_on_this_computer() -> None:
    def target(where: str, base_url: str) -> Target:
        return Target(where, base_url, "key", "model")

    assert may_receive_files(target(LOCAL, "http://127.0.0.1:5282/v1"))
    assert may_receive_files(target(REMOTE, "http://localhost:8080/v1"))  # a server of the user's own
    assert not may_receive_files(target(REMOTE, "https://example.openai.azure.com/openai/v1"))
    assert not may_receive_files(target(REMOTE, "http://192.168.1.20:8080/v1"))  # another computer
