"""The `ollama` provider: Ollama's native `/api/chat`, its NDJSON stream turned into OpenAI deltas.

Token counts come from Ollama's final line (`prompt_eval_count`, `eval_count`).
Features Ollama's chat API cannot serve through this gateway are refused with a 400 naming them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from server.errors import ConfigError, UpstreamUnavailable
from server.models_config import ModelConfig
from server.providers.base import (
    ChatRequest,
    Completion,
    StreamDelta,
    Usage,
    estimated_usage,
    plain_chat_unsupported,
    prompt_text,
)
from server.providers.openai import CONNECTION_ERRORS, post, raise_for_status, read_answer, release_or_close
from server.upstream import UpstreamClient

# OpenAI request fields Ollama takes under the same name in `options`.
_OPTIONS = ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty")


def _finish_reason(done_reason: str | None) -> str:
    return "length" if done_reason == "length" else "stop"


def _usage(final: dict[str, Any], request: ChatRequest, text: str) -> Usage:
    if "prompt_eval_count" in final or "eval_count" in final:
        return Usage(int(final.get("prompt_eval_count") or 0), int(final.get("eval_count") or 0))
    return estimated_usage(request.messages, text)


class OllamaProvider:
    name = "ollama"

    def __init__(self, client: UpstreamClient) -> None:
        self._client = client

    def unsupported(self, request: ChatRequest) -> str | None:
        return plain_chat_unsupported(request, json_output=True)

    def _url(self, model: ModelConfig) -> str:
        if not model.base_url:
            raise ConfigError(f"model {model.name!r} (provider ollama) needs a base_url")
        return model.base_url.rstrip("/") + "/api/chat"

    def _body(self, model: ModelConfig, request: ChatRequest, stream: bool) -> dict[str, Any]:
        body = request.body
        options = {name: body[name] for name in _OPTIONS if body.get(name) is not None}
        if request.max_tokens is not None:
            options["num_predict"] = request.max_tokens
        stop = body.get("stop")
        if stop:
            options["stop"] = [stop] if isinstance(stop, str) else stop
        messages = [{"role": m.get("role", "user"), "content": prompt_text([m])} for m in request.messages]
        payload: dict[str, Any] = {"model": model.upstream_name, "messages": messages, "stream": stream}
        if options:
            payload["options"] = options
        response_format = body.get("response_format") or {}
        if response_format.get("type") == "json_object":
            payload["format"] = "json"
        elif response_format.get("type") == "json_schema":
            payload["format"] = (response_format.get("json_schema") or {}).get("schema", "json")
        return payload

    async def complete(self, model: ModelConfig, request: ChatRequest) -> Completion:
        response = await post(self._client, model, self._url(model), self._body(model, request, stream=False))
        raw = await read_answer(model, response)
        try:
            data = orjson.loads(raw)
            text = data["message"].get("content") or ""
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise UpstreamUnavailable(f"{model.name}: ollama answered with a malformed body") from exc
        if data.get("error"):
            raise UpstreamUnavailable(f"{model.name}: ollama error: {data['error']}")
        return Completion(text, _usage(data, request, text), _finish_reason(data.get("done_reason")))

    async def stream(self, model: ModelConfig, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        response = await post(self._client, model, self._url(model), self._body(model, request, stream=True))
        text_so_far: list[str] = []
        try:
            await raise_for_status(model, response)
            # StreamReader yields whole lines, however the NDJSON was split across network reads.
            async for line in response.content:
                if not line.strip():
                    continue
                data = orjson.loads(line)
                if data.get("error"):
                    raise UpstreamUnavailable(f"{model.name}: ollama stream error: {data['error']}")
                text = (data.get("message") or {}).get("content") or ""
                if data.get("done"):
                    if text:
                        yield StreamDelta(text=text)
                        text_so_far.append(text)
                    yield StreamDelta(
                        finish_reason=_finish_reason(data.get("done_reason")),
                        usage=_usage(data, request, "".join(text_so_far)),
                    )
                    return
                if text:
                    text_so_far.append(text)
                    yield StreamDelta(text=text)
            raise UpstreamUnavailable(f"{model.name}: ollama stream ended before its final line")
        except orjson.JSONDecodeError as exc:
            raise UpstreamUnavailable(f"{model.name}: ollama sent a malformed stream line") from exc
        except CONNECTION_ERRORS as exc:
            raise UpstreamUnavailable(f"{model.name}: ollama stream broke off ({exc})") from exc
        finally:
            release_or_close(response)
