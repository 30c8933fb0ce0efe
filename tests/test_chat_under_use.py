"""The chat as users try chat apps: settings changed mid-answer, a chat deleted while it answers,
runtime errors and crashes, Enter at once after "New chat", answers cut at Max tokens, invisible
messages, a second tab. The real runtime host and chat server, driven in Debian's Chromium."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from desktop.config import Settings
from tests.conftest import ALPHA_ANSWER, TinyModels, free_port
from tests.support.chat_browser import (
    ANSWER,
    USER,
    ChatStack,
    answers,
    open_chat,
    send,
    wait_for_answer,
    wait_idle,
)
from tests.support.openai_standin import REMOTE_ANSWER, RemoteStandIn
from tests.support.webgpu_browser import CHROMIUM
from tests.tinymodel import build_model

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Chromium at {CHROMIUM}")
ENDLESS_ANSWER = "and on"
ENDLESS = "endless-generic-cpu:1"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, tiny_models: TinyModels) -> Iterator[ChatStack]:
    """Alpha served; an endless model registered: it streams until Max tokens (~200 tokens/s)."""
    endless = build_model(
        tmp_path_factory.mktemp("models") / "endless",
        ENDLESS_ANSWER,
        endless=True,
        width=1024,
        depth=16,
        context_length=16384,
    )
    stack = ChatStack.start(
        tmp_path_factory.mktemp("app"),
        Settings(model_path=tiny_models.alpha, runtime_port=free_port(), max_tokens=8192),
    )
    try:
        stack.ready()
        stack.select(str(endless))
        stack.select("alpha")
        yield stack
    finally:
        stack.stop()


def open_endless_answer(stack: ChatStack, page: Page, prompt: str) -> None:
    """Open the chat on the endless model and send `prompt`: its answer streams on."""
    stack.ready()
    stack.select(ENDLESS)
    open_chat(page, stack.link())
    send(page, prompt)
    wait_for_answer(page, " ".join([ENDLESS_ANSWER] * 5))


MODEL_ANSWER = ".message.answer"
"""An answer of the model's (not a notice)."""


def grows(page: Page) -> None:
    """Wait until the newest answer has grown (the model is still streaming into it)."""
    page.wait_for_function(
        "([selector, before]) => [...document.querySelectorAll(selector)].at(-1).innerText.length > before",
        arg=[MODEL_ANSWER, len(page.locator(MODEL_ANSWER).last.inner_text())],
        timeout=10_000,
    )


def history_rows(stack: ChatStack, thread_id: str) -> dict[str, int]:
    """How many rows of the history database belong to a chat."""
    with sqlite3.connect(stack.paths.data_dir / "chat" / "history.sqlite3") as database:
        return {
            table: database.execute(
                f'SELECT COUNT(*) FROM {table} WHERE "{column}" = ?', (thread_id,)
            ).fetchone()[0]
            for table, column in (("threads", "id"), ("steps", "threadId"))
        }


def wait_for_log(stack: ChatStack, *parts: str, timeout_s: float = 10.0) -> None:
    """Wait until a line of the chat server's log holds all of `parts`."""
    assert stack.chat.supervisor is not None
    log = stack.chat.supervisor.log_file
    deadline = time.monotonic() + timeout_s
    while not any(all(part in line for part in parts) for line in log.read_text().splitlines()):
        assert time.monotonic() < deadline, f"no line with {parts} in {log}"
        time.sleep(0.05)


