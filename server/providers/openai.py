"""The `openai` provider: any OpenAI-compatible upstream (OpenAI, vLLM, llama.cpp, LM Studio, ...).

The client's request is passed on as sent (fields the gateway does not know included),
with the model renamed to the upstream's name; for streams the gateway always asks
for usage (`stream_options.include_usage`) so streamed calls are counted exactly.
The API key is read from the environment variable the model config names, and never logged.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from server.errors import ConfigError, UpstreamTimeout, UpstreamUnavailable
from server.models_config import ModelConfig
from server.providers.base import (
    ChatRequest,
    Completion,
    StreamDelta,
    error_for_status,
    estimated_usage,
    upstream_error_detail,
    usage_from_openai,
)
from server.upstream import UpstreamClient

# Errors aiohttp raises when the upstream cannot be reached or drops the connection.
CONNECTION_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, ConnectionError)


def upstream_headers(model: ModelConfig) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if model.api_key_env:
        key = os.environ.get(model.api_key_env)
        if not key:
            raise ConfigError(f"model {model.name!r}: environment variable {model.api_key_env} is not set")
        headers["Authorization"] = f"Bearer {key}"
    return headers


def redacted(model: ModelConfig, text: str) -> str:
    """`text` without the model's API key: some upstreams echo the key they were sent in their errors."""
    key = os.environ.get(model.api_key_env) if model.api_key_env else None
    return text.replace(key, "[redacted]") if key else text


async def post(
    client: UpstreamClient, model: ModelConfig, url: str, body: dict[str, Any]
) -> aiohttp.ClientResponse:
    """POST `body`; the response once its headers arrived within the model's first-byte timeout."""
    try:
        async with asyncio.timeout(model.first_byte_timeout_s):
            return await client.session.post(
                url,
                data=orjson.dumps(body),
                headers=upstream_headers(model),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=model.connect_timeout_s),
            )
    except TimeoutError as exc:
        raise UpstreamTimeout(f"{model.name}: no answer from {model.provider} upstream in time") from exc
    except CONNECTION_ERRORS as exc:
        raise UpstreamUnavailable(f"{model.name}: cannot reach {model.provider} upstream ({exc})") from exc


async def raise_for_status(model: ModelConfig, response: aiohttp.ClientResponse) -> None:
    if response.status >= 400:
        body = await response.read()
        response.release()
        raise error_for_status(
            model.provider,
            response.status,
            redacted(model, upstream_error_detail(body)),
            response.headers.get("Retry-After"),
        )


async def read_answer(model: ModelConfig, response: aiohttp.ClientResponse) -> bytes:
    """The whole body of a non-streamed answer, within the model's total timeout."""
    try:
        async with asyncio.timeout(model.total_timeout_s):
            await raise_for_status(model, response)
            return await response.read()
    except TimeoutError as exc:
        raise UpstreamTimeout(
            f"{model.name}: upstream answer took longer than {model.total_timeout_s}s"
        ) from exc
    except CONNECTION_ERRORS as exc:
        raise UpstreamUnavailable(f"{model.name}: upstream connection failed ({exc})") from exc
    finally:
        response.release()


def release_or_close(response: aiohttp.ClientResponse) -> None:
    """Reuse the connection when the body was read to the end; otherwise hang up on the upstream."""
    if response.content.at_eof():
        response.release()
    else:
        response.close()


class OpenAIProvider:
    name = "openai"

    def __init__(self, client: UpstreamClient) -> None:
        self._client = client

    def unsupported(self, request: ChatRequest) -> str | None:
        return None  # the upstream itself judges the request; its 400 is passed on

    def _url(self, model: ModelConfig) -> str:
        if not model.base_url:
            raise ConfigError(f"model {model.name!r} (provider openai) needs a base_url")
        return model.base_url.rstrip("/") + "/chat/completions"

    async def complete(self, model: ModelConfig, request: ChatRequest) -> Completion:
        body = {**request.body, "model": model.upstream_name, "stream": False}
        body.pop("stream_options", None)
        response = await post(self._client, model, self._url(model), body)
        raw = await read_answer(model, response)
        try:
            data = orjson.loads(raw)
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise UpstreamUnavailable(f"{model.name}: upstream answered with a malformed body") from exc
        if isinstance(data.get("usage"), dict):
            usage = usage_from_openai(data["usage"])
        else:
            usage = estimated_usage(request.messages, text)
        return Completion(
            text=text, usage=usage, finish_reason=choice.get("finish_reason") or "stop", body=data
        )

    async def stream(self, model: ModelConfig, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        stream_options = {**(request.body.get("stream_options") or {}), "include_usage": True}
        body = {
            **request.body,
            "model": model.upstream_name,
            "stream": True,
            "stream_options": stream_options,
        }
        response = await post(self._client, model, self._url(model), body)
        try:
            await raise_for_status(model, response)
            finished = False
            async for line in response.content:
                if not line.startswith(b"data:"):
                    continue  # blank separators, comments, event: lines
                data = line[5:].strip()
                if data == b"[DONE]":
                    return
                chunk = orjson.loads(data)
                if "error" in chunk:
                    error = redacted(model, str(chunk["error"]))
                    raise UpstreamUnavailable(f"{model.name}: upstream stream error: {error}")
                choices = chunk.get("choices") or []
                choice = choices[0] if choices else {}
                usage = chunk.get("usage")
                finish_reason = choice.get("finish_reason")
                finished = finished or finish_reason is not None
                yield StreamDelta(
                    text=(choice.get("delta") or {}).get("content") or "",
                    finish_reason=finish_reason,
                    usage=usage_from_openai(usage) if isinstance(usage, dict) else None,
                    chunk=chunk,
                )
            if not finished:
                raise UpstreamUnavailable(f"{model.name}: upstream stream ended before the answer finished")
        except orjson.JSONDecodeError as exc:
            raise UpstreamUnavailable(f"{model.name}: upstream sent a malformed stream chunk") from exc
        except CONNECTION_ERRORS as exc:
            raise UpstreamUnavailable(f"{model.name}: upstream stream broke off ({exc})") from exc
        finally:
            release_or_close(response)
