"""Chat completions streamed from an OpenAI-compatible endpoint, for the chat and for Compare.

The answer's server-sent events are read with aiohttp (its HTTP parser is C), at most once per
`PACE_S`: after a read the connection is left alone (its transport paused), so the tokens the
model sends meanwhile wait in the socket and come in the next read together; the chat sends them
on to the page as one message (`desktop.chat.streaming`). Measured on a 2-core laptop with 1,000
tokens from the local runtime (`tests/benchmark_chat.py`): the `openai` client's stream cost the
chat server 0.6 ms of CPU per token (its HTTP stack parses each chunk in Python, then a pydantic
object per chunk), this reader and a message per `PACE_S` 0.10-0.12 ms. With two fast models answering
at once (Compare) that CPU came from the models themselves.

The first piece of an answer is yielded the moment it arrives. Closing the generator closes the
connection, which is what stops the model generating.

Errors: `Unreachable` (no connection, or it was lost partway) and `Refused` (an HTTP error status,
or an error event partway), both `CompletionError`s with the endpoint's own `message` and, for an
HTTP error, its `status`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from desktop.errors import FoundryDeskError
from desktop.loopback import on_this_computer

PACE_S = 1 / 30
"""An answer is read, and sent on to the page, at most this often: two frames of the page, which
draws once a frame. A read and a message per token cost the chat server about a millisecond of CPU
per token; at 60 reads a second the fast stream took 0.22 ms per token, at 30 0.10-0.12 (at 20
no less, and the text would move in larger steps)."""
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 120.0
"""The longest silence within an answer (a model on a busy laptop thinks; a dead one is noticed)."""


class CompletionError(FoundryDeskError):
    """The endpoint did not answer; `message` is what it said (or what happened)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        """The HTTP status of a refusal; None when there was none."""


class Unreachable(CompletionError):
    """No connection to the endpoint, or the connection was lost partway (its runtime stopped,
    the network went)."""


class Refused(CompletionError):
    """The endpoint answered with an error: an HTTP error status, or an error event partway."""


@dataclass
class StreamEnd:
    """What the stream said about itself, filled in as it goes."""

    finish_reason: str | None = None
    """Why the model stopped ("stop", "length"), once it has said."""
    output_tokens: int | None = None
    """The tokens the endpoint counted for the answer (`usage`), when it says (`count_usage`)."""
    pieces: int = 0
    """Chunks with text: a token each for the endpoints we know (Foundry Local, OpenAI)."""


class Completions:
    """One endpoint's chat completions; its connections are kept for the next request (one
    instance per endpoint, used on one event loop; `close` at the end)."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.url = f"{base_url.rstrip('/')}/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        # An HTTP proxy set in the environment is for the outside world: a prompt for a model on
        # this computer never goes through one.
        self._trust_env = not on_this_computer(base_url)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def stream(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        max_tokens: int,
        temperature: float,
        end: StreamEnd,
        count_usage: bool = False,
    ) -> AsyncGenerator[str, None]:
        """The answer's text, piece by piece as the endpoint sends it. `count_usage` asks the
        endpoint to count the answer's tokens (`stream_options`), for Compare."""
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        if count_usage:
            body["stream_options"] = {"include_usage": True}
        try:
            response = await self._open_session().post(self.url, data=json.dumps(body), headers=self._headers)
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise Unreachable(f"Cannot reach {self.url}: {error or type(error).__name__}") from error
        finished = False
        try:
            if response.status >= 400:
                raise await refusal(response)
            async for chunk in paced_events(response):
                if chunk == "[DONE]":
                    finished = True
                    return
                text = read_chunk(parsed(chunk), end)
                if text:
                    end.pieces += 1
                    yield text
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise Unreachable(
                f"The connection to {self.url} was lost: {error or type(error).__name__}"
            ) from error
        finally:
            # Whole: the connection serves the next request. Not (Stop, an error): it is closed,
            # and the model stops with it.
            if finished:
                response.release()
            else:
                response.close()

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=CONNECT_TIMEOUT_S, sock_read=READ_TIMEOUT_S
                ),
                trust_env=self._trust_env,
            )
        return self._session


async def refusal(response: aiohttp.ClientResponse) -> Refused:
    """The endpoint's error, as it said it: the `error.message` of its JSON body, else the body."""
    text = (await response.text(errors="replace")).strip()
    message = text
    try:
        body = json.loads(text)
    except ValueError:
        pass
    else:
        error = body.get("error", body) if isinstance(body, dict) else None
        said = error.get("message") if isinstance(error, dict) else None
        message = said if isinstance(said, str) and said else text
    return Refused(message or f"HTTP {response.status}", response.status)


def parsed(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise Refused(f"The endpoint sent an event that is not JSON: {data[:80]!r}") from None


def read_chunk(chunk: Any, end: StreamEnd) -> str:
    """The text of one chunk; its finish reason and token count go to `end`. An error event (an
    endpoint that fails after it has begun to answer) raises `Refused`."""
    if not isinstance(chunk, dict):
        return ""
    error = chunk.get("error")
    if error:
        said = error.get("message") if isinstance(error, dict) else None
        raise Refused(said if isinstance(said, str) and said else "An error occurred during streaming")
    usage = chunk.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
        end.output_tokens = usage["completion_tokens"]
    choices = chunk.get("choices")
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        return ""
    choice = choices[0]
    if choice.get("finish_reason"):
        end.finish_reason = str(choice["finish_reason"])
    delta = choice.get("delta")
    text = delta.get("content") if isinstance(delta, dict) else None
    return text if isinstance(text, str) else ""


async def paced_events(response: aiohttp.ClientResponse) -> AsyncIterator[str]:
    """The `data` of each event of a `text/event-stream` body, read at most once per `PACE_S`
    (see the module's docstring)."""
    connection = response.connection
    transport = connection.transport if connection is not None else None
    pending = b""
    async for received in response.content.iter_any():
        pending += received.replace(b"\r\n", b"\n")
        *events, pending = pending.split(b"\n\n")
        for event in events:
            data = data_of(event)
            if data is not None:
                yield data
        if transport is not None and not transport.is_closing():
            transport.pause_reading()
            try:
                await asyncio.sleep(PACE_S)
            finally:
                transport.resume_reading()
    data = data_of(pending)
    if data is not None:
        yield data


def data_of(event: bytes) -> str | None:
    """An event's `data` (its lines joined, as the standard says); None for an event without
    (a comment, a keep-alive)."""
    lines = [line[5:].removeprefix(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines).decode() if lines else None