def test_settings_confirmed_during_an_answer_apply_next_and_keep_its_stop(
    stack: ChatStack, page: Page
) -> None:
    try:
        open_endless_answer(stack, page, "Go on while I change settings")
        page.click("#chat-settings-open-modal")
        page.fill("#temperature", "0.2")
        page.select_option("#model", value="alpha-generic-cpu:1")
        page.get_by_role("button", name="Confirm").click()
        wait_for_answer(page, "Switching to alpha-generic-cpu:1 once this answer is done")
        assert page.is_visible("#stop-button"), "the running answer lost its Stop button"
        grows(page)
        page.keyboard.press("Escape")  # Esc still stops it
        wait_for_answer(page, "(stopped)")
        wait_for_answer(page, "Now using alpha-generic-cpu:1")
        assert not [text for text in answers(page) if "Task manually stopped" in text]
    finally:
        stack.select("alpha")
    page.click("#chat-settings-open-modal")
    assert page.input_value("#temperature") == "0.2"
    page.get_by_role("button", name="Cancel").click()
    send(page, "And now?")
    wait_for_answer(page, ALPHA_ANSWER)


def test_a_chat_deleted_while_it_answers_is_stopped_and_gone_for_good(stack: ChatStack, page: Page) -> None:
    try:
        open_endless_answer(stack, page, "Delete me while you answer")
        page.wait_for_url("**/thread/*")
        thread_id = page.url.rsplit("/", 1)[1]
        row = page.locator("#thread-history .thread-row", has_text="Delete me while you answer")
        row.hover()
        row.locator(".thread-delete").click()
        row.locator(".thread-delete").click()
        row.wait_for(state="detached")
        page.wait_for_url(f"{stack.url}/")
        # Deleting stopped the answer, and its last save (which used to bring the chat back) is done.
        wait_for_log(stack, f"in chat {thread_id}: ", " stopped at ")
        assert history_rows(stack, thread_id) == {"threads": 0, "steps": 0}
    finally:
        stack.select("alpha")
    response = page.request.get(f"{stack.url}/project/thread/{thread_id}")
    assert response.status == 404
    page.goto(f"{stack.url}/thread/{thread_id}")
    page.wait_for_selector(".toast:has-text('That chat could not be opened')")
    page.wait_for_url(f"{stack.url}/")
    send(page, "Still here?")
    wait_for_answer(page, ALPHA_ANSWER)
    assert history_rows(stack, thread_id) == {"threads": 0, "steps": 0}


def test_a_runtime_error_is_shown_as_it_was_said_not_as_too_long(tmp_path: Path, page: Page) -> None:
    """A server error whose text mentions "context" (a sliding-window model refusing a small KV
    cache) is not "your message is too long"."""
    said = (
        "Failed to create the generator context: "
        "KV cache capacity (436) must be at least local_window_size (512)"
    )
    with RemoteStandIn() as remote:
        remote.failure = (500, said)
        stack = ChatStack.start(tmp_path / "app", remote.answering_all())
        try:
            stack.chat_ready()
            open_chat(page, stack.link())
            send(page, "Four words, no more")
            wait_for_answer(page, "could not answer (HTTP 500)")
            shown = answers(page)[-1]
            assert said in shown and "Max tokens" in shown and "too long" not in shown
            remote.failure = None
            send(page, "Better now?")
            wait_for_answer(page, REMOTE_ANSWER)
        finally:
            stack.stop()


def test_a_runtime_crash_mid_answer_is_told_and_retry_answers_again(stack: ChatStack, page: Page) -> None:
    try:
        open_endless_answer(stack, page, "Keep going until the crash")
        host = stack.runtime.status.pid
        assert host is not None
        os.kill(host, signal.SIGKILL)
        wait_for_answer(page, "The model runtime stopped while answering; it is restarting")
        wait_for_answer(page, "(interrupted)")
        assert not [text for text in answers(page) if "(stopped)" in text]
        retry = page.locator(f"{ANSWER} button.answer-action", has_text="Retry")
        retry.wait_for()
        stack.ready()  # back, with the model it served (the endless one)
        stack.select("alpha")  # one that ends, for the answer Retry brings
        retry.click()
        wait_for_answer(page, ALPHA_ANSWER)
        wait_idle(page)
    finally:
        stack.select("alpha")
    assert not [text for text in answers(page) if "(interrupted)" in text], "Retry replaces the answer"
    page.reload()
    wait_for_answer(page, ALPHA_ANSWER)
    assert not [text for text in answers(page) if "(interrupted)" in text]
    assert page.locator(USER).all_inner_texts() == ["Keep going until the crash"]


