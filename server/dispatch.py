"""Run a call down a model's chain: the model, then its fallbacks, each with bounded retries.

A streamed call is "answered" once its first delta arrives: failures before that fall
back like any other call; after it, the stream is the client's and cannot switch models.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from server.errors import (
    UnsupportedFeature,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from server.models_config import ModelConfig
from server.providers.base import ChatRequest, Completion, Provider, StreamDelta

T = TypeVar("T")
FailedAttempt = Callable[[ModelConfig, UpstreamError], None]


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
    """Exponential backoff with jitter around the model's base delay."""
    return model.retry_backoff_s * (2**attempt) * random.uniform(0.5, 1.5)


def exhausted(chain: list[ModelConfig], last: UpstreamError) -> UpstreamError:
    """The error a client sees when no model of the chain could answer."""
    if isinstance(last, UpstreamTimeout | UpstreamRateLimited | UpstreamAuthFailed) or len(chain) == 1:
        return last
    names = ", ".join(m.name for m in chain)
    return UpstreamUnavailable(f"every model in the chain failed ({names}); last error: {last.message}")


async def _down_the_chain(
    chain: list[ModelConfig],
    providers: dict[str, Provider],
    request: ChatRequest,
    on_failed_attempt: FailedAttempt,
    attempt: Callable[[Provider, ModelConfig], Awaitable[T]],
) -> tuple[T, ModelConfig]:
    last: UpstreamError | None = None
    for position, model in enumerate(chain):
        provider = providers[model.provider]
        feature = provider.unsupported(request)
        if feature is not None:
            if position == 0:
                raise UnsupportedFeature(
                    f"model {model.name!r} ({model.provider} provider) does not support {feature}"
                )
            continue  # a fallback that cannot serve this request is skipped
        for retry in range(model.retries + 1):
            try:
                return await attempt(provider, model), model
            except UpstreamError as error:
                on_failed_attempt(model, error)
                if not error.retriable or retry_category(error) not in model.retry_on:
                    raise
                last = error
                if retry < model.retries:
                    await asyncio.sleep(backoff_s(model, retry))
    if last is None:
        raise UpstreamUnavailable("no model in the chain can serve this request")
    raise exhausted(chain, last)


@dataclass(slots=True)
class Answer:
    completion: Completion
    model: ModelConfig  # the model that answered


@dataclass(slots=True)
class OpenStream:
    first: StreamDelta
    rest: AsyncIterator[StreamDelta]
    model: ModelConfig  # the model that answered


async def complete_with_fallbacks(
    chain: list[ModelConfig],
    providers: dict[str, Provider],
    request: ChatRequest,
    on_failed_attempt: FailedAttempt,
) -> Answer:
    """The first answer along the chain; raises the client-facing error when none answers."""

    async def attempt(provider: Provider, model: ModelConfig) -> Completion:
        return await provider.complete(model, request)

    completion, model = await _down_the_chain(chain, providers, request, on_failed_attempt, attempt)
    return Answer(completion, model)


async def _first_delta(
    provider: Provider, model: ModelConfig, request: ChatRequest
) -> tuple[StreamDelta, AsyncIterator[StreamDelta]]:
    deltas = provider.stream(model, request)
    try:
        async with asyncio.timeout(model.first_byte_timeout_s):
            return await anext(deltas), deltas
    except TimeoutError as exc:
        await deltas.aclose()  # type: ignore[attr-defined]
        raise UpstreamTimeout(f"{model.name}: no first token within {model.first_byte_timeout_s}s") from exc
    except StopAsyncIteration as exc:
        raise UpstreamUnavailable(f"{model.name}: upstream stream was empty") from exc
    except BaseException:
        await deltas.aclose()  # type: ignore[attr-defined]
        raise


async def open_stream_with_fallbacks(
    chain: list[ModelConfig],
    providers: dict[str, Provider],
    request: ChatRequest,
    on_failed_attempt: FailedAttempt,
) -> OpenStream:
    """The first stream along the chain to yield a delta."""

    async def attempt(
        provider: Provider, model: ModelConfig
    ) -> tuple[StreamDelta, AsyncIterator[StreamDelta]]:
        return await _first_delta(provider, model, request)

    (first, rest), model = await _down_the_chain(chain, providers, request, on_failed_attempt, attempt)
    return OpenStream(first, rest, model)
