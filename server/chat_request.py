"""Checking an OpenAI chat-completions request body, by hand on the hot path.

Only what the gateway itself relies on is checked here; every other field is passed on
to OpenAI-compatible upstreams untouched, and judged by them.
"""

from __future__ import annotations

from typing import Any

from server.errors import RequestError
from server.gateway import Gateway
from server.models_config import ModelConfig
from server.providers.base import ChatRequest

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}


def _int_field(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RequestError(f"`{name}` must be an integer between {low} and {high}")
    return value


def _number_field(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise RequestError(f"`{name}` must be a number between {low} and {high}")


def _check_messages(messages: object) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise RequestError("`messages` must be a non-empty array")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise RequestError(f"`messages[{i}]` must be an object")
        if message.get("role") not in ROLES:
            raise RequestError(f"`messages[{i}].role` must be one of {', '.join(sorted(ROLES))}")
        content = message.get("content")
        if content is None:
            if message["role"] != "assistant":
                raise RequestError(f"`messages[{i}].content` is required")
        elif isinstance(content, list):
            if not all(isinstance(part, dict) and isinstance(part.get("type"), str) for part in content):
                raise RequestError(f"`messages[{i}].content` parts must be objects with a `type`")
        elif not isinstance(content, str):
            raise RequestError(f"`messages[{i}].content` must be a string or an array of content parts")
    return messages


def parse_chat_request(body: dict[str, Any], gateway: Gateway) -> tuple[ModelConfig, ChatRequest, bool]:
    """The model, the request, and whether the client asked for usage in the stream."""
    model_name = body.get("model")
    if model_name is not None and not isinstance(model_name, str):
        raise RequestError("`model` must be a string")
    model = gateway.resolve_model(model_name)
    messages = _check_messages(body.get("messages"))
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise RequestError("`stream` must be a boolean")
    stream_options = body.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise RequestError("`stream_options` must be an object")
    include_usage = bool((stream_options or {}).get("include_usage"))
    max_tokens = _int_field(body, "max_completion_tokens", 1, model.max_output_tokens)
    legacy_max = _int_field(body, "max_tokens", 1, model.max_output_tokens)
    _int_field(body, "n", 1, 128)
    _number_field(body, "temperature", 0, 2)
    _number_field(body, "top_p", 0, 1)
    stop = body.get("stop")
    if stop is not None and not (
        isinstance(stop, str)
        or (isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop))
    ):
        raise RequestError("`stop` must be a string or an array of up to 4 strings")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise RequestError("`user` must be a string")
    for name in ("tools", "response_format"):
        expected = list if name == "tools" else dict
        if body.get(name) is not None and not isinstance(body[name], expected):
            raise RequestError(f"`{name}` must be an {'array' if expected is list else 'object'}")
    request = ChatRequest(
        messages=messages,
        max_tokens=max_tokens if max_tokens is not None else legacy_max,
        stream=bool(stream),
        body=body,
    )
    return model, request, include_usage
