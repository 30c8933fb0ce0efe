"""The chat end to end: the real runtime host and chat server, driven in Debian's Chromium offline.

Every request the page makes is recorded; all must go to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import astuple, dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from desktop.chat.gate import COOKIE_NAME
from desktop.config import Settings
from desktop.probe import http_ok, wait_for
from desktop.supervisor import ServiceState
from tests.conftest import ALPHA_ANSWER, BETA_ANSWER, TinyModels, free_port
from tests.support.chat_browser import (
    ANSWER,
    ChatStack,
    answers,
    logged_page,
    open_chat,
    send,
    wait_for_answer,
    wait_idle,
)
from tests.support.openai_standin import REMOTE_ANSWER, REMOTE_MODEL, RemoteStandIn
from tests.support.webgpu_browser import CHROMIUM
from tests.tinymodel import build_model

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Chromium at {CHROMIUM}")
ENDLESS_ANSWER = "and on"


MARKDOWN_ANSWER = (
    "Here is **bold**, `code` and a list:\n\n- one\n- two\n\n```python\nprint('hi')\n```\n\n"
    "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"
    " [a link](http://127.0.0.1:9/page)"
)
"""Markdown to format, and HTML that must stay inert."""
PARAGRAPH = "Another paragraph of a long answer."


@dataclass(frozen=True)
class ChatModels:
    """The chat's models besides alpha and beta, each registered as `<folder name>-generic-cpu:1`."""

    endless: Path
    """Streams until the token budget at ~200 tokens/s (a real 16-layer MLP), so Stop has time."""
    markdown: Path
    """Answers with Markdown, and HTML that must stay inert."""
    paragraphs: Path
    """Streams one paragraph after another until the token budget."""


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> ChatModels:
    root = tmp_path_factory.mktemp("models")

    def streaming(name: str, answer: str) -> Path:
        return build_model(root / name, answer, endless=True, width=1024, depth=16, context_length=16384)

    return ChatModels(
        endless=streaming("endless", ENDLESS_ANSWER),
        markdown=build_model(root / "markdown", MARKDOWN_ANSWER),
        paragraphs=streaming("paragraphs", f"\n\n{PARAGRAPH}"),
    )


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, tiny_models: TinyModels, models: ChatModels
) -> Iterator[ChatStack]:
    """Alpha served; beta and the other chat models registered (the chat's picker lists them)."""
    stack = ChatStack.start(
        tmp_path_factory.mktemp("app"),
        Settings(model_path=tiny_models.alpha, runtime_port=free_port(), max_tokens=8192),
    )
    try:
        stack.ready()
        for model in (tiny_models.beta, *astuple(models)):
            stack.select(str(model))
        stack.select("alpha")
        yield stack
    finally:
        stack.stop()


def test_answer_streams_in_and_the_chat_is_kept_and_resumed(stack: ChatStack, page: Page) -> None:
    stack.ready()
    visited: list[str] = []
    page.on("framenavigated", lambda frame: visited.append(frame.url))
    open_chat(page, stack.link())
    # A first visit starts signed in: no detour through Chainlit's login page and a reload.
    assert not [url for url in visited if "/login" in url], visited
    send(page, "Hi there")
    wait_for_answer(page, ALPHA_ANSWER)
    wait_for_answer(page, "computed on this computer")
    wait_idle(page)

    page.reload()
    page.wait_for_selector("#thread-history [id^='thread-']", timeout=20_000)
    threads = page.locator("#thread-history [id^='thread-']")
    assert "Hi there" in threads.first.inner_text()
    threads.first.click()
    wait_for_answer(page, ALPHA_ANSWER)
    send(page, "And again?")
    wait_for_answer(page, ALPHA_ANSWER, count=2)


def choose_model(page: Page, model_id: str) -> None:
    """Pick a model in the chat's settings and confirm."""
    page.click("#chat-settings-open-modal")
    page.select_option("#model", value=model_id)
    page.get_by_role("button", name="Confirm").click()


def open_chat_on(stack: ChatStack, page: Page, model_id: str) -> None:
    """Open the chat and switch it to `model_id` (one of the models the stack registered)."""
    stack.ready()
    open_chat(page, stack.link())
    choose_model(page, model_id)
    wait_for_answer(page, f"Now using {model_id}")


