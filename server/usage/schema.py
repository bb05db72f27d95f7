"""The usage log's schema, changed only through named, append-only migrations."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

# (name, SQL). Never edit or reorder an applied migration: append a new one.
MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_usage_logs",
        """
        CREATE TABLE usage_logs (
            id                INTEGER PRIMARY KEY,
            ts                TEXT NOT NULL,
            request_id        TEXT NOT NULL,
            user              TEXT NOT NULL,
            end_user          TEXT,
            endpoint          TEXT NOT NULL,
            requested_model   TEXT,
            model             TEXT,
            provider          TEXT,
            prompt            TEXT,
            response          TEXT,
            status            TEXT NOT NULL,
            http_status       INTEGER NOT NULL,
            error             TEXT,
            latency_ms        REAL NOT NULL,
            ttft_ms           REAL,
            prompt_tokens     INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            tokens            INTEGER NOT NULL DEFAULT 0,
            tokens_estimated  INTEGER NOT NULL DEFAULT 0,
            cached_tokens     INTEGER,
            reasoning_tokens  INTEGER,
            cost_usd          REAL,
            fallback          INTEGER NOT NULL DEFAULT 0,
            stream            INTEGER NOT NULL DEFAULT 0,
            key_id            TEXT
        );
        CREATE INDEX usage_logs_ts ON usage_logs (ts);
        CREATE INDEX usage_logs_user_ts ON usage_logs (user, ts);
        """,
    ),
    (
        "0002_alerts",
        """
        CREATE TABLE alerts (
            fingerprint   TEXT PRIMARY KEY,
            name          TEXT NOT NULL,
            status        TEXT NOT NULL,
            severity      TEXT,
            summary       TEXT,
            labels        TEXT NOT NULL,
            annotations   TEXT NOT NULL,
            starts_at     TEXT,
            ends_at       TEXT,
            received_at   TEXT NOT NULL
        );
        CREATE INDEX alerts_status ON alerts (status, received_at)
        """,
    ),
]

COLUMNS = [
    "ts",
    "request_id",
    "user",
    "end_user",
    "endpoint",
    "requested_model",
    "model",
    "provider",
    "prompt",
    "response",
    "status",
    "http_status",
    "error",
    "latency_ms",
    "ttft_ms",
    "prompt_tokens",
    "completion_tokens",
    "tokens",
    "tokens_estimated",
    "cached_tokens",
    "reasoning_tokens",
    "cost_usd",
    "fallback",
    "stream",
    "key_id",
]


def migrate(conn: sqlite3.Connection, migrations: list[tuple[str, str]] = MIGRATIONS) -> list[str]:
    """Apply the `migrations` `conn` has not seen yet, each in its own transaction; returns their names.

    The usage log's by default; `<data>/auth.db` passes its own list.

    `conn` must be in autocommit mode (isolation_level=None) so BEGIN/COMMIT here are the real ones.
    """
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    applied = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    done: list[str] = []
    for name, sql in migrations:
        if name in applied:
            continue
        conn.execute("BEGIN IMMEDIATE")
        if conn.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
            # Another process (a second worker, the CLI) applied it while this one waited for the lock.
            conn.execute("ROLLBACK")
            continue
        try:
            for statement in filter(str.strip, sql.split(";")):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                (name, datetime.now(UTC).isoformat(timespec="seconds")),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        done.append(name)
    return done
