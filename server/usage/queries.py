"""Read-side queries over the usage log, shared by the CLI and the gateway."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

RECENT_COLUMNS = [
    "id",
    "ts",
    "request_id",
    "user",
    "end_user",
    "endpoint",
    "requested_model",
    "model",
    "status",
    "http_status",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
    "tokens",
    "cost_usd",
    "fallback",
    "stream",
    "prompt",
    "response",
    "error",
]


@dataclass
class UsageFilter:
    user: str | None = None
    model: str | None = None
    since: str | None = None  # UTC ISO-8601, compared as text (all timestamps share one format)

    def where(self) -> tuple[str, list[Any]]:
        clauses, params = [], []
        if self.user is not None:
            clauses.append("user = ?")
            params.append(self.user)
        if self.model is not None:
            clauses.append("(model = ? OR requested_model = ?)")
            params += [self.model, self.model]
        if self.since is not None:
            clauses.append("ts >= ?")
            params.append(self.since)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def recent_calls(conn: sqlite3.Connection, last: int, where: UsageFilter) -> list[dict[str, Any]]:
    """The `last` newest rows matching `where`, newest first."""
    sql_where, params = where.where()
    sql = f"SELECT {', '.join(RECENT_COLUMNS)} FROM usage_logs{sql_where} ORDER BY id DESC LIMIT ?"
    cursor = conn.execute(sql, [*params, last])
    return [dict(zip(RECENT_COLUMNS, row, strict=True)) for row in cursor]


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * fraction // 1))  # ceil
    return sorted_values[int(rank) - 1]


def usage_summary(conn: sqlite3.Connection, where: UsageFilter) -> list[dict[str, Any]]:
    """Calls, errors, tokens, cost and p95 latency per user and requested model."""
    sql_where, params = where.where()
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    latencies: dict[tuple[str, str], list[float]] = {}
    sql = (
        "SELECT user, COALESCE(requested_model, ''), status, latency_ms, prompt_tokens, completion_tokens, "
        f"cost_usd, fallback FROM usage_logs{sql_where}"
    )
    for user, model, status, latency, prompt_t, completion_t, cost, fallback in conn.execute(sql, params):
        key = (user, model)
        group = groups.setdefault(
            key,
            {
                "user": user,
                "model": model,
                "calls": 0,
                "errors": 0,
                "fallbacks": 0,
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "cost_usd": 0.0,
                "cost_unknown_calls": 0,
            },
        )
        group["calls"] += 1
        group["errors"] += status != "ok"
        group["fallbacks"] += bool(fallback)
        group["prompt_tokens"] += prompt_t
        group["completion_tokens"] += completion_t
        if cost is None:
            group["cost_unknown_calls"] += status == "ok"
        else:
            group["cost_usd"] += cost
        latencies.setdefault(key, []).append(latency)
    for key, group in groups.items():
        group["p95_latency_ms"] = percentile(sorted(latencies[key]), 0.95)
        group["tokens"] = group["prompt_tokens"] + group["completion_tokens"]
    return sorted(groups.values(), key=lambda g: (g["user"], g["model"]))


def spend_since(conn: sqlite3.Connection, since: str) -> dict[str, tuple[int, float]]:
    """Tokens and cost (unpriced calls count 0) per principal since `since` (UTC ISO-8601)."""
    sql = "SELECT user, SUM(tokens), SUM(COALESCE(cost_usd, 0)) FROM usage_logs WHERE ts >= ? GROUP BY user"
    rows = conn.execute(sql, (since,))
    return {user: (int(tokens or 0), float(cost or 0.0)) for user, tokens, cost in rows}