def test_past_chats_are_searched_opened_and_deleted(stack: ChatStack, page: Page) -> None:
    stack.ready()
    open_chat(page, stack.link())
    for topic in ("Apples are red", "Bananas are yellow"):
        page.click("#new-chat")
        page.wait_for_url(f"{stack.url}/")
        assert page.is_visible("#welcome")
        send(page, topic)
        wait_for_answer(page, ALPHA_ANSWER)
        wait_idle(page)
        page.wait_for_selector(f"#thread-history a.current:has-text('{topic}')")
    threads = page.locator("#thread-history [id^='thread-']")

    page.fill("#thread-search", "bananas")
    page.wait_for_function("() => document.querySelectorAll('#thread-history a.thread').length === 1")
    assert threads.first.inner_text() == "Bananas are yellow"
    page.fill("#thread-search", "")
    page.wait_for_selector("#thread-history a.thread:has-text('Apples are red')")

    apples = page.locator("#thread-history .thread-row", has_text="Apples are red")
    apples.locator("a.thread").click()  # open it: the conversation and the address follow
    page.wait_for_selector("[data-step-type='user_message']:has-text('Apples are red')")
    assert "/thread/" in page.url and page.inner_text("#chat-title") == "Apples are red"
    apples.hover()
    apples.locator(".thread-delete").click()
    assert apples.count() == 1, "the first click only asks"
    apples.locator(".thread-delete").click()
    page.wait_for_selector("#thread-history a.thread:has-text('Apples are red')", state="detached")
    page.wait_for_url(f"{stack.url}/")  # the open chat was the one deleted: a new one instead
    page.reload()
    page.wait_for_selector("#thread-history a.thread:has-text('Bananas are yellow')")
    assert page.locator("#thread-history a.thread", has_text="Apples are red").count() == 0


def test_answers_are_formatted_and_their_html_is_inert(stack: ChatStack, page: Page) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_chat_on(stack, page, "markdown-generic-cpu:1")
    try:
        send(page, "Format something")
        wait_for_answer(page, "computed on this computer")
        wait_idle(page)
    finally:
        stack.select("alpha")
    answer = page.locator(ANSWER).filter(has_text="Here is").last
    assert answer.locator("strong").inner_text() == "bold"
    assert answer.locator("li").all_inner_texts() == ["one", "two"]
    assert answer.locator("pre code").inner_text().strip() == "print('hi')"
    link = answer.locator("a", has_text="a link")
    assert link.get_attribute("target") == "_blank" and "noopener" in (link.get_attribute("rel") or "")
    assert answer.locator("script, [onerror]").count() == 0
    assert page.title() != "pwned" and not dialogs
    answer.hover()
    answer.locator("button.copy").click()
    answer.locator("button.copy", has_text="Copied").wait_for()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("Here is **bold**") and "computed" not in copied


def test_switching_model_in_the_chat(stack: ChatStack, page: Page) -> None:
    stack.ready()
    open_chat(page, stack.link())
    choose_model(page, "beta-generic-cpu:1")
    wait_for_answer(page, "Now using beta-generic-cpu:1")
    send(page, "Who is this?")
    wait_for_answer(page, BETA_ANSWER)
    choose_model(page, "alpha-generic-cpu:1")
    wait_for_answer(page, "Now using alpha-generic-cpu:1")
    send(page, "And now?")
    wait_for_answer(page, ALPHA_ANSWER)


def test_stop_ends_a_long_answer(stack: ChatStack, page: Page) -> None:
    open_chat_on(stack, page, "endless-generic-cpu:1")
    try:
        send(page, "Go on forever")
        wait_for_answer(page, f"{ENDLESS_ANSWER} {ENDLESS_ANSWER} {ENDLESS_ANSWER}")
        page.click("#stop-button")
        wait_for_answer(page, "(stopped)")
        stopped = [text for text in answers(page) if "(stopped)" in text]
        assert ENDLESS_ANSWER in stopped[0]
        assert len(stopped[0]) < 8192 * 3, "the answer ran to its end: Stop did not stop it"
        # The model stopped too, not only the page: the runtime lets go of the model, which it
        # refuses while a session still uses it (as one generating on would, for ~40 s).
        switched = stack.select("alpha")
        assert switched.model_alias == "alpha", f"the runtime kept generating after Stop: {switched.message}"
    finally:
        stack.select("alpha")
    send(page, "Hello?")
    wait_for_answer(page, ALPHA_ANSWER, timeout_ms=10_000)
    # Nothing arrived after Stop: all the chat sent for the stopped answer came before this one.
    assert [text for text in answers(page) if "(stopped)" in text] == stopped


