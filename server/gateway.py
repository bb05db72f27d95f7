"""The gateway's core service: authenticate, run a call down its chain, account for it.

Routes stay thin: they parse their own request shape and call into `Gateway`. Every
authenticated call to an LLM endpoint gets a `UsageRow` from `start_call` and is
handed to `finish_call` exactly once, whatever happened, which writes the row and
counts the metrics.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import IO

import orjson

from server.auth import Authenticator, Principal
from server.dispatch import Answer, OpenStream, complete_with_fallbacks, open_stream_with_fallbacks
from server.errors import AuthError, GatewayError, UnknownModel, UpstreamError
from server.limits import Estimate, Limiter, LimitExceeded, Reservation
from server.metrics import Metrics
from server.models_config import ModelConfig, ModelRegistry
from server.providers.base import ChatRequest, Provider, Usage, estimate_tokens, prompt_text
from server.settings import Settings
from server.upstream import UpstreamClient
from server.usage.row import UsageRow, utc_now_iso
from server.usage.store import UsageStore

log = logging.getLogger(__name__)

MAX_END_USER_LENGTH = 256


def cost_usd(model: ModelConfig, usage: Usage) -> float | None:
    """Spend for `usage` at `model`'s prices; None when the price is unknown."""
    if not model.has_price:
        return None
    assert model.input_price_per_mtok is not None and model.output_price_per_mtok is not None
    cached = usage.cached_tokens or 0
    cached_price = model.cached_input_price_per_mtok
    if cached_price is None:
        cached, cached_price = 0, 0.0
    return (
        (usage.prompt_tokens - cached) * model.input_price_per_mtok
        + cached * cached_price
        + usage.completion_tokens * model.output_price_per_mtok
    ) / 1_000_000


