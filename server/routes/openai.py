"""The OpenAI-compatible API: POST /v1/chat/completions (plain and streamed) and GET /v1/models."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from server.chat_request import parse_chat_request
from server.dispatch import Answer, OpenStream
from server.errors import UpstreamError, UpstreamTimeout
from server.gateway import Call, Gateway
from server.http import json_response
from server.providers.base import ChatRequest, StreamDelta, Usage, estimated_usage
from server.routes.calls import serve_llm_call
from server.routes.llm import ERROR_RESPONSES
from server.streaming import EventStreamResponse, unless_disconnected

ENDPOINT = "/v1/chat/completions"
DONE = b"data: [DONE]\n\n"
router = APIRouter(prefix="/v1")

CHAT_REQUEST_SCHEMA = {
    "type": "object",
    "required": ["messages"],
    "additionalProperties": True,
    "description": "OpenAI's CreateChatCompletionRequest; fields the gateway does not know are passed on.",
    "properties": {
        "model": {"type": "string", "description": "A configured model; the default when absent."},
        "messages": {"type": "array", "minItems": 1, "items": {"type": "object"}},
        "stream": {"type": "boolean"},
        "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
        "max_tokens": {"type": "integer", "minimum": 1},
        "max_completion_tokens": {"type": "integer", "minimum": 1},
        "n": {"type": "integer", "minimum": 1, "maximum": 128},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "stop": {
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}]
        },
        "seed": {"type": "integer"},
        "user": {"type": "string"},
        "tools": {"type": "array", "items": {"type": "object"}},
        "response_format": {"type": "object"},
    },
}


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _usage_body(usage: Usage) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cached_tokens is not None:
        body["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
    if usage.reasoning_tokens is not None:
        body["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return body


def completion_body(call: Call, answer: Answer) -> dict[str, Any]:
    """The chat.completion object: the upstream's own when it has one (renamed), else built here."""
    completion = answer.completion
    if completion.body is not None:
        return {**completion.body, "model": answer.model.name}
    return {
        "id": f"chatcmpl-{call.row.request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": answer.model.name,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": completion.text, "refusal": None},
                "finish_reason": completion.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": _usage_body(completion.usage),
    }


class ChunkWriter:
    """Turns deltas into `chat.completion.chunk` events under one id and the answering model's name."""

    def __init__(self, completion_id: str, model: str, include_usage: bool) -> None:
        self.id = completion_id
        self.model = model
        self.include_usage = include_usage
        self.created = int(time.time())
        self._role_sent = False

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return _sse(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": choices,
                **extra,
            }
        )

    def events(self, delta: StreamDelta) -> list[bytes]:
        if delta.chunk is not None:
            return self._passed_on(delta.chunk)
        events = []
        if delta.text or not self._role_sent:
            content: dict[str, Any] = {"content": delta.text}
            if not self._role_sent:
                content = {"role": "assistant", **content}
                self._role_sent = True
            events.append(
                self._chunk([{"index": 0, "delta": content, "finish_reason": None, "logprobs": None}])
            )
        if delta.finish_reason is not None:
            events.append(
                self._chunk(
                    [{"index": 0, "delta": {}, "finish_reason": delta.finish_reason, "logprobs": None}]
                )
            )
        if delta.usage is not None and self.include_usage:
            events.append(self._chunk([], usage=_usage_body(delta.usage)))
        return events

    def _passed_on(self, chunk: dict[str, Any]) -> list[bytes]:
        chunk = {**chunk, "id": self.id, "model": self.model}
        if chunk.get("usage") is not None and not self.include_usage:
            # The gateway asked for usage for itself; the client did not.
            if not chunk.get("choices"):
                return []
            del chunk["usage"]
        return [_sse(chunk)]


async def stream_events(
    gateway: Gateway, call: Call, opened: OpenStream, request: ChatRequest, include_usage: bool
) -> AsyncIterator[bytes]:
    """The SSE body of a streamed call. It closes the call's row however the stream ends."""
    row = call.row
    model = opened.model
    writer = ChunkWriter(f"chatcmpl-{row.request_id}", model.name, include_usage)
    texts: list[str] = []
    usage: Usage | None = None
    deadline = asyncio.get_running_loop().time() + model.total_timeout_s - call.elapsed_ms() / 1000

    def settle(final_usage: Usage | None) -> None:
        text = "".join(texts)
        if final_usage is None:  # no usage from upstream: the documented estimate, flagged on the row
            final_usage = estimated_usage(request.messages, text)
        gateway.account(call, model, final_usage)
        gateway.store_response(call, text)

    try:
        delta: StreamDelta | None = opened.first
        while delta is not None:
            if delta.usage is not None:
                usage = delta.usage
            if delta.text:
                texts.append(delta.text)
            for event in writer.events(delta):
                if row.ttft_ms is None:
                    row.ttft_ms = round(call.elapsed_ms(), 3)
                yield event
            try:
                async with asyncio.timeout_at(deadline):
                    delta = await anext(opened.rest)
            except StopAsyncIteration:
                delta = None
        settle(usage)
        row.status, row.http_status = "ok", 200
        yield DONE
    except (UpstreamError, TimeoutError) as exc:
        error = (
            exc
            if isinstance(exc, UpstreamError)
            else UpstreamTimeout(f"{model.name}: stream exceeded {model.total_timeout_s}s")
        )
        settle(usage)
        gateway.fail_call(call, error)
        row.http_status = 200  # the client got a 200 and a cut stream
        row.error = f"stream_cut: {error.message}"[:1000]
        # An error event and no [DONE]: clients must not take a cut answer for a whole one.
        yield _sse({"error": {"type": error.error_type, "message": f"stream cut: {error.message}"}})
    except BaseException:  # the client hung up (cancelled or closed): keep what was streamed so far
        settle(usage)
        row.status, row.http_status = "cancelled", 499
        raise
    finally:
        await opened.rest.aclose()  # type: ignore[attr-defined]
        gateway.finish_call(call)


async def _answer(gateway: Gateway, call: Call, body: dict[str, Any], request: Request) -> Response:
    model, chat, include_usage = parse_chat_request(body, gateway)
    user = body.get("user")
    if call.row.end_user is None and user:
        call.row.end_user = user[:256]
    if chat.stream:
        opened = await unless_disconnected(request.receive, gateway.open_stream(call, model, chat))
        return EventStreamResponse(stream_events(gateway, call, opened, chat, include_usage))
    answer = await unless_disconnected(request.receive, gateway.complete(call, model, chat))
    return json_response(completion_body(call, answer))


@router.post(
    "/chat/completions",
    summary="Create a chat completion (OpenAI-compatible)",
    responses={
        200: {
            "description": "A chat.completion object, or with `stream: true` a text/event-stream of "
            "chat.completion.chunk events ending in `data: [DONE]`.",
            "content": {"application/json": {"schema": {"type": "object"}}, "text/event-stream": {}},
        },
        **ERROR_RESPONSES,
    },
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": CHAT_REQUEST_SCHEMA}}}
    },
)
async def chat_completions(request: Request) -> Response:
    return await serve_llm_call(request, ENDPOINT, _answer)


@router.get(
    "/models", summary="List the configured models (OpenAI-compatible)", responses={401: ERROR_RESPONSES[401]}
)
async def list_models(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    await gateway.authenticate(request.headers.get("authorization"))
    return json_response(
        {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "llmops"}
                for name in gateway.registry.names()
            ],
        }
    )
