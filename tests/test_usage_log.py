"""The usage log: migrations on a real file, batching, flush on shutdown, unwritable directories."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path

import httpx
import pytest

from server.usage.schema import COLUMNS, MIGRATIONS, migrate
from server.usage.store import connect
from tests.harness import Gateway, free_port, metric_sum, run_cli


def test_migrations_create_exact_columns_once(tmp_path: Path) -> None:
    conn = connect(tmp_path / "usage.db")
    assert migrate(conn) == [name for name, _ in MIGRATIONS]
    assert migrate(conn) == []
    columns = [row[1] for row in conn.execute("PRAGMA table_info(usage_logs)")]
    assert columns == ["id", *COLUMNS]
    required = {
        "id",
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
        "prompt_tokens",
        "completion_tokens",
        "tokens",
        "cost_usd",
        "fallback",
        "stream",
    }
    assert required <= set(columns)
    assert [r[0] for r in conn.execute("SELECT name FROM _migrations")] == [name for name, _ in MIGRATIONS]


def test_gateway_db_is_wal(gateway: Gateway) -> None:
    gateway.settle()
    conn = sqlite3.connect(gateway.db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sigterm_under_load_flushes_every_answered_call(tmp_path: Path) -> None:
    gw = Gateway(tmp_path / "gw", env={"LLMOPS_USAGE_FLUSH_INTERVAL_S": "0.5"}).start()
    headers = gw.headers("load")

    async def flood() -> list[int]:
        async with httpx.AsyncClient(base_url=gw.url, headers=headers, timeout=30) as client:
            answered_some = asyncio.Event()
            done = 0

            async def one(i: int) -> int:
                nonlocal done
                try:
                    status = (
                        await client.post("/llm", json={"prompt": f"p {i}", "model": "echo"})
                    ).status_code
                except httpx.HTTPError:
                    return 0
                done += 1
                if done == 20:
                    answered_some.set()
                return status

            tasks = [asyncio.create_task(one(i)) for i in range(300)]
            await answered_some.wait()  # SIGTERM lands with calls still in flight
            assert gw.process is not None
            gw.process.send_signal(signal.SIGTERM)
            return list(await asyncio.gather(*tasks))

    statuses = asyncio.run(flood())
    assert gw.process is not None
    assert gw.process.wait(30) == 0  # one SIGTERM: a second, late one would kill the process mid-exit
    answered = statuses.count(200)
    assert answered >= 20
    assert len(gw.rows()) == answered


def test_unwritable_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    result = run_cli(
        "serve",
        "--port",
        str(free_port()),
        "--data-dir",
        str(blocker / "data"),
        cwd=tmp_path,
        env={"JWT_SECRET": "s" * 48},
    )
    assert result.returncode == 1
    assert "error: usage log" in result.stderr and "not writable" in result.stderr
    assert "Traceback" not in result.stderr


def test_requests_total_equals_rows(fresh_gateway: Gateway) -> None:
    result = run_cli(
        "simulate",
        "--count",
        "30",
        "--concurrency",
        "6",
        "--url",
        fresh_gateway.url,
        cwd=fresh_gateway.workdir,
        env={"JWT_SECRET": fresh_gateway.secret},
    )
    assert result.returncode == 0, result.stderr
    rows = fresh_gateway.wait_rows(30)
    assert len(rows) == 30
    samples = fresh_gateway.metrics()
    assert metric_sum(samples, "llmops_requests_total") == 30
    assert metric_sum(samples, "llmops_tokens_total", type="prompt") == sum(r["prompt_tokens"] for r in rows)
    assert metric_sum(samples, "llmops_fallbacks_total") == sum(r["fallback"] for r in rows)
    assert metric_sum(samples, "llmops_cost_usd_total") == pytest.approx(sum(r["cost_usd"] for r in rows))
