"""The offline `echo` provider: answers with the last user message, deterministically.

Token rule (documented in README): one token per whitespace-separated word.
`prompt_tokens` counts the words of every message; the answer is the words of the
last user message, cut to `max_tokens` words (finish_reason "length" when cut).

Simulated behaviour per model: latency is `latency_ms` ± `latency_jitter_ms` (uniform);
the n-th call to a model fails with a 503 when the n-th draw of `random.Random(seed)` is
below `failure_rate`, so a test can compute exactly which calls fail.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

from server.errors import UpstreamUnavailable
from server.models_config import ModelConfig
from server.providers.base import (
    ChatRequest,
    Completion,
    StreamDelta,
    Usage,
    plain_chat_unsupported,
    prompt_text,
)


def count_words(text: str) -> int:
    return len(text.split())


def _answer_words(messages: list[dict[str, Any]], max_tokens: int | None) -> tuple[list[str], str]:
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    words = prompt_text([last_user]).split() if last_user else []
    if max_tokens is not None and len(words) > max_tokens:
        return words[:max_tokens], "length"
    return words, "stop"


class EchoProvider:
    name = "echo"

    def __init__(self) -> None:
        self._failure_draws: dict[str, random.Random] = {}
        self._latency_draws: dict[str, random.Random] = {}

    def unsupported(self, request: ChatRequest) -> str | None:
        return plain_chat_unsupported(request, json_output=False)

    async def _simulate(self, model: ModelConfig) -> None:
        failure_rng = self._failure_draws.setdefault(model.name, random.Random(model.seed))
        latency_rng = self._latency_draws.setdefault(model.name, random.Random(model.seed + 1))
        fails = failure_rng.random() < model.failure_rate
        delay_ms = model.latency_ms + model.latency_jitter_ms * (2 * latency_rng.random() - 1)
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)
        if fails:
            raise UpstreamUnavailable(f"simulated failure of echo model {model.name!r}", upstream_status=503)

    async def complete(self, model: ModelConfig, request: ChatRequest) -> Completion:
        await self._simulate(model)
        words, finish_reason = _answer_words(request.messages, request.max_tokens)
        usage = Usage(prompt_tokens=count_words(prompt_text(request.messages)), completion_tokens=len(words))
        return Completion(text=" ".join(words), usage=usage, finish_reason=finish_reason)

    async def stream(self, model: ModelConfig, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        await self._simulate(model)
        words, finish_reason = _answer_words(request.messages, request.max_tokens)
        for i, word in enumerate(words):
            if i and model.stream_delay_ms:
                await asyncio.sleep(model.stream_delay_ms / 1000)
            yield StreamDelta(text=word if i == 0 else " " + word)
        usage = Usage(prompt_tokens=count_words(prompt_text(request.messages)), completion_tokens=len(words))
        yield StreamDelta(finish_reason=finish_reason, usage=usage)
