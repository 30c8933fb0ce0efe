"""The chat under load and bad input: many chats at once, a huge paste, garbage on its socket.

The real runtime host and chat server, driven in Debian's Chromium offline (as in
tests/test_chat_browser.py). Each test ends by checking that the chat history is intact.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sqlite3
import struct
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from desktop.chat.server import MAX_SOCKET_MESSAGE
from desktop.chat.trimming import MAX_MESSAGE_CHARS
from desktop.config import Settings
from desktop.probe import http_ok
from tests.conftest import free_port, nothing_left_behind
from tests.support.chat_browser import (
    ANSWER,
    USER,
    ChatStack,
    answers,
    logged_page,
    open_chat,
    send,
    wait_for_answer,
    wait_idle,
)
from tests.support.webgpu_browser import CHROMIUM
from tests.tinymodel import build_model

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Chromium at {CHROMIUM}")

LONG_ANSWER = " ".join(f"w{n}" for n in range(1, 301))
"""Three hundred tokens (one per word): long enough for twenty answers to stream side by side."""
DONE = "computed on this computer"
"""The line under a finished answer."""
CHATS = 20


@pytest.fixture(scope="module", autouse=True)
def no_leftover_processes() -> Iterator[None]:
    """The processes this module starts (runtime host, chat server, Chromium) are all gone at
    its end (conftest's `no_leftover_children`, for the module's shared stack and browser)."""
    with nothing_left_behind(timeout_s=10):
        yield


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatStack]:
    model = build_model(tmp_path_factory.mktemp("models") / "long", LONG_ANSWER, context_length=2048)
    stack = ChatStack.start(
        tmp_path_factory.mktemp("app"), Settings(model_path=model, runtime_port=free_port())
    )
    try:
        stack.ready()
        yield stack
    finally:
        stack.stop()


def stored_answers(stack: ChatStack) -> dict[str, str]:
    """Each stored chat's first message and its answer, read from the history database."""
    database = stack.paths.data_dir / "chat" / "history.sqlite3"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        rows = connection.execute(
            "SELECT asked.output, answer.output FROM steps AS asked JOIN steps AS answer"
            " ON asked.threadId = answer.threadId"
            " WHERE asked.type = 'user_message' AND answer.type = 'assistant_message'"
        ).fetchall()
    connection.close()
    return {str(asked): str(answer) for asked, answer in rows}


def test_twenty_chats_streaming_at_once_all_complete(stack: ChatStack, browser: Browser) -> None:
    """Twenty browsers send their messages together, so twenty answers stream side by side:
    each gets its whole answer, and every chat is kept whole. (SQLite's write lock, fought over,
    used to lose some of the messages and chats from the history.)"""
    stack.ready()
    asked = [f"Chat {number} of {CHATS}" for number in range(1, CHATS + 1)]
    contexts = [browser.new_context() for _ in asked]
    try:
        pages = [context.new_page() for context in contexts]
        for chat_page, text in zip(pages, asked, strict=True):
            open_chat(chat_page, stack.link())
            chat_page.fill("#chat-input", text)
        for chat_page in pages:  # all twenty, one right after the other
            chat_page.keyboard.press("Enter")
        for chat_page, text in zip(pages, asked, strict=True):
            chat_page.locator(ANSWER, has_text=DONE).wait_for(timeout=120_000)
            assert [LONG_ANSWER in answer for answer in answers(chat_page)] == [True], text
    finally:
        for context in contexts:
            context.close()

    with logged_page(browser) as page:
        open_chat(page, stack.link())
        page.locator("#thread-history a.thread", has_text=asked[0]).wait_for()
        assert set(asked) <= set(page.locator("#thread-history a.thread").all_inner_texts())
        page.locator("#thread-history a.thread", has_text=asked[-1]).click()
        page.locator(ANSWER, has_text=DONE).wait_for()
        assert LONG_ANSWER in answers(page)[0]
    stored = stored_answers(stack)
    assert [text for text in asked if LONG_ANSWER not in stored.get(text, "")] == [], "chats not kept whole"


