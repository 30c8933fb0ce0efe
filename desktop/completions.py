"""One chat completion streamed from an OpenAI-compatible endpoint, read without a pydantic
object per chunk.

The request goes through the `openai` client (its connection pool, its errors: the callers
handle `openai.APIError` and `openai.APIConnectionError`, also for a connection lost mid-answer);
the server-sent events of the answer are read here, one `json.loads` per chunk. The client's own
stream builds a typed object for every chunk: a third of a millisecond of CPU per token on a
2-core laptop, which two fast models streaming at once (Compare) would take from the models.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2  # the openai client's HTTP library (its own fork of httpx): what it raises and returns
import openai


@dataclass
class StreamEnd:
    """What the stream said about itself, filled in as it goes."""

    finish_reason: str | None = None
    """Why the model stopped ("stop", "length"), once it has said."""
    output_tokens: int | None = None
    """The tokens the endpoint counted for the answer (`usage`), when it says (`count_usage`)."""
    pieces: int = 0
    """Chunks with text: a token each for the endpoints we know (Foundry Local, OpenAI)."""


async def stream_completion(
    client: openai.AsyncOpenAI,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    max_tokens: int,
    temperature: float,
    end: StreamEnd,
    count_usage: bool = False,
) -> AsyncGenerator[str, None]:
    """The answer's text, piece by piece as the endpoint sends it. Closing the generator closes
    the connection, which is what stops the model generating.

    `count_usage` asks the endpoint to count the answer's tokens (`stream_options`), for Compare.
    """
    body: dict[str, Any] = {"messages": messages}
    if count_usage:
        body["stream_options"] = {"include_usage": True}
    async with client.chat.completions.with_streaming_response.create(
        model=model,
        # The messages go as they are, in `extra_body` (which replaces `messages` in the request):
        # the client would otherwise walk them against its type hints before sending, ~0.4 ms
        # per message, only to copy them unchanged (17 ms for a 40-message chat).
        messages=[],
        extra_body=body,
        max_tokens=max_tokens,
        temperature=temperature,
        stream=True,
    ) as response:
        http = response.http_response
        try:
            async for data in server_sent_data(http):
                if data == "[DONE]":
                    return
                text = read_chunk(json.loads(data), end, http.request)
                if text:
                    end.pieces += 1
                    yield text
        except httpx2.TransportError as error:  # mid-answer: the runtime stopped, or the network
            raise openai.APIConnectionError(request=http.request) from error


def read_chunk(chunk: Any, end: StreamEnd, request: httpx2.Request) -> str:
    """The text of one chunk; its finish reason and token count go to `end`. An error event
    (an endpoint that fails after it has begun to answer) raises `openai.APIError`, as the
    client's own stream does."""
    if not isinstance(chunk, dict):
        return ""
    error = chunk.get("error")
    if error:
        said = error.get("message") if isinstance(error, dict) else None
        message = said if isinstance(said, str) and said else "An error occurred during streaming"
        raise openai.APIError(message, request, body=error)
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


async def server_sent_data(response: httpx2.Response) -> AsyncIterator[str]:
    """The `data` of each event of a `text/event-stream` body (lines joined as the standard
    says; comments and other fields skipped)."""
    data: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)