DRAWS_PER_FRAME = """
// Each change of an answer's text in the page, keyed by the frame that paints it: a change made
// in an animation frame callback by that frame's time, any other by "after" the last frame's
// time (the next frame paints it). And each piece of an answer the page receives.
window.draws = {};
window.pieces = 0;
let frameTime = 0, inFrame = false;
const requestFrame = window.requestAnimationFrame.bind(window);
window.requestAnimationFrame = (callback) => requestFrame((time) => {
  frameTime = time;
  inFrame = true;
  try { callback(time); } finally { queueMicrotask(() => { inFrame = false; }); }
});
const tick = () => window.requestAnimationFrame(tick);  // keeps the last frame's time fresh
tick();
new MutationObserver((records) => {
  const inAnswer = (node) => {
    const element = node.nodeType === Node.ELEMENT_NODE ? node : node.parentElement;
    return Boolean(element && element.closest('[data-step-type="assistant_message"] .content'));
  };
  if (!records.some((record) => inAnswer(record.target))) return;
  const painted = inFrame ? `${frameTime}` : `after ${frameTime}`;
  window.draws[painted] = (window.draws[painted] || 0) + 1;
}).observe(document, {subtree: true, childList: true, characterData: true});
const OriginalSocket = window.WebSocket;
window.WebSocket = function (...args) {
  const socket = new OriginalSocket(...args);
  socket.addEventListener("message", (event) => {
    if (String(event.data).startsWith('42["stream_token"')) window.pieces += 1;
  });
  return socket;
};
window.WebSocket.prototype = OriginalSocket.prototype;
Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
"""
"""Records, in the page, how many times an answer is drawn per painted frame."""


def test_a_fast_answer_is_sent_and_drawn_at_most_once_a_frame(stack: ChatStack, page: Page) -> None:
    """However fast the model streams, the chat server sends what came within a pace as one
    message, and the page draws once a frame at most, so neither falls behind. (Chainlit sent
    and drew once per token: 1,000 tokens left the page seconds behind.) The model streams a
    couple of hundred tokens a second: several per message, and long enough to be stopped."""
    page.add_init_script(DRAWS_PER_FRAME)
    open_chat_on(stack, page, "endless-generic-cpu:1")
    try:
        send(page, "Go on forever")
        # drawn while it streams (a loaded machine paints fewer frames a second)
        page.wait_for_function("() => Object.keys(window.draws).length >= 10", timeout=30_000)
        page.keyboard.press("Escape")  # Esc stops an answer, as the Stop button does
        wait_for_answer(page, "(stopped)")
    finally:
        stack.select("alpha")
    draws: dict[str, int] = page.evaluate("window.draws")
    pieces: int = page.evaluate("window.pieces")
    tokens = 2 * answers(page)[-1].count(" on")  # it says "and on" again and again: two tokens each
    assert max(draws.values()) == 1, f"frames painted several draws: {draws}"
    assert pieces < tokens / 2, f"{pieces} messages for {tokens} tokens: the server sent (nearly) every token"


def test_earlier_paragraphs_stay_put_while_an_answer_streams(stack: ChatStack, page: Page) -> None:
    """A streaming answer's finished paragraphs are drawn once, not at every frame: a user can
    select one (to copy it) while the answer goes on."""
    open_chat_on(stack, page, "paragraphs-generic-cpu:1")
    streaming = ".message.answer.streaming .content > p"
    try:
        send(page, "Write a lot")
        page.wait_for_function(f"() => document.querySelectorAll('{streaming}').length >= 3")
        selected = page.evaluate(
            f"""() => {{
              const range = document.createRange();
              range.selectNodeContents(document.querySelector('{streaming}'));
              getSelection().removeAllRanges();
              getSelection().addRange(range);
              return getSelection().toString();
            }}"""
        )
        assert selected == PARAGRAPH
        page.wait_for_function(f"() => document.querySelectorAll('{streaming}').length >= 10")
        assert page.evaluate("getSelection().toString()") == PARAGRAPH
        page.click("#stop-button")
        wait_for_answer(page, "(stopped)")
    finally:
        stack.select("alpha")


