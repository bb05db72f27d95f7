"""The one small interface every provider implements, and the values that cross it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from server.models_config import ModelConfig


@dataclass(slots=True)
class ChatRequest:
    """A chat call in OpenAI's shape; `body` is the client's request as sent, for pass-through."""

    messages: list[dict[str, Any]]
    max_tokens: int | None = None
    stream: bool = False
    body: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Usage:
    """Token counts for one call; `estimated` when the upstream reported none."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class Completion:
    """A finished, non-streamed answer."""

    text: str
    usage: Usage
    finish_reason: str = "stop"
    # The upstream's own OpenAI-shaped response when it has one, passed on to /v1 clients as is.
    body: dict[str, Any] | None = None


@dataclass(slots=True)
class StreamDelta:
    """One piece of a streamed answer: text, and/or the usage once the upstream reports it."""

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    # The upstream's own chunk (OpenAI dialect), passed on when present.
    chunk: dict[str, Any] | None = None


class Provider(Protocol):
    """A way to reach models. Errors are raised as `server.errors.UpstreamError` subclasses."""

    name: str

    async def complete(self, model: ModelConfig, request: ChatRequest) -> Completion:
        """Answer the whole request at once."""
        ...

    def stream(self, model: ModelConfig, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        """Answer piece by piece. Errors before the first delta may be retried by the caller."""
        ...


def prompt_text(messages: list[dict[str, Any]]) -> str:
    """The text of every message, content parts included, joined by newlines."""
    parts: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(
                p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
            )
    return "\n".join(parts)


def estimate_tokens(text: str) -> int:
    """The documented estimate used when an upstream reports no usage: one token per 4 UTF-8 bytes."""
    return (len(text.encode()) + 3) // 4
