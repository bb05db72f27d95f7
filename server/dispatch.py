"""Run a call down a model's chain: the model, then its fallbacks, each with bounded retries."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass

from server.errors import (
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from server.models_config import ModelConfig
from server.providers.base import ChatRequest, Completion, Provider


def retry_category(error: UpstreamError) -> str:
    """Which `retry_on` entry an error falls under."""
    if isinstance(error, UpstreamTimeout):
        return "timeout"
    if isinstance(error, UpstreamRateLimited):
        return "429"
    if isinstance(error, UpstreamAuthFailed):
        return "auth"
    if isinstance(error, UpstreamUnavailable) and error.upstream_status is not None:
        return "5xx"
    return "connect"


def backoff_s(model: ModelConfig, attempt: int) -> float:
    """Exponential backoff with full jitter around the model's base delay."""
    return model.retry_backoff_s * (2**attempt) * random.uniform(0.5, 1.5)


def exhausted(chain: list[ModelConfig], last: UpstreamError) -> UpstreamError:
    """The error a client sees when no model of the chain could answer."""
    if isinstance(last, UpstreamTimeout | UpstreamRateLimited | UpstreamAuthFailed) or len(chain) == 1:
        return last
    names = ", ".join(m.name for m in chain)
    return UpstreamUnavailable(f"every model in the chain failed ({names}); last error: {last.message}")


@dataclass(slots=True)
class Answer:
    completion: Completion
    model: ModelConfig  # the model that answered


async def complete_with_fallbacks(
    chain: list[ModelConfig],
    providers: dict[str, Provider],
    request: ChatRequest,
    on_failed_attempt: Callable[[ModelConfig, UpstreamError], None],
) -> Answer:
    """The first answer along the chain; raises the client-facing error when none answers."""
    last: UpstreamError | None = None
    for model in chain:
        provider = providers[model.provider]
        for attempt in range(model.retries + 1):
            try:
                return Answer(await provider.complete(model, request), model)
            except UpstreamError as error:
                on_failed_attempt(model, error)
                if not error.retriable or retry_category(error) not in model.retry_on:
                    raise
                last = error
                if attempt < model.retries:
                    await asyncio.sleep(backoff_s(model, attempt))
    assert last is not None
    raise exhausted(chain, last)
