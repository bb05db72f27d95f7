"""A data directory that is read-only or full, at start and during a run.

CI runs as root, which ignores permission bits, so the faults are real mounts: a read-only bind mount
and a tiny tmpfs filled to the last byte.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.harness import TEST_SECRET, Gateway, free_port, metric_sum, run_cli
from tests.mounts import fill


def serve_fails(data_dir: Path, cwd: Path) -> str:
    result = run_cli(
        "serve",
        "--port",
        str(free_port()),
        "--data-dir",
        str(data_dir),
        cwd=cwd,
        env={"JWT_SECRET": TEST_SECRET},
        timeout=30,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_read_only_data_dir_at_start(tmp_path: Path, mounts: Callable[..., Path]) -> None:
    data = mounts(tmp_path / "ro", "ro")
    with pytest.raises(OSError, match="Read-only file system"):
        (data / "probe").touch()
    stderr = serve_fails(data / "data", tmp_path)
    assert f"error: usage log {data / 'data' / 'usage.db'} is not writable" in stderr
    assert "Read-only file system" in stderr


def test_full_disk_at_start(tmp_path: Path, mounts: Callable[..., Path]) -> None:
    data = mounts(tmp_path / "full", "tmpfs:64k")
    fill(data)
    stderr = serve_fails(data, tmp_path)
    assert f"error: usage log {data / 'usage.db'} is not writable: database or disk is full" in stderr


def test_full_disk_at_start_with_an_existing_log(tmp_path: Path, mounts: Callable[..., Path]) -> None:
    data = mounts(tmp_path / "full", "tmpfs:256k")
    gw = Gateway(tmp_path / "gw")
    gw.data_dir = data
    gw.start()
    gw.settle()
    assert gw.stop() == 0
    fill(data)
    stderr = serve_fails(data, tmp_path)
    assert f"error: usage log {data / 'usage.db'} is not writable" in stderr


def test_disk_full_during_a_run_keeps_rows_until_space_returns(
    tmp_path: Path, mounts: Callable[..., Path]
) -> None:
    gw = Gateway(tmp_path / "gw")
    mounts(gw.data_dir, "tmpfs:16m")  # room for the rows below twice (WAL, then database)
    gw.start()
    before = gw.settle()
    filler = fill(gw.data_dir)

    big_prompt = " ".join(["word"] * 10_000)  # 50 kB in and out: the WAL has to grow
    sent = []
    with httpx.Client(base_url=gw.url, headers=gw.headers("full-disk"), timeout=30) as client:
        for i in range(10):
            response = client.post("/llm", json={"prompt": big_prompt}, headers={"x-request-id": f"full-{i}"})
            assert response.status_code == 200  # answered; the row waits in memory
            sent.append(f"full-{i}")

        deadline = time.monotonic() + 15
        while client.get("/readyz").status_code != 503 and time.monotonic() < deadline:
            time.sleep(0.05)
        readyz = client.get("/readyz")
        assert readyz.status_code == 503
        assert readyz.json() == {"status": "unready", "reason": "usage log is not writable"}
        assert metric_sum(gw.metrics(), "llmops_usage_write_errors_total") >= 1
        assert len(gw.rows()) == before  # nothing written, nothing dropped yet

        filler.unlink()  # space returns
        deadline = time.monotonic() + 15
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/readyz").status_code == 200

    rows = gw.wait_rows(before + 10)
    assert sorted(r["request_id"] for r in rows if r["user"] == "full-disk") == sorted(sent)
    assert all(r["prompt"] == big_prompt for r in rows if r["user"] == "full-disk")
    assert gw.stop() == 0
    assert not list(gw.data_dir.glob("usage-unwritten-*"))
    log = gw.log_path.read_text()
    assert "usage log write failed (database or disk is full)" in log
