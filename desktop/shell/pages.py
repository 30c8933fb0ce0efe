"""What the app's window shows: the chat (the moment it is up) or the WebGPU page.

The window is a child process (`window.WindowClient`); this decides its page. The chat opens with
a new one-time link each time (the window gets the chat's cookie with it). While the chat is not
up yet a local placeholder page says so, and the chat replaces it as soon as it is.
"""

from __future__ import annotations

import html
import threading
from typing import Protocol

from desktop.shell.window import WindowClient
from desktop.webgpu import WebGpuServer, serve_webgpu

CHAT_TITLE = "Foundry Desk — Chat"
WEBGPU_TITLE = "Foundry Desk — WebGPU demo"


class ChatDoor(Protocol):
    """Where the chat is (`ServiceStack`)."""

    @property
    def has_chat(self) -> bool:
        """This run has a chat (started, or starting)."""

    def chat_link(self) -> str | None:
        """A new one-time link that opens the chat signed in, while it serves; else None."""


class WindowPages:
    """The window's page: which one, and the chat once it is up."""

    def __init__(self, window: WindowClient, chat: ChatDoor) -> None:
        self.window = window
        self.chat = chat
        self.webgpu: WebGpuServer | None = None
        self._page: str | None = None
        self._waiting_for_chat = False
        self._lock = threading.Lock()

    def open_chat(self, status_text: str, view: str | None = None) -> None:
        """The chat, or a page saying it is on its way (with the app's state, `status_text`).
        `view`: a part of the chat page to open at once (e.g. "files": the Your files dialog)."""
        self._page = "chat"
        link = self.chat.chat_link()
        if link is not None:
            self._waiting_for_chat = False
            self.window.show(f"{link}#{view}" if view else link, CHAT_TITLE)
            return
        self._waiting_for_chat = self.chat.has_chat
        reason = "The chat is starting…" if self.chat.has_chat else "The chat is not available."
        self.window.show_html(placeholder_page(reason, status_text), CHAT_TITLE)

    def open_webgpu(self) -> None:
        with self._lock:
            if self.webgpu is None:
                self.webgpu = serve_webgpu()
        self._page = "webgpu"
        self._waiting_for_chat = False
        self.window.show(self.webgpu.url, WEBGPU_TITLE)

    def chat_moved(self) -> None:
        """The chat starts again (maybe at another address): the window shows it once it is up."""
        if self._page == "chat":
            self._waiting_for_chat = True

    def show_chat_if_waiting(self) -> None:
        """Call at each change of the services, and when the window is shown."""
        if not (self._page == "chat" and self._waiting_for_chat and self.window.visible):
            return
        link = self.chat.chat_link()
        if link is not None:
            self._waiting_for_chat = False
            self.window.show(link, CHAT_TITLE)

    def close(self) -> None:
        self.window.close()
        if self.webgpu is not None:
            self.webgpu.close()


def placeholder_page(headline: str, detail: str) -> str:
    """A local page shown while the chat is not up yet (no network, no server needed)."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Foundry Desk</title><style>"
        "body{font-family:system-ui,sans-serif;background:#0f3d3a;color:#fff;display:flex;"
        "align-items:center;justify-content:center;height:100vh;margin:0}"
        "main{text-align:center}p{opacity:.8}</style></head><body><main>"
        f"<h1>{html.escape(headline)}</h1><p>{html.escape(detail)}</p>"
        "</main></body></html>"
    )