def test_killed_runtime_shows_restarting_then_answers(stack: ChatStack, page: Page) -> None:
    first = stack.ready()
    open_chat(page, stack.link())
    send(page, "Before")
    wait_for_answer(page, ALPHA_ANSWER)
    wait_idle(page)

    os.kill(first.pid, signal.SIGKILL)
    send(page, "During the restart")
    wait_for_answer(page, "restarting")
    wait_for_answer(page, ALPHA_ANSWER, count=2)
    assert stack.client.status() is not None
    assert stack.ready().pid != first.pid


def test_killed_chat_server_is_restarted_and_the_page_carries_on(stack: ChatStack, page: Page) -> None:
    """The page says it is reconnecting, keeps what the user types, and comes back by itself
    with the chat as it was; the next message is answered in the same chat."""
    stack.ready()
    open_chat(page, stack.link())
    send(page, "Remember this chat")
    wait_for_answer(page, ALPHA_ANSWER)
    wait_idle(page)
    chat_url = page.url
    assert "/thread/" in chat_url
    assert stack.chat.supervisor is not None
    old = stack.chat.supervisor.status.pid
    assert old is not None

    os.kill(old, signal.SIGKILL)
    page.wait_for_selector("#connection-banner:has-text('Reconnecting')", timeout=10_000)
    page.fill("#chat-input", "Typed while it restarts")
    assert page.is_disabled("#chat-submit")
    page.keyboard.press("Enter")  # refused while disconnected: the text stays
    stack.chat.supervisor.wait_until(lambda s: s.pid != old and s.state is ServiceState.RUNNING, 60)
    page.wait_for_selector("#app[data-connection='connected']", timeout=20_000)
    assert page.is_hidden("#connection-banner")
    assert page.input_value("#chat-input") == "Typed while it restarts"
    assert page.url == chat_url
    page.wait_for_selector("[data-step-type='user_message']:has-text('Remember this chat')")
    wait_for_answer(page, ALPHA_ANSWER)

    page.keyboard.press("Enter")
    wait_for_answer(page, ALPHA_ANSWER, count=2)
    wait_idle(page)
    page.reload()
    page.wait_for_selector("[data-step-type='user_message']:has-text('Typed while it restarts')")
    # the list of chats is read after the chat itself
    page.wait_for_selector("#thread-history [id^='thread-']:has-text('Remember this chat')")
    assert page.locator("#thread-history [id^='thread-']", has_text="Remember this chat").count() == 1


def test_over_long_conversation_is_trimmed_answered_and_the_user_told(stack: ChatStack, page: Page) -> None:
    stack.ready()
    open_chat(page, stack.link())
    long_text = "words " * 60  # ~360 tokens for the byte-level tiny model; its context is 512
    for count in (1, 2, 3):
        send(page, f"{count} {long_text}")
        wait_for_answer(page, ALPHA_ANSWER, count=count)
        wait_idle(page)
    wait_for_answer(page, "were left out of this answer")
    assert not [text for text in answers(page) if "error" in text.lower()]


@pytest.fixture(scope="module")
def remote() -> Iterator[RemoteStandIn]:
    with RemoteStandIn() as standin:
        yield standin


def routed_stack(
    root: Path, remote: RemoteStandIn, routing: str, model_path: Path | None, offline: bool = False
) -> ChatStack:
    settings = Settings(
        offline=offline,
        model="no-such-model",
        model_path=model_path,
        allow_download=False,
        runtime_port=free_port(),
        remote_base_url=remote.base_url,
        remote_model=REMOTE_MODEL,
        remote_api_key="test-key",
        routing=routing,
    )
    return ChatStack.start(root, settings)


