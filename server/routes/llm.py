"""POST /llm: a prompt in, an answer with its usage out.

The hot path parses the body by hand (orjson, a few checks) rather than through a
pydantic model; the models below only describe the route in the OpenAPI spec, and
tests check the two agree.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from server.errors import RequestError
from server.gateway import Call, Gateway
from server.http import json_response
from server.models_config import ModelConfig
from server.providers.base import ChatRequest
from server.routes.calls import serve_llm_call
from server.streaming import unless_disconnected

router = APIRouter()


class LLMRequest(BaseModel):
    prompt: str = Field(min_length=1, description="The prompt text.")
    model: str | None = Field(default=None, description="A configured model; the default model when absent.")
    max_tokens: int | None = Field(default=None, ge=1, description="Cap on completion tokens.")


class TokenUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class LLMResponse(BaseModel):
    id: str
    model: str = Field(description="The model that answered (a fallback when `fallback` is true).")
    response: str
    usage: TokenUsage
    latency_ms: float
    fallback: bool


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "The request body is wrong.",
        401: "Missing or invalid bearer token.",
        404: "Unknown model.",
        413: "Body too large.",
        429: "Rate limited.",
        502: "No upstream could answer.",
        504: "Upstream timed out.",
    }.items()
}


def parse_llm_request(body: dict[str, Any], gateway: Gateway) -> tuple[ModelConfig, ChatRequest]:
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise RequestError("`prompt` is required and must be a string")
    if not prompt.strip():
        raise RequestError("`prompt` must not be empty")
    model_name = body.get("model")
    if model_name is not None and not isinstance(model_name, str):
        raise RequestError("`model` must be a string")
    model = gateway.resolve_model(model_name)
    max_tokens = body.get("max_tokens")
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
            raise RequestError("`max_tokens` must be an integer")
        if not 1 <= max_tokens <= model.max_output_tokens:
            raise RequestError(
                f"`max_tokens` must be between 1 and {model.max_output_tokens} for {model.name!r}"
            )
    return model, ChatRequest(
        messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens, body=body
    )


@router.post(
    "/llm",
    response_model=LLMResponse,
    responses=ERROR_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": LLMRequest.model_json_schema()}},
        }
    },
    summary="Answer a prompt",
)
async def llm(request: Request) -> Response:
    return await serve_llm_call(request, "/llm", _answer)


async def _answer(gateway: Gateway, call: Call, body: dict[str, Any], request: Request) -> Response:
    model, chat = parse_llm_request(body, gateway)
    answer = await unless_disconnected(request.receive, gateway.complete(call, model, chat))
    usage = answer.completion.usage
    return json_response(
        {
            "id": call.row.request_id,
            "model": answer.model.name,
            "response": answer.completion.text,
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            },
            "latency_ms": round(call.elapsed_ms(), 3),
            "fallback": call.row.fallback,
        }
    )