def test_enter_at_once_after_new_chat_is_never_lost(stack: ChatStack, page: Page) -> None:
    """However soon after "New chat" the user presses Enter, the message goes (once the new chat
    is ready), and is answered."""
    stack.ready()
    open_chat(page, stack.link())
    for count in range(12):
        page.click("#new-chat")
        page.fill("#chat-input", f"Quick {count}")
        page.keyboard.press("Enter")
        page.wait_for_selector(f"{USER}:has-text('Quick {count}')", timeout=10_000)
        wait_for_answer(page, ALPHA_ANSWER)
        wait_idle(page)
        assert page.input_value("#chat-input") == ""


def test_an_answer_cut_at_max_tokens_says_so_and_continues(stack: ChatStack, page: Page) -> None:
    stack.ready()
    stack.select(ENDLESS)
    try:
        open_chat(page, stack.link())
        page.click("#chat-settings-open-modal")
        page.fill("#max_tokens", "16")
        page.get_by_role("button", name="Confirm").click()
        send(page, "Say a lot")
        wait_for_answer(page, "(cut off at Max tokens)")
        wait_idle(page)
        page.locator(f"{ANSWER} button.answer-action", has_text="Continue").click()
        wait_for_answer(page, "(cut off at Max tokens)", count=2)
        wait_idle(page)
        assert ENDLESS_ANSWER in answers(page)[-1]
        # The newest answer offers Continue again, also when the chat is opened from history.
        page.reload()
        wait_for_answer(page, "(cut off at Max tokens)", count=2)
        continue_button = page.locator(f"{ANSWER} button.answer-action", has_text="Continue")
        continue_button.wait_for()
        assert continue_button.count() == 1
    finally:
        stack.select("alpha")


def test_an_invisible_message_is_not_sent(stack: ChatStack, page: Page) -> None:
    stack.ready()
    open_chat(page, stack.link())
    page.fill("#chat-input", "\u200b")
    assert page.is_disabled("#chat-submit")
    page.keyboard.press("Enter")
    page.fill("#chat-input", "A real one")
    page.keyboard.press("Enter")
    wait_for_answer(page, ALPHA_ANSWER)
    assert page.locator(USER).all_inner_texts() == ["A real one"]


def test_a_second_tab_on_the_same_chat_shows_new_messages(stack: ChatStack, page: Page) -> None:
    stack.ready()
    open_chat(page, stack.link())
    send(page, "Seen in both tabs")
    wait_for_answer(page, ALPHA_ANSWER)
    wait_idle(page)
    page.wait_for_url("**/thread/*")
    other = page.context.new_page()
    other.goto(page.url)
    wait_for_answer(other, ALPHA_ANSWER)
    other.wait_for_selector("#app[data-ready='true']")
    send(page, "A second question")
    other.wait_for_selector(f"{USER}:has-text('A second question')", timeout=10_000)
    wait_for_answer(other, ALPHA_ANSWER, count=2)
    send(other, "From the other tab")
    wait_for_answer(page, ALPHA_ANSWER, count=3)
    assert page.locator(USER).all_inner_texts() == [
        "Seen in both tabs",
        "A second question",
        "From the other tab",
    ]
    # Deleted in one tab: the other moves to a new chat, where what it sends is kept.
    row = page.locator("#thread-history .thread-row", has_text="Seen in both tabs")
    row.hover()
    row.locator(".thread-delete").click()
    row.locator(".thread-delete").click()
    other.wait_for_selector(".toast:has-text('could not be opened (it was deleted)')")
    other.wait_for_url(f"{stack.url}/")
    send(other, "A new one")
    wait_for_answer(other, ALPHA_ANSWER)