def _header_text(value: str) -> str:
    """A header value as the UTF-8 the client sent (Starlette decodes headers as Latin-1)."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


class Call:
    """One authenticated call in progress: its row, and when it started."""

    __slots__ = ("error_type", "finished", "reservation", "row", "started")

    def __init__(self, row: UsageRow) -> None:
        self.row = row
        self.started = time.perf_counter()
        self.error_type = ""
        self.finished = False
        self.reservation: Reservation | None = None

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000


class Gateway:
    """Everything a route needs, built once per process by `server.app.create_app`."""

    def __init__(
        self,
        settings: Settings,
        registry: ModelRegistry,
        providers: dict[str, Provider],
        usage_store: UsageStore,
        metrics: Metrics,
        authenticator: Authenticator,
        upstream: UpstreamClient,
        limiter: Limiter | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.providers = providers
        self.usage_store = usage_store
        self.metrics = metrics
        self.authenticator = authenticator
        self.upstream = upstream
        self.limiter = limiter  # None: nobody has limits, calls skip them

    # -- auth ---------------------------------------------------------------------------------

    async def authenticate(self, authorization: str | None) -> Principal:
        try:
            return await self.authenticator.authenticate(authorization)
        except AuthError as exc:
            self.metrics.auth_failures.labels(exc.reason).inc()
            raise

    # -- one call -----------------------------------------------------------------------------

    def start_call(self, request_id: str, principal: Principal, end_user: str | None, endpoint: str) -> Call:
        # A call counts as cancelled until it says otherwise: a client that hangs up mid-call
        # interrupts the route, and `finish_call` still writes its row.
        row = UsageRow(
            ts=utc_now_iso(),
            request_id=request_id,
            user=principal.subject,
            end_user=_header_text(end_user)[:MAX_END_USER_LENGTH] if end_user else None,
            endpoint=endpoint,
            status="cancelled",
            http_status=499,
            key_id=principal.key_id,
        )
        self.metrics.in_flight.inc()
        return Call(row)

    def resolve_model(self, name: str | None) -> ModelConfig:
        """The configured model called `name` (the default when None), or UnknownModel listing them."""
        model_name = self.registry.default_model if name is None else name
        model = self.registry.models.get(model_name)
        if model is None:
            raise UnknownModel(
                f"unknown model {model_name[:100]!r}; configured models: {', '.join(self.registry.names())}"
            )
        return model

    async def complete(self, call: Call, model: ModelConfig, request: ChatRequest) -> Answer:
        """Run the call down `model`'s chain and put what answered, and its usage, on the row."""
        row = call.row
        row.prompt = self._stored_text(prompt_text(request.messages))
        await self.reserve(call, model, request)
        answer = await complete_with_fallbacks(
            self.registry.chain(model.name), self.providers, request, self._count_failed_attempt
        )
        self.account(call, answer.model, answer.completion.usage)
        self.store_response(call, answer.completion.text)
        row.status, row.http_status = "ok", 200
        return answer

    async def open_stream(self, call: Call, model: ModelConfig, request: ChatRequest) -> OpenStream:
        """Open a stream down `model`'s chain; the caller drives it and accounts at its end."""
        call.row.prompt = self._stored_text(prompt_text(request.messages))
        call.row.stream = True
        await self.reserve(call, model, request)
        opened = await open_stream_with_fallbacks(
            self.registry.chain(model.name), self.providers, request, self._count_failed_attempt
        )
        call.row.model, call.row.provider = opened.model.name, opened.model.provider
        call.row.fallback = opened.model.name != call.row.requested_model
        return opened

    def store_response(self, call: Call, text: str) -> None:
        call.row.response = self._stored_text(text)

    # -- limits (server/limits.py): reserve before going upstream, settle in finish_call ------------

    async def reserve(self, call: Call, model: ModelConfig, request: ChatRequest) -> None:
        """Hold the call's estimate on its principal's limits; LimitExceeded (429) when over one."""
        if self.limiter is None:
            return
        try:
            call.reservation = await self.limiter.reserve(call.row.user, self.estimate(model, request))
        except LimitExceeded as exc:
            self.metrics.rate_limited.labels(exc.limit).inc()
            raise

    def estimate(self, model: ModelConfig, request: ChatRequest) -> Estimate:
        """The most a call may use: its prompt (estimated) plus max_tokens, priced at its chain's dearest."""
        chain = self.registry.chain(model.name)
        prompt = estimate_tokens(prompt_text(request.messages))
        completion = request.max_tokens or max(m.max_output_tokens for m in chain)
        costs = [cost_usd(m, Usage(prompt, completion)) for m in chain]
        return Estimate(prompt + completion, max((c for c in costs if c is not None), default=0.0))

    def account(self, call: Call, answered: ModelConfig, usage: Usage) -> None:
        """Put the answering model and its exact usage and cost on the row."""
        row = call.row
        row.model = answered.name
        row.provider = answered.provider
        row.fallback = answered.name != row.requested_model
        row.prompt_tokens = usage.prompt_tokens
        row.completion_tokens = usage.completion_tokens
        row.tokens = usage.total_tokens
        row.tokens_estimated = usage.estimated
        row.cached_tokens = usage.cached_tokens
        row.reasoning_tokens = usage.reasoning_tokens
        row.cost_usd = cost_usd(answered, usage)

    def fail_call(self, call: Call, error: GatewayError) -> None:
        row = call.row
        row.http_status = error.status_code
        row.status = "error" if isinstance(error, UpstreamError) or error.status_code >= 500 else "rejected"
        row.error = f"{error.error_type}: {error.message}"[:1000]
        call.error_type = error.error_type

    def finish_call(self, call: Call) -> None:
        """Write the call's one row and count it; safe to call twice (the second does nothing)."""
        if call.finished:
            return
        call.finished = True
        row = call.row
        row.latency_ms = round(call.elapsed_ms(), 3)
        self.metrics.in_flight.dec()
        self.metrics.record_call(row, call.error_type)
        self.usage_store.record(row)
        if call.reservation is not None and self.limiter is not None:
            self.limiter.settle(call.reservation, row.tokens, row.cost_usd)

    def _count_failed_attempt(self, model: ModelConfig, error: UpstreamError) -> None:
        self.metrics.upstream_errors.labels(self.metrics.model_label(model.name), error.reason).inc()

    def _stored_text(self, text: str | None) -> str | None:
        mode = self.settings.store_prompts
        if text is None or mode == "full":
            return text
        if mode == "hash":
            return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
        return None


def request_log_writer(stream: IO[str], include_prompts: bool) -> Callable[[list[UsageRow]], None]:
    """A usage-log hook that prints one JSON line per call (for Loki, Vector, Elasticsearch)."""

    def write(rows: list[UsageRow]) -> None:
        lines = []
        for row in rows:
            entry = {
                "ts": row.ts,
                "level": "info" if row.status == "ok" else "warning",
                "event": "request",
                "request_id": row.request_id,
                "user": row.user,
                "end_user": row.end_user,
                "endpoint": row.endpoint,
                "requested_model": row.requested_model,
                "model": row.model,
                "status": row.status,
                "http_status": row.http_status,
                "latency_ms": row.latency_ms,
                "prompt_tokens": row.prompt_tokens,
                "completion_tokens": row.completion_tokens,
                "cost_usd": row.cost_usd,
                "fallback": row.fallback,
                "stream": row.stream,
                "error": row.error,
            }
            if include_prompts:
                entry["prompt"] = row.prompt
            lines.append(orjson.dumps(entry).decode())
        try:
            stream.write("\n".join(lines) + "\n")
            stream.flush()
        except (OSError, ValueError):
            log.debug("request log stream closed")

    return write
