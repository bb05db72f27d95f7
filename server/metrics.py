"""Every metric the gateway exports, built on a registry passed in.

Label values come from small bounded sets: endpoints and models are the configured
ones, users are capped at `max_users` distinct values (the rest count as "other").
The two OpenTelemetry GenAI client histograms keep their semantic-convention names,
attribute names and bucket boundaries, in Prometheus form.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from server.limits_config import LIMIT_NAMES
from server.models_config import ModelRegistry
from server.usage.row import UsageRow

LLM_ENDPOINTS = ("/llm", "/v1/chat/completions")
CALL_STATUSES = ("ok", "error", "rejected", "cancelled")
OTHER = "other"

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# OpenTelemetry GenAI semantic conventions: explicit bucket boundaries advice.
GENAI_DURATION_BUCKETS = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
GENAI_TOKEN_BUCKETS = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
GENAI_OPERATION = "chat"

# `_created` series double the scrape for nothing Prometheus uses.
disable_created_metrics()


def multiprocess_metrics_dir() -> str | None:
    """Where workers share metric values (`llmops serve --workers N`), or None for one process."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition(registry: CollectorRegistry) -> bytes:
    """The scrape: this process's registry, or with several workers the sum over all of them."""
    if multiprocess_metrics_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)  # type: ignore[no-any-return]


class Metrics:
    """The gateway's Prometheus metrics, and the one place that records a finished call."""

    def __init__(
        self,
        registry: CollectorRegistry,
        model_registry: ModelRegistry,
        max_users: int = 50,
    ) -> None:
        self._model_registry = model_registry
        self.models = set(model_registry.names())
        self._providers = {m.name: m.provider for m in model_registry.models.values()}
        self._max_users = max_users
        self._users: set[str] = set()

        self.requests = Counter(
            "llmops_requests",
            "Calls to LLM endpoints, one per usage-log row.",
            ["endpoint", "model", "status", "user"],
            registry=registry,
        )
        self.duration = Histogram(
            "llmops_request_duration_seconds",
            "Time from request to the end of the answer.",
            ["endpoint", "model"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.ttft = Histogram(
            "llmops_time_to_first_token_seconds",
            "Time from request to the first streamed token.",
            ["model"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "llmops_tokens",
            "Tokens by the model that answered.",
            ["model", "type"],
            registry=registry,
        )
        self.fallbacks = Counter(
            "llmops_fallbacks",
            "Calls answered by a fallback model.",
            ["requested_model", "model"],
            registry=registry,
        )
        self.cost = Counter(
            "llmops_cost_usd", "Spend in USD by the model that answered.", ["model"], registry=registry
        )
        self.cost_unknown = Counter(
            "llmops_cost_unknown",
            "Answered calls whose model has no price.",
            ["model"],
            registry=registry,
        )
        self.upstream_errors = Counter(
            "llmops_upstream_errors",
            "Failed provider attempts (retries and fallbacks included).",
            ["model", "reason"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "llmops_in_flight_requests",
            "LLM calls being served now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.auth_failures = Counter(
            "llmops_auth_failures",
            "Requests refused for their credentials; they write no row.",
            ["reason"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "llmops_rate_limited",
            "Calls refused by a principal's limit (429); each leaves a rejected row.",
            ["limit"],
            registry=registry,
        )
        self.usage_write_errors = Counter(
            "llmops_usage_write_errors",
            "Failed usage-log writes (the rows are kept and retried).",
            registry=registry,
        )
        genai_labels = [
            "gen_ai_operation_name",
            "gen_ai_provider_name",
            "gen_ai_request_model",
            "gen_ai_response_model",
            "error_type",
        ]
        self.genai_duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "GenAI operation duration.",
            genai_labels,
            buckets=GENAI_DURATION_BUCKETS,
            registry=registry,
        )
        self.genai_ttfc = Histogram(
            "gen_ai_client_operation_time_to_first_chunk_seconds",
            "Time to the first chunk of a stream.",
            genai_labels,
            buckets=GENAI_DURATION_BUCKETS,
            registry=registry,
        )
        self.genai_tokens = Histogram(
            "gen_ai_client_token_usage",
            "Tokens used per operation.",
            [
                "gen_ai_operation_name",
                "gen_ai_provider_name",
                "gen_ai_request_model",
                "gen_ai_response_model",
                "gen_ai_token_type",
            ],
            buckets=GENAI_TOKEN_BUCKETS,
            registry=registry,
        )
        self._start_series_at_zero()

    def _start_series_at_zero(self) -> None:
        # Series for known labels exist from the start, so the first error after a restart is a rise.
        for model in self.models:
            for endpoint in LLM_ENDPOINTS:
                self.duration.labels(endpoint, model)
                for status in CALL_STATUSES:
                    self.requests.labels(endpoint, model, status, OTHER)
            for token_type in ("prompt", "completion"):
                self.tokens.labels(model, token_type)
            self.cost.labels(model)
            self.upstream_errors.labels(model, "unavailable")
            self.ttft.labels(model)
            for fallback in self._model_registry.chain(model)[1:]:
                self.fallbacks.labels(model, fallback.name)
            if not self._model_registry.models[model].has_price:
                self.cost_unknown.labels(model)
        self.usage_write_errors.inc(0)
        for limit in LIMIT_NAMES:
            self.rate_limited.labels(limit)

    def user_label(self, user: str) -> str:
        """The user's own label while fewer than `max_users` are known, "other" after."""
        if user in self._users:
            return user
        if len(self._users) < self._max_users:
            self._users.add(user)
            return user
        return OTHER

    def model_label(self, model: str | None) -> str:
        return model if model in self.models else OTHER

    def record_call(self, row: UsageRow, error_type: str = "") -> None:
        """Count one finished call: exactly the calls that leave a usage row."""
        requested = self.model_label(row.requested_model)
        self.requests.labels(row.endpoint, requested, row.status, self.user_label(row.user)).inc()
        seconds = row.latency_ms / 1000
        self.duration.labels(row.endpoint, requested).observe(seconds)
        if row.model is None:
            return  # rejected before any provider was tried
        answered = self.model_label(row.model)
        provider = self._providers.get(answered, OTHER)
        error_type = "" if row.status == "ok" else (error_type or row.status)
        self.genai_duration.labels(GENAI_OPERATION, provider, requested, answered, error_type).observe(
            seconds
        )
        if row.ttft_ms is not None:
            self.ttft.labels(answered).observe(row.ttft_ms / 1000)
            self.genai_ttfc.labels(GENAI_OPERATION, provider, requested, answered, error_type).observe(
                row.ttft_ms / 1000
            )
        if row.prompt_tokens or row.completion_tokens:
            self.tokens.labels(answered, "prompt").inc(row.prompt_tokens)
            self.tokens.labels(answered, "completion").inc(row.completion_tokens)
            self.genai_tokens.labels(GENAI_OPERATION, provider, requested, answered, "input").observe(
                row.prompt_tokens
            )
            self.genai_tokens.labels(GENAI_OPERATION, provider, requested, answered, "output").observe(
                row.completion_tokens
            )
        if row.fallback:
            self.fallbacks.labels(requested, answered).inc()
        if row.cost_usd is not None:
            self.cost.labels(answered).inc(row.cost_usd)
        elif row.prompt_tokens or row.completion_tokens:
            self.cost_unknown.labels(answered).inc()