PASTED = ('A pasted log line, "quoted", naïve, with a tab\tand 0123456789.\n' * 20_000)[:1_048_576]
"""One megabyte of pasted text (a million characters): twice what the chat takes."""


def test_a_one_megabyte_paste_is_refused_with_a_note_and_kept(stack: ChatStack, page: Page) -> None:
    """Sent, it used to close the page's connection (Socket.IO's limit is 1,000,000 bytes): the
    message box was emptied and no answer came, without a word. Now the chat says how long a
    message may be, the text stays in the box, and the chat goes on."""
    stack.ready()
    open_chat(page, stack.link())
    send(page, "Before the paste")
    wait_for_answer(page, DONE)
    wait_idle(page)

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.evaluate("(text) => navigator.clipboard.writeText(text)", PASTED)
    page.focus("#chat-input")
    page.keyboard.press("Control+V")  # a real paste
    page.wait_for_function(
        "(length) => document.querySelector('#chat-input').value.length === length", arg=len(PASTED)
    )
    page.keyboard.press("Enter")
    note = page.locator(".message.error", has_text="Not sent")
    note.wait_for()
    assert f"{len(PASTED):,} characters" in note.inner_text()
    assert f"at most {MAX_MESSAGE_CHARS:,}" in note.inner_text()
    assert page.input_value("#chat-input") == PASTED, "the pasted text is kept"
    assert page.locator(USER).count() == 1, "nothing was sent"
    assert page.get_attribute("#app", "data-connection") == "connected"

    send(page, "A shorter question")  # the user cuts it down
    wait_for_answer(page, DONE, count=2)
    wait_idle(page)
    page.reload()
    page.wait_for_selector("[data-step-type='user_message']:has-text('A shorter question')")
    assert [text.strip() for text in page.locator(USER).all_inner_texts()] == [
        "Before the paste",
        "A shorter question",
    ]
    assert [LONG_ANSWER in text for text in answers(page)] == [True, True]


