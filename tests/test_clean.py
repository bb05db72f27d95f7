"""`llmops clean`: empty the usage log through a running gateway's writer, or directly when none runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from tests.harness import free_port, run_cli


def row_count(db: Path) -> int:
    return int(sqlite3.connect(db).execute("SELECT COUNT(*) FROM usage_logs").fetchone()[0])


def test_clean_while_running_goes_through_the_writer(tmp_path: Path) -> None:
    port = str(free_port())
    url = f"http://127.0.0.1:{port}"
    db = tmp_path / "data" / "usage.db"
    assert run_cli("up", "--port", port, cwd=tmp_path).returncode == 0
    try:
        token = run_cli("token", "--sub", "cleaner", cwd=tmp_path).stdout.strip()
        headers = {"Authorization": f"Bearer {token}"}
        for i in range(5):
            assert httpx.post(f"{url}/llm", json={"prompt": f"p {i}"}, headers=headers).status_code == 200
        # Rows still in the writer's queue are written, then deleted: none survives, none is lost later.
        result = run_cli("clean", "--yes", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "through the running gateway" in result.stderr and "5 rows deleted" in result.stderr
        assert row_count(db) == 0
        assert httpx.post(f"{url}/llm", json={"prompt": "after"}, headers=headers).status_code == 200
        assert httpx.post(f"{url}/admin/usage/clear", headers=headers).status_code == 403
    finally:
        assert run_cli("down", cwd=tmp_path).returncode == 0
    assert row_count(db) == 1  # the call after clean landed in the live file

    refused = run_cli("clean", cwd=tmp_path, input="n\n")
    assert refused.returncode == 1 and row_count(db) == 1
    direct = run_cli("clean", "--yes", cwd=tmp_path)
    assert direct.returncode == 0 and "directly" in direct.stderr and "1 rows deleted" in direct.stderr
    assert row_count(db) == 0