@pytest.mark.parametrize(
    ("routing", "offline"), [("local-only", False), ("local-first", True)], ids=["local-only", "offline"]
)
def test_local_only_and_offline_never_contact_the_remote_endpoint(
    tmp_path: Path, remote: RemoteStandIn, tiny_models: TinyModels, page: Page, *, routing: str, offline: bool
) -> None:
    """Not even for a prompt the local model cannot take (local-first would ask the remote one,
    but not in offline mode)."""
    remote.requests.clear()
    stack = routed_stack(tmp_path / "app", remote, routing, model_path=tiny_models.alpha, offline=offline)
    try:
        stack.ready()
        open_chat(page, stack.link())
        send(page, "Hi there")
        wait_for_answer(page, "computed on this computer")
        send(page, "def f(): pass  # code, and " + "long " * 400)  # far over alpha's context
        wait_for_answer(page, "too long for alpha-generic-cpu:1")
    finally:
        stack.stop()
    assert remote.requests == []
    assert not [text for text in answers(page) if "remote" in text]


def test_local_first_falls_back_when_local_fails_or_the_prompt_does_not_fit(
    tmp_path: Path, remote: RemoteStandIn, tiny_models: TinyModels, page: Page
) -> None:
    remote.requests.clear()
    stack = routed_stack(tmp_path / "app", remote, "local-first", model_path=tiny_models.alpha)
    try:
        stack.ready()
        open_chat(page, stack.link())
        send(page, "Hi there")
        wait_for_answer(page, "computed on this computer")
        assert ALPHA_ANSWER in answers(page)[-1]
        assert remote.requests == []

        send(page, "too long " * 400)  # far over alpha's 512-token context
        wait_for_answer(page, "computed remotely")
        assert REMOTE_ANSWER in answers(page)[-1]
        assert [r for r in remote.requests if r.startswith("POST")]

        stack.runtime.stop()  # the local model is gone
        send(page, "Still there?")
        wait_for_answer(page, REMOTE_ANSWER, count=2)
    finally:
        stack.stop()


def test_a_resumed_chat_sends_the_whole_conversation_with_the_system_prompt(
    tmp_path: Path, remote: RemoteStandIn, page: Page
) -> None:
    """Rules routing with every task type remote: the stand-in sees exactly what the model gets,
    with the temperature chosen in the chat before it was left and resumed."""
    settings = remote.answering_all(system_prompt="Be brief.", temperature=0.3)
    stack = ChatStack.start(tmp_path / "app", settings)
    try:
        stack.chat_ready()
        open_chat(page, stack.link())
        page.click("#chat-settings-open-modal")
        page.fill("#temperature", "1.2")
        page.get_by_role("button", name="Confirm").click()
        send(page, "First question")
        wait_for_answer(page, "computed remotely")
        wait_idle(page)
        page.click("#new-chat")  # leave the chat, then come back to it
        page.wait_for_url(f"{stack.url}/")
        page.locator("#thread-history [id^='thread-']", has_text="First question").first.click()
        wait_for_answer(page, REMOTE_ANSWER)
        page.click("#chat-settings-open-modal")
        assert page.input_value("#temperature") == "1.2"
        page.get_by_role("button", name="Cancel").click()
        send(page, "Second question")
        wait_for_answer(page, REMOTE_ANSWER, count=2)
    finally:
        stack.stop()
    last = remote.bodies[-1]
    assert [(m["role"], m["content"].strip()) for m in last["messages"]] == [
        ("system", "Be brief."),
        ("user", "First question"),
        ("assistant", REMOTE_ANSWER),
        ("user", "Second question"),
    ]
    assert [body["temperature"] for body in remote.bodies[-2:]] == [1.2, 1.2]
    assert last["stream"] is True


def saved_answer(stack: ChatStack, thread_id: str) -> str:
    """A chat's (longest) answer as the history database holds it now; empty while none is saved."""
    database = stack.paths.data_dir / "chat" / "history.sqlite3"
    with contextlib.closing(sqlite3.connect(database)) as connection:
        rows = connection.execute(
            """SELECT "output" FROM steps WHERE "threadId" = ? AND "type" = 'assistant_message'""",
            (thread_id,),
        ).fetchall()
    return max((str(output or "") for (output,) in rows), key=len, default="")


