"""One usage-log row: everything recorded about one authenticated call to an LLM endpoint."""

from __future__ import annotations

import operator
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any


def utc_now_iso() -> str:
    """Now, as UTC ISO-8601 with milliseconds and a Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(slots=True)
class UsageRow:
    """Field order matches `server.usage.schema.COLUMNS`."""

    ts: str
    request_id: str
    user: str
    end_user: str | None
    endpoint: str
    requested_model: str | None = None
    model: str | None = None
    provider: str | None = None
    prompt: str | None = None
    response: str | None = None
    status: str = "ok"  # ok | error | rejected | cancelled
    http_status: int = 200
    error: str | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens: int = 0
    tokens_estimated: bool = False
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float | None = None
    fallback: bool = False
    stream: bool = False
    key_id: str | None = None

    def as_tuple(self) -> tuple[Any, ...]:
        # attrgetter, not dataclasses.astuple: astuple deep-copies every value, and the writer thread
        # runs this for every row while competing with the event loop for the GIL.
        return _ROW_VALUES(self)  # type: ignore[no-any-return]

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_ROW_VALUES = operator.attrgetter(*(f.name for f in fields(UsageRow)))
