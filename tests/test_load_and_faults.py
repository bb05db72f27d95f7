"""Load and faults: nothing lost under load, a locked database, SIGTERM, SIGKILL, a full or read-only disk."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.harness import Gateway, metric_sum, run_cli
from tests.load_client import fast_models, load_result, start_load
from tests.sigkill_loss import measure_sigkill_loss


@contextlib.contextmanager
def write_lock(db_path: Path, seconds: float) -> Iterator[dict[str, float]]:
    """Another process holding an EXCLUSIVE transaction on `db_path` for `seconds`; yields its times."""
    script = (
        "import sqlite3, sys, time\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "conn.execute('PRAGMA busy_timeout = 10000')\n"
        "conn.execute('BEGIN EXCLUSIVE')\n"
        "print(time.time(), flush=True)\n"
        "time.sleep(float(sys.argv[2]))\n"
        "conn.execute('COMMIT')\n"
        "print(time.time(), flush=True)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(db_path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    times: dict[str, float] = {}
    try:
        assert process.stdout is not None
        times["locked"] = float(process.stdout.readline())
        yield times
    finally:
        assert process.wait(seconds + 30) == 0
        assert process.stdout is not None
        times["released"] = float(process.stdout.readline())


def test_10k_requests_with_readers_and_a_write_lock_lose_nothing(tmp_path: Path) -> None:
    gw = Gateway(tmp_path / "gw", env=fast_models(tmp_path)).start()
    out = tmp_path / "load.json"
    readers: list[subprocess.CompletedProcess[str]] = []
    load = start_load(gw, out, "--concurrency", "50")
    try:

        def read_in_a_loop() -> None:
            while load.poll() is None:
                readers.append(run_cli("usage", "--last", "5", "--data-dir", str(gw.data_dir), cwd=tmp_path))

        reader_thread = threading.Thread(target=read_in_a_loop)
        reader_thread.start()
        while len(gw.rows()) < 1000 and load.poll() is None:
            time.sleep(0.05)
        with write_lock(gw.db_path, 3.0) as lock:
            pass
        result = load_result(load, out)
        reader_thread.join()

        statuses = Counter(status for _, status, _ in result["results"])
        assert statuses == {200: 10_000}, statuses
        answered_while_locked = [t for _, _, t in result["results"] if lock["locked"] < t < lock["released"]]
        assert len(answered_while_locked) > 100  # the lock did not stop the gateway answering
        assert lock["released"] - lock["locked"] >= 3.0

        total = gw.settle()
        rows = gw.rows("WHERE user = 'load'")
        assert len(rows) == 10_000 and total == 10_001
        assert {r["request_id"] for r in rows} == {rid for rid, _, _ in result["results"]}
        assert all(r["status"] == "ok" and r["tokens"] > 0 for r in rows)
        samples = gw.metrics()
        assert metric_sum(samples, "llmops_requests_total") == total
        assert metric_sum(samples, "llmops_requests_total", user="load", status="ok") == 10_000
        assert metric_sum(samples, "llmops_usage_write_errors_total") == 0

        sent, elapsed = len(result["results"]), result["finished"] - result["started"]
        errors = sum(status != 200 for _, status, _ in result["results"])
        print(
            f"load: {sent} requests in {elapsed:.1f}s ({sent / elapsed:.0f}/s), {len(rows)} rows, "
            f"{errors} errors, {len(answered_while_locked)} answered during the "
            f"{lock['released'] - lock['locked']:.1f}s lock, {len(readers)} `llmops usage` runs"
        )
        assert len(readers) >= 3
        for reader in readers:
            assert reader.returncode == 0, reader.stderr
            assert "locked" not in reader.stdout + reader.stderr
    finally:
        if load.poll() is None:
            load.kill()
        assert gw.stop() == 0
    log = gw.log_path.read_text()
    assert "locked" not in log and "Traceback" not in log
    request_lines = [line for line in log.splitlines() if '"event":"request"' in line]
    assert len(request_lines) == 10_001  # the JSON request log agrees with the rows


def test_sigterm_lets_in_flight_calls_finish_and_flushes_every_row(tmp_path: Path) -> None:
    gw = Gateway(tmp_path / "gw", env={**fast_models(tmp_path), "LLMOPS_USAGE_FLUSH_INTERVAL_S": "1.0"})
    gw.start()
    headers = gw.headers("drain")

    async def scenario() -> tuple[list[int], list[int]]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(base_url=gw.url, headers=headers, timeout=30, limits=limits) as client:

            async def one(i: int, model: str) -> int:
                try:
                    body = {"prompt": f"call {i}", "model": model}
                    response = await client.post("/llm", json=body, headers={"x-request-id": f"drain-{i}"})
                except httpx.HTTPError:
                    return 0
                return response.status_code

            in_flight = [asyncio.create_task(one(i, "slow")) for i in range(100)]
            while metric_sum(gw.metrics(), "llmops_in_flight_requests") < 100:
                await asyncio.sleep(0.02)
            assert gw.process is not None
            gw.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.1)
            late = [asyncio.create_task(one(1000 + i, "echo")) for i in range(50)]
            return list(await asyncio.gather(*in_flight)), list(await asyncio.gather(*late))

    in_flight, late = asyncio.run(scenario())
    assert gw.process is not None
    assert gw.process.wait(30) == 0  # one SIGTERM only: a second one during exit would kill the process
    assert in_flight == [200] * 100  # every call in flight at SIGTERM was answered
    assert set(late) <= {0, 503}  # calls after it were refused, not half-served
    rows = gw.rows()
    assert {r["request_id"] for r in rows} == {f"drain-{i}" for i in range(100)}
    assert all(r["status"] == "ok" for r in rows)
    assert not list(gw.data_dir.glob("usage-unwritten-*"))


def test_sigkill_loses_at_most_the_flush_interval(tmp_path: Path) -> None:
    interval = 0.02
    figures = measure_sigkill_loss(tmp_path, interval)
    print(f"SIGKILL with LLMOPS_USAGE_FLUSH_INTERVAL_S={interval}: {figures}")
    assert figures["acknowledged"] > 1000 and figures["rate_per_s"] > 100
    # Only calls acknowledged in the last flush interval, plus the time one batch takes to commit on a
    # loaded machine, can be lost (and the writer must keep up with the load, or its backlog is lost too).
    assert figures["window_s"] <= interval + 0.5
    assert figures["lost"] <= figures["rate_per_s"] * (interval + 0.5)
    assert figures["lost"] < figures["acknowledged"] / 2
