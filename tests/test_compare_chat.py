"""Compare mode in the chat, in Debian's Chromium: two real models of the real runtime answer each
message at the same time, side by side, measured; the chart shows every run; marks are kept."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from desktop.config import Settings
from tests.conftest import free_port
from tests.support.chat_browser import ChatStack, open_chat, send, wait_for_answer, wait_idle
from tests.support.openai_standin import REMOTE_ANSWER, REMOTE_MODEL, RemoteStandIn
from tests.tinymodel import build_model

CHAT_MODEL = "chatty-generic-cpu:1"
OTHER_MODEL = "other-generic-cpu:1"
TOKENS = 320  # a step of the settings slider (16), which Confirm sends back
NUMBERS = re.compile(rf"TTFT \d+ ms · [\d.]+ tokens/s · {TOKENS} tokens · [\d.]+ s · this computer \(CPU\)")


@pytest.fixture(scope="module")
def remote() -> Iterator[RemoteStandIn]:
    with RemoteStandIn() as standin:
        yield standin


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, remote: RemoteStandIn) -> Iterator[ChatStack]:
    """Two models that stream until the answer length at a couple of hundred tokens/s each (a
    real MLP per token): long enough to see both answers under way at once. And a remote one."""
    root = tmp_path_factory.mktemp("compare")

    def streaming(name: str, answer: str) -> Path:
        return build_model(root / name, answer, endless=True, width=1024, depth=16, context_length=4096)

    chatty, other = streaming("chatty", "and on"), streaming("other", "more and more")
    settings = Settings(
        model_path=chatty,
        runtime_port=free_port(),
        max_tokens=TOKENS,
        remote_base_url=remote.base_url,
        remote_model=REMOTE_MODEL,
    )
    stack = ChatStack.start(root / "app", settings)
    try:
        stack.ready()
        stack.select(str(other))  # registered: the chat offers it
        stack.select(str(chatty))
        yield stack
    finally:
        stack.stop()


def compare_with(page: Page, model: str) -> None:
    page.click("#chat-settings-open-modal")
    page.select_option("#compare_with", value=model)
    page.get_by_role("button", name="Confirm").click()


def side(page: Page, index: int, group: int = -1) -> str:
    """The selector of one side of the `group`-th compared pair (-1: the newest)."""
    count = page.locator(".compare-group").count()
    return f".compare-group >> nth={group % count} >> article.compare-side[data-side='{index}']"


BOTH_UNDER_WAY = """() => {
  const groups = document.querySelectorAll('.compare-group');
  const sides = groups.length ? groups[groups.length - 1].querySelectorAll('article.compare-side') : [];
  return sides.length === 2 && [...sides].every((side) =>
    side.querySelector('.compare-numbers.pending') && side.querySelector('.content')?.innerText.trim());
}"""
"""Both answers of the newest pair have text and are still streaming."""


def test_compare_mode_streams_both_answers_side_by_side_measured_charted_and_marked(
    stack: ChatStack, page: Page
) -> None:
    open_chat(page, stack.link())
    compare_with(page, OTHER_MODEL)
    page.wait_for_selector(f"#compare-chip:has-text('Comparing with {OTHER_MODEL}')")

    send(page, "Tell me something")
    page.wait_for_function(BOTH_UNDER_WAY, timeout=30_000)  # at the same time, not one after the other
    wait_idle(page)
    left, right = side(page, 0), side(page, 1)
    assert page.locator(f"{left} .compare-model").inner_text() == CHAT_MODEL
    assert page.locator(f"{right} .compare-model").inner_text() == OTHER_MODEL
    assert page.locator(f"{left} .content").inner_text().startswith("and on and on")
    assert page.locator(f"{right} .content").inner_text().startswith("more and more")
    for which in (left, right):
        assert NUMBERS.search(page.locator(f"{which} .compare-numbers").inner_text())

    send(page, "And another thing")
    page.wait_for_selector(".compare-group >> nth=1")
    wait_idle(page)
    for panel in ("ttft_ms", "tokens_per_s"):  # one point per model per prompt
        points = page.locator(f"#compare-chart svg[data-panel='{panel}'] circle")
        assert sorted(
            (point.get_attribute("data-model"), point.get_attribute("data-prompt")) for point in points.all()
        ) == [(CHAT_MODEL, "1"), (CHAT_MODEL, "2"), (OTHER_MODEL, "1"), (OTHER_MODEL, "2")]

    page.click(f"{side(page, 1, group=0)} .better-toggle")
    page.wait_for_selector(f"{side(page, 1, group=0)} .better-toggle[aria-pressed='true']")
    chat_url = page.url
    page.reload()  # the chat resumed from the history: answers, numbers, marks and chart
    assert page.url == chat_url
    page.wait_for_selector(".compare-group >> nth=1")
    assert page.locator(f"{side(page, 1, group=0)} .better-toggle").get_attribute("aria-pressed") == "true"
    assert page.locator(f"{side(page, 0, group=0)} .better-toggle").get_attribute("aria-pressed") == "false"
    assert NUMBERS.search(page.locator(f"{side(page, 1, group=1)} .compare-numbers").inner_text())
    assert page.locator("#compare-chart svg[data-panel='ttft_ms'] circle").count() == 4
    page.wait_for_selector(f"#compare-chip:has-text('Comparing with {OTHER_MODEL}')")


def test_compared_with_the_remote_model_and_stopped(
    stack: ChatStack, page: Page, remote: RemoteStandIn
) -> None:
    """The remote model as the second side: its answer says where it ran; Stop ends the local one,
    and the pair can then be marked."""
    open_chat(page, stack.link())
    compare_with(page, "remote")
    page.wait_for_selector(f"#compare-chip:has-text('Comparing with remote: {REMOTE_MODEL}')")
    asked = len(remote.bodies)

    send(page, "Tell me something")
    page.wait_for_selector(
        ".compare-group article.compare-side[data-side='1'] .compare-numbers:not(.pending)"
    )
    right = side(page, 1)
    assert page.locator(f"{right} .content").inner_text().strip() == REMOTE_ANSWER
    assert page.locator(f"{right} .compare-model").inner_text() == "remote"
    assert page.locator(f"{right} .compare-numbers").inner_text().endswith("· remote host 127.0.0.1")
    assert len(remote.bodies) == asked + 1  # asked once, with the same question
    assert remote.bodies[-1]["messages"][-1] == {"role": "user", "content": "Tell me something"}

    page.wait_for_selector(f"{side(page, 0)} .content:has-text('and on and on')")  # streaming on
    page.keyboard.press("Escape")  # the local model goes on until stopped
    wait_for_answer(page, "(stopped)")
    wait_idle(page)
    page.wait_for_selector(f"{side(page, 0)} .better-toggle:visible")  # both ended: a mark can be made
