"""The one small interface every provider implements, and the values that cross it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from server.errors import (
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)
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

    def unsupported(self, request: ChatRequest) -> str | None:
        """The first feature of `request` this provider cannot serve, or None."""
        ...

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


def estimated_usage(messages: list[dict[str, Any]], answer: str) -> Usage:
    """Usage by `estimate_tokens`, flagged as estimated, for when the upstream reports none."""
    return Usage(estimate_tokens(prompt_text(messages)), estimate_tokens(answer), estimated=True)


def plain_chat_unsupported(request: ChatRequest, *, json_output: bool) -> str | None:
    """What a text-only provider without tools cannot serve (`json_output`: it can do JSON mode)."""
    body = request.body
    if body.get("tools") or body.get("functions"):
        return "tools"
    if (body.get("n") or 1) > 1:
        return "n > 1"
    if body.get("logprobs"):
        return "logprobs"
    if not json_output and (body.get("response_format") or {}).get("type", "text") != "text":
        return "response_format other than text"
    for message in request.messages:
        content = message.get("content")
        if isinstance(content, list) and any(p.get("type") != "text" for p in content):
            return "non-text content parts"
    return None


def usage_from_openai(usage: dict[str, Any]) -> Usage:
    """Our Usage from an OpenAI `usage` object, token details included."""
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return Usage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cached_tokens=prompt_details.get("cached_tokens"),
        reasoning_tokens=completion_details.get("reasoning_tokens"),
    )


def error_for_status(
    provider: str, status: int, detail: str, retry_after: str | None = None
) -> UpstreamError:
    """The gateway error for an upstream's non-2xx answer."""
    detail = detail.strip()[:500] or f"HTTP {status}"
    if status == 429:
        try:
            wait = float(retry_after) if retry_after else 1.0
        except ValueError:
            wait = 1.0
        return UpstreamRateLimited(f"{provider} upstream is rate limiting: {detail}", retry_after_s=wait)
    if status in (401, 403):
        return UpstreamAuthFailed(
            f"{provider} upstream refused the gateway's own credentials (HTTP {status}); "
            "check the model's api_key_env"
        )
    if status >= 500:
        message = f"{provider} upstream failed with HTTP {status}: {detail}"
        return UpstreamUnavailable(message, upstream_status=status)
    return UpstreamRejected(f"{provider} upstream rejected the request: {detail}", upstream_status=status)


def upstream_error_detail(body: bytes) -> str:
    """The message inside an upstream error body (OpenAI or Ollama shape), or the raw text."""
    import orjson

    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode(errors="replace")
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error)
        if error is not None:
            return str(error)
    return body.decode(errors="replace")