def test_what_was_shown_survives_a_kill_of_the_chat_server_mid_answer(
    stack: ChatStack, page: Page, models: ChatModels
) -> None:
    stack.ready()
    stack.select(str(models.endless))
    try:
        open_chat(page, stack.link())
        send(page, "Keep going, then crash")
        wait_for_answer(page, " ".join([ENDLESS_ANSWER] * 20))
        shown = next(text for text in answers(page) if ENDLESS_ANSWER in text)
        page.wait_for_url("**/thread/*")
        thread_id = page.url.rsplit("/", 1)[1]
        # The partial answer is saved every second while it streams: wait until what was shown is.
        assert wait_for(
            lambda: saved_answer(stack, thread_id).count(ENDLESS_ANSWER) >= shown.count(ENDLESS_ANSWER),
            timeout_s=10,
        ), f"what was shown is not in the history: {saved_answer(stack, thread_id)[:80]!r}"
        assert stack.chat.supervisor is not None
        old = stack.chat.supervisor.status.pid
        assert old is not None
        os.kill(old, signal.SIGKILL)
        stack.chat.supervisor.wait_until(lambda s: s.pid != old and s.state is ServiceState.RUNNING, 60)
    finally:
        stack.select("alpha")
    open_chat(page, stack.link())
    page.locator("#thread-history [id^='thread-']", has_text="Keep going, then crash").first.click()
    wait_for_answer(page, ENDLESS_ANSWER)
    kept = next(text for text in answers(page) if ENDLESS_ANSWER in text)
    assert len(kept) >= len(shown), f"shown {len(shown)} characters, kept {len(kept)}"


def test_the_chat_refuses_requests_not_addressed_to_loopback(stack: ChatStack) -> None:
    """The local user needs no password, so a rebinding page must not reach the chat."""
    stack.chat_ready()
    rebound = urllib.request.Request(f"{stack.url}/project/settings", headers={"Host": "evil.example"})
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(rebound, timeout=5)
    assert raised.value.code == 400
    raised.value.close()
    assert http_ok(f"{stack.url}/health")


def plain_request(
    url: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    """A request as any other program on the machine can make it: no cookie, no secret, no
    redirect followed. The status, the headers (lower-case names) and the body."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request("POST" if data is not None else "GET", target, body=data, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
    finally:
        connection.close()


def websocket_handshake(url: str) -> str:
    """The status line the server answers a WebSocket upgrade with (101 when it is accepted)."""
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        return sock.recv(4096).decode(errors="replace").split("\r\n", 1)[0]


def test_only_the_users_window_and_browsers_reach_the_chat(stack: ChatStack, browser: Browser) -> None:
    """Another program or account on the machine holds no run secret: no cookie, no chat, no
    history; a browser opened with the app's link chats, and the link opens the chat only once."""
    stack.chat_ready()
    status, headers, body = plain_request(f"{stack.url}/", None, {"Accept": "text/html"})
    assert (status, "set-cookie" in headers) == (403, False)
    assert "Open the chat from the Foundry Desk icon" in body
    threads = b'{"pagination": {"first": 20}, "filter": {}}'
    json_type = {"Content-Type": "application/json"}
    assert plain_request(f"{stack.url}/project/threads", threads, json_type)[0] == 401
    assert plain_request(f"{stack.url}/user")[0] == 401
    assert plain_request(f"{stack.url}/ws/socket.io/?EIO=4&transport=polling")[0] == 401
    assert " 403 " in websocket_handshake(f"{stack.url}/ws/socket.io/?EIO=4&transport=websocket")
    assert (
        plain_request(f"{stack.url}/setup/state", None, stack.authorization)[0] == 200
    )  # a tool of the user's

    link = stack.link()
    with logged_page(browser) as page:
        open_chat(page, link)
        assert page.url == f"{stack.url}/", "the token stays out of the address bar and the history"
        cookie = next(c for c in page.context.cookies() if c["name"] == COOKIE_NAME)
        assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")
        send(page, "Is it only me here?")
        wait_for_answer(page, ALPHA_ANSWER)
    with logged_page(browser) as page:
        page.goto(link)
        assert "This link has been used already" in page.inner_text("body")
        assert not [c for c in page.context.cookies() if c["name"] == COOKIE_NAME]
