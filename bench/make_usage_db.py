"""Write a large usage log for timing `llmops usage`: DATA_DIR/usage.db with N rows in usage_logs.

The schema comes from the project's own migrations (server.usage.schema), so the file is exactly
what the gateway would have written after N calls; the rows are varied and deterministic (seeded).
An existing file that already holds N rows under the same migrations is kept.

    python bench/make_usage_db.py --rows 1000000 --data-dir /tmp/llmops-bench/usage-1000000
"""

import argparse
import random
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from server.usage.schema import COLUMNS, MIGRATIONS, migrate

USERS = [f"user-{n:03d}" for n in range(40)]
MODELS = [("gpt-4o-mini", "openai"), ("echo", "echo"), ("llama3.2", "ollama"), ("gpt-4.1", "openai")]
PROMPTS = [
    "Summarise this ticket in two sentences.",
    "Translate the following paragraph into French.",
    "Why does the tail latency of an LLM gateway matter?",
    "Write a SQL query that counts orders per day.",
]


def fake_rows(count: int, seed: int = 7) -> Iterator[tuple[Any, ...]]:
    """`count` plausible usage rows, oldest first, as tuples in COLUMNS order."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(count):
        model, provider = MODELS[i % len(MODELS)]
        failed = rng.random() < 0.02
        stream = i % 3 == 0
        prompt_tokens = rng.randint(10, 900)
        completion_tokens = 0 if failed else rng.randint(5, 600)
        latency = rng.uniform(20, 2500)
        ts = start + timedelta(seconds=i * 2.5)
        row = {
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
            "request_id": f"req-{i:012x}",
            "user": USERS[rng.randrange(len(USERS))],
            "end_user": None,
            "endpoint": "/v1/chat/completions" if i % 4 else "/llm",
            "requested_model": model,
            "model": model,
            "provider": provider,
            "prompt": PROMPTS[i % len(PROMPTS)],
            "response": None if failed else "A short answer of a few words.",
            "status": "error" if failed else "ok",
            "http_status": 502 if failed else 200,
            "error": "upstream returned 500" if failed else None,
            "latency_ms": round(latency, 2),
            "ttft_ms": round(latency * 0.3, 2) if stream and not failed else None,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "tokens": prompt_tokens + completion_tokens,
            "tokens_estimated": 0,
            "cached_tokens": 0,
            "reasoning_tokens": None,
            "cost_usd": round((prompt_tokens * 0.15 + completion_tokens * 0.6) / 1e6, 8),
            "fallback": 0,
            "stream": int(stream),
            "key_id": None,
        }
        yield tuple(row.get(column) for column in COLUMNS)


def existing_rows(path: Path) -> int | None:
    """Row count of a usage log fully migrated to the current schema, else None."""
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        applied = {name for (name,) in conn.execute("SELECT name FROM _migrations")}
        count = conn.execute("SELECT count(*) FROM usage_logs").fetchone()[0]
        conn.close()
    except sqlite3.Error:
        return None
    return count if applied == {name for name, _ in MIGRATIONS} else None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    path = args.data_dir / "usage.db"
    if existing_rows(path) == args.rows:
        print(f"{path}: already holds {args.rows} rows")
        return 0
    args.data_dir.mkdir(parents=True, exist_ok=True)
    for stale in (path, path.with_name("usage.db-wal"), path.with_name("usage.db-shm")):
        stale.unlink(missing_ok=True)
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")  # as the gateway opens it
    migrate(conn)
    conn.execute("BEGIN")
    placeholders = ", ".join("?" for _ in COLUMNS)
    conn.executemany(
        f"INSERT INTO usage_logs ({', '.join(COLUMNS)}) VALUES ({placeholders})", fake_rows(args.rows)
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size_mib = path.stat().st_size / 2**20
    print(f"{path}: {args.rows} rows, {size_mib:.0f} MiB, in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