class RawSocket:
    """A WebSocket to the chat's Socket.IO route that sends any frame, well formed or not: what a
    broken or hostile program holding the run's secret can send (the gate keeps out the rest)."""

    TEXT, CLOSE = 0x1, 0x8

    def __init__(self, stack: ChatStack) -> None:
        parts = urllib.parse.urlsplit(stack.url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
        self.buffer = b""
        self.sock.sendall(
            f"GET /ws/socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: {stack.authorization['Authorization']}\r\n"
            f"Cookie: {chainlit_cookie(stack)}\r\n\r\n".encode()
        )
        head = self._read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 "), head
        opened = self.receive()
        assert opened is not None and opened.startswith("0{"), opened  # Engine.IO's handshake

    def join(self) -> RawSocket:
        """Join the chat as its page does: a Socket.IO connect with Chainlit's session fields."""
        auth = {"sessionId": str(uuid.uuid4()), "clientType": "webapp", "userEnv": "{}", "threadId": ""}
        self.send("40" + json.dumps(auth))
        joined = self.receive()
        assert joined is not None and joined.startswith("40{"), joined
        assert self.carries_on()
        return self

    def carries_on(self) -> bool:
        """Whether the server still serves this connection: it answers the page's greeting (or
        False: it closed the connection)."""
        try:
            self.send('42["connection_successful"]')
        except ConnectionError:
            return False
        return self.wait_for('"clear_call_fn"') is not None

    def send(self, text: str) -> None:
        self.send_frame(text.encode())

    def send_frame(self, payload: bytes, opcode: int = TEXT, masked: bool = True) -> None:
        size = len(payload)
        if size < 126:
            length = bytes([size])
        elif size < 1 << 16:
            length = bytes([126]) + struct.pack("!H", size)
        else:
            length = bytes([127]) + struct.pack("!Q", size)
        mask = os.urandom(4) if masked else b""
        if masked:  # as every client must
            length = bytes([length[0] | 0x80]) + length[1:]
            key = (mask * (size // 4 + 1))[:size]
            payload = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")
        self.sock.sendall(bytes([0x80 | opcode]) + length + mask + payload)

    def receive(self) -> str | None:
        """The next text frame; None once the server has closed the connection."""
        try:
            while True:
                first, second = self._read(2)
                size = second & 0x7F
                if size == 126:
                    (size,) = struct.unpack("!H", self._read(2))
                elif size == 127:
                    (size,) = struct.unpack("!Q", self._read(8))
                payload = self._read(size)
                opcode = first & 0x0F
                if opcode == self.CLOSE:
                    return None
                if opcode == self.TEXT:
                    return payload.decode()
        except (EOFError, ConnectionError):
            return None

    def wait_for(self, fragment: str) -> list[str] | None:
        """The text frames up to the first that holds `fragment`; None if the connection closed."""
        frames: list[str] = []
        while (frame := self.receive()) is not None:
            frames.append(frame)
            if fragment in frame:
                return frames
        return None

    def close(self) -> None:
        self.sock.close()

    def _read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _read_until(self, end: bytes) -> bytes:
        while end not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        head, self.buffer = self.buffer.split(end, 1)
        return head


def chainlit_cookie(stack: ChatStack) -> str:
    """Chainlit's sign-in cookie for the local user, as the page signs in (past the gate)."""
    parts = urllib.parse.urlsplit(stack.url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        connection.request("POST", "/auth/header", headers=stack.authorization)
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status
        cookies = [
            value.split(";")[0] for name, value in response.getheaders() if name.lower() == "set-cookie"
        ]
    finally:
        connection.close()
    return "; ".join(cookies)


def polling(
    stack: ChatStack, method: str, sid: str | None = None, body: bytes | None = None
) -> tuple[int, bytes]:
    """A request to Socket.IO's long-polling route, with the run's secret: its status and body."""
    parts = urllib.parse.urlsplit(stack.url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    query = "EIO=4&transport=polling" + (f"&sid={sid}" if sid else "")
    headers = {**stack.authorization, "Cookie": chainlit_cookie(stack), "Content-Type": "text/plain"}
    try:
        connection.request(method, f"/ws/socket.io/?{query}", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def client_message(text: str) -> str:
    """A user's message as the page sends it."""
    step = {
        "threadId": "",
        "id": str(uuid.uuid4()),
        "name": "local",
        "type": "user_message",
        "output": text,
        "createdAt": "2026-01-01T00:00:00Z",
        "metadata": {},
    }
    return "42" + json.dumps(["client_message", {"message": step, "fileReferences": []}])


MALFORMED = (
    "garbage",  # not an Engine.IO packet
    "4garbage",  # not a Socket.IO packet
    '42["client_message", {"message": ',  # JSON cut short
    "42[]",
    "42[1]",
    '42{"client_message": 1}',
    '42["no_such_event", 1]',
    '40/elsewhere,{"sessionId": "x"}',  # a namespace the chat does not have
    '42["client_message", 5]',  # wrong payload types
    '42["client_message", {"message": {"output": 7}}]',
    '42["chat_settings_change", "hot"]',
    '42["chat_settings_change", {"temperature": "hot", "max_tokens": []}]',
    '42["edit_message", {}]',
    '42["message_favorite", null]',
    '42["audio_chunk", {}]',
)
"""Socket.IO messages the chat's page never sends."""


def chat_before(stack: ChatStack, browser: Browser, text: str) -> int:
    """Keep a chat (`text`, answered) in the history; returns the chat server's pid."""
    stack.ready()
    with logged_page(browser) as page:
        open_chat(page, stack.link())
        send(page, text)
        wait_for_answer(page, DONE)
        wait_idle(page)
    assert stack.chat.supervisor is not None and stack.chat.supervisor.status.pid is not None
    return stack.chat.supervisor.status.pid


def assert_chat_carries_on(stack: ChatStack, browser: Browser, server: int, earlier: str) -> None:
    """The same chat server process still serves (not one its supervisor restarted): it answers
    /health, the chat kept before opens with its answer, and a message in it is answered."""
    assert stack.chat.supervisor is not None
    assert stack.chat.supervisor.status.pid == server, "the chat server was restarted"
    assert http_ok(f"{stack.url}/health")
    with logged_page(browser) as page:
        open_chat(page, stack.link())
        page.locator("#thread-history a.thread", has_text=earlier).click()
        wait_for_answer(page, LONG_ANSWER)
        send(page, "And now?")
        wait_for_answer(page, LONG_ANSWER, count=2)


def test_malformed_socket_io_messages_get_errors_and_the_server_carries_on(
    stack: ChatStack, browser: Browser
) -> None:
    """Garbage, bad JSON, unknown events and payloads of the wrong type cost at most an error
    message, or the connection of the program that sent them: never the server."""
    server = chat_before(stack, browser, "Before the garbage")
    carried_on: dict[str, bool] = {}
    for text in MALFORMED:
        raw = RawSocket(stack).join()
        try:
            raw.send(text)
            carried_on[text] = raw.carries_on()
        finally:
            raw.close()
    # Only a frame that is not Engine.IO at all ends its connection.
    assert [text for text in MALFORMED if not carried_on[text]] == ["garbage"]

    raw = RawSocket(stack).join()
    try:
        raw.send('42["client_message", 5]')
        assert raw.wait_for('"isError":true') is not None, "no error message for a malformed message"
        raw.send(client_message("x" * (MAX_MESSAGE_CHARS + 1)))  # longer than the chat takes
        frames = raw.wait_for("the chat takes at most")
        assert frames is not None and f"{MAX_MESSAGE_CHARS + 1:,} characters" in frames[-1]
        raw.send(client_message("Still there?"))
        assert raw.wait_for(DONE) is not None, "the connection no longer chats"
    finally:
        raw.close()
    assert_chat_carries_on(stack, browser, server, "Before the garbage")


BROKEN_FRAMES: dict[str, Callable[[RawSocket], None]] = {
    "invalid UTF-8": lambda raw: raw.send_frame(b'42["client_message", "\xff\xfe\x80"]'),
    "a reserved opcode": lambda raw: raw.send_frame(b"x", opcode=0x3),
    "an unmasked frame": lambda raw: raw.send_frame(b"42[]", masked=False),
    "a message over Socket.IO's limit": lambda raw: raw.send(client_message("x" * MAX_SOCKET_MESSAGE)),
}
"""WebSocket frames that break the protocol, or its limit."""


def test_broken_frames_and_polling_requests_get_errors_and_the_server_carries_on(
    stack: ChatStack, browser: Browser
) -> None:
    """Frames that break the WebSocket protocol (invalid UTF-8 in a text frame among them) end
    their connection; malformed long-polling requests get an HTTP answer. The server goes on."""
    server = chat_before(stack, browser, "Before the broken frames")
    for what, breach in BROKEN_FRAMES.items():
        raw = RawSocket(stack).join()
        try:
            breach(raw)
            assert not raw.carries_on(), f"{what}: the connection went on"
        finally:
            raw.close()

    # Socket.IO's other transport, HTTP long-polling (which the page does not use).
    status, opened = polling(stack, "GET")
    assert status == 200 and opened.startswith(b"0{"), (status, opened)
    sid = json.loads(opened[1:])["sid"]
    for body in (b"\xff\xfe\x80 not UTF-8", b"40garbage", b'42["client_message", 5', b"\x00" * 1000):
        status, answer = polling(stack, "POST", sid, body)
        assert status < 500, (body[:20], status, answer)
    assert polling(stack, "GET", "no-such-session")[0] == 400
    assert_chat_carries_on(stack, browser, server, "Before the broken frames")
