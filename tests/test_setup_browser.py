"""The first run in the chat page, in Debian's Chromium (offline): the setup view with the real
runtime host and chat server, and the download offer with a stand-in for a host whose catalog
answered (the real catalog is out of reach here)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import Browser, Page, expect

from desktop.config import Settings, load_settings
from tests.conftest import ALPHA_ANSWER, TinyModels, free_port
from tests.support.chat_browser import ChatStack, logged_page, open_chat, send, wait_for_answer
from tests.support.runtime_standin import PROGRESS, OfferingRuntime
from tests.support.webgpu_browser import CHROMIUM

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Chromium at {CHROMIUM}")
OFFLINE = (
    "You're offline, so phi-4-mini can't be downloaded now. Choose a model folder of your own, "
    "or connect to the internet and press Try again."
)
SETUP_TIMEOUT_MS = 30_000


def ours() -> set[psutil.Process]:
    """The test's descendant processes, but for the browser's own (its renderers come and go)."""
    found = set()
    for process in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if not any(p.name().startswith("chrom") for p in (process, *process.parents())):
                found.add(process)
    return found


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page; every process the test starts after it (its stacks) must be gone at the end.
    (Tests ask for it first.)"""
    before = ours()
    with logged_page(browser) as page:
        yield page
    _, alive = psutil.wait_procs(ours() - before, timeout=3)
    assert not [p for p in alive if running(p)], f"processes left behind: {alive}"


def running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def expect_setup(page: Page) -> None:
    """The setup view is shown in place of the chat, its path field ready to type in."""
    expect(page.locator("#setup")).to_be_visible(timeout=SETUP_TIMEOUT_MS)
    expect(page.locator("#chat-input")).to_be_hidden()
    expect(page.locator("#setup-folder-path")).to_be_focused()


def test_offline_the_user_types_a_model_folder_and_chats_with_it(
    page: Page, tmp_path: Path, tiny_models: TinyModels
) -> None:
    stack = ChatStack.start(
        tmp_path / "app", Settings(model="phi-4-mini", runtime_port=free_port()), ask_before_download=True
    )
    try:
        stack.chat_ready()
        open_chat(page, stack.link())
        expect_setup(page)
        expect(page.locator("#setup-status")).to_have_text(OFFLINE)
        expect(page.locator("#setup-retry")).to_be_visible()
        expect(page.locator("#setup-download")).to_be_hidden()
        expect(page.locator("#setup-choose-folder")).to_be_hidden()  # a browser has no folder dialog
        expect(page.get_by_label("Paste the model folder's path")).to_be_focused()

        # Try again: the runtime asks the catalog again (seconds, offline); the view stays meanwhile
        page.get_by_role("button", name="Try again").click()
        expect(page.locator("#setup-status")).to_have_text("Asking the model catalog again…")
        expect(page.locator("#setup")).to_be_visible()
        expect(page.locator("#setup-status")).to_have_text(OFFLINE, timeout=SETUP_TIMEOUT_MS)
        page.locator("#setup-folder-path").focus()

        missing = tmp_path / "no-such-folder"
        page.keyboard.type(str(missing))
        page.keyboard.press("Enter")
        expect(page.locator("#setup-error")).to_contain_text(f"There is no folder {missing}.")
        expect(page.locator("#setup-folder-path")).to_be_focused()
        page.keyboard.type(str(tiny_models.alpha))  # replaces the selected text
        page.keyboard.press("Enter")

        expect(page.locator("#setup")).to_be_hidden(timeout=SETUP_TIMEOUT_MS)
        expect(page.locator("#chat-input")).to_be_focused()
        send(page, "Hello?")
        wait_for_answer(page, ALPHA_ANSWER)
        saved = load_settings(stack.paths.settings_file, environ={}).settings
        assert saved.model_path == tiny_models.alpha.resolve()
    finally:
        stack.stop()


@pytest.fixture
def offering(tmp_path: Path) -> Iterator[tuple[ChatStack, OfferingRuntime]]:
    stack = ChatStack.start(tmp_path / "app", Settings(runtime_port=free_port()), with_runtime=False)
    runtime = OfferingRuntime(stack.paths.runtime_status_file, stack.chat.secret)
    try:
        stack.chat_ready()
        yield stack, runtime
    finally:
        runtime.close()
        stack.stop()


def test_the_offered_model_downloads_with_progress_and_the_view_goes_when_it_is_ready(
    page: Page, offering: tuple[ChatStack, OfferingRuntime]
) -> None:
    stack, runtime = offering
    open_chat(page, stack.link())
    expect_setup(page)
    download = page.get_by_role("button", name="Download phi-4-mini (2.4 GB)")
    expect(download).to_be_visible()
    expect(page.locator("#setup-status")).to_have_text(
        "Download phi-4-mini (2.4 GB) from the Foundry Local catalog, or choose a model folder of your own."
    )
    expect(page.locator("#setup-retry")).to_be_hidden()

    download.click()
    expect(page.locator("#setup-status")).to_have_text(f"Downloading phi-4-mini… {PROGRESS:.0f}%")
    progress = page.locator("#setup-progress")
    expect(progress).to_be_visible()
    expect(progress).to_have_attribute("aria-labelledby", "setup-status")
    assert progress.evaluate("bar => bar.value") == PROGRESS
    expect(download).to_be_hidden()
    assert runtime.selected == ["phi-4-mini"]

    runtime.finish()
    expect(page.locator("#setup")).to_be_hidden(timeout=SETUP_TIMEOUT_MS)
    expect(page.locator("#chat-input")).to_be_visible()
    assert not stack.paths.settings_file.exists()  # a download saves nothing: it is the setting already


def test_with_downloads_off_the_page_says_so(page: Page, tmp_path: Path) -> None:
    stack = ChatStack.start(
        tmp_path / "app", Settings(runtime_port=free_port(), allow_download=False), with_runtime=False
    )
    runtime = OfferingRuntime(stack.paths.runtime_status_file, stack.chat.secret, offer=False)
    try:
        stack.chat_ready()
        open_chat(page, stack.link())
        expect_setup(page)
        expect(page.locator("#setup-status")).to_have_text(
            "Downloads are turned off in settings, so phi-4-mini can't be downloaded. "
            "Choose a model folder of your own."
        )
        expect(page.locator("#setup-download")).to_be_hidden()
        expect(page.locator("#setup-retry")).to_be_hidden()
    finally:
        runtime.close()
        stack.stop()
