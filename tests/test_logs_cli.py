"""`llmops logs gateway`: the real gateway's log under `llmops up`, pretty-printed and filtered."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.auth import mint_token
from tests.harness import cli_env, free_port, run_cli


@pytest.fixture
def logged_gateway(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A gateway started by `llmops up` (so it logs to data/gateway.log) with a few calls in its log."""
    port = str(free_port())
    started = run_cli("up", "--port", port, cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip()
    secret = (tmp_path / ".env").read_text().split("JWT_SECRET=")[1].split()[0]
    try:
        for user, model in [("alice", "echo"), ("alice", "echo"), ("bob", "echo"), ("bob", "no-such-model")]:
            httpx.post(
                f"{url}/llm",
                json={"prompt": f"hello from {user}", "model": model},
                headers={"Authorization": f"Bearer {mint_token(secret, user, 600)}"},
            )
        log = tmp_path / "data" / "gateway.log"
        deadline = time.monotonic() + 10
        while log.read_text().count('"event":"request"') < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield tmp_path, url
    finally:
        run_cli("down", cwd=tmp_path)


def test_gateway_log_pretty_prints_requests_and_passes_other_lines(logged_gateway: tuple[Path, str]) -> None:
    cwd, url = logged_gateway

    result = run_cli("logs", "gateway", cwd=cwd)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    requests = [line for line in lines if " /llm " in line]
    assert len(requests) == 4
    assert [line.split()[1:4] for line in requests] == [
        ["ok", "200", "alice"],
        ["ok", "200", "alice"],
        ["ok", "200", "bob"],
        ["rejected", "404", "bob"],
    ]
    assert "model_not_found" in requests[3]
    assert any(f"llmops gateway on {url}" in line for line in lines)
    assert not any(line.lstrip().startswith("{") for line in lines)


def test_gateway_log_filters(logged_gateway: tuple[Path, str]) -> None:
    cwd, _ = logged_gateway

    by_user = run_cli("logs", "--user", "bob", "--json", cwd=cwd)
    rejected = run_cli("logs", "--status", "rejected", cwd=cwd)
    by_code = run_cli("logs", "--status", "200", "--tail", "2", "--json", cwd=cwd)
    recent = run_cli("logs", "--since", "10m", "--json", cwd=cwd)
    future = run_cli("logs", "--since", "2999-01-01", cwd=cwd)

    assert [json.loads(line)["user"] for line in by_user.stdout.splitlines()] == ["bob", "bob"]
    assert len(rejected.stdout.splitlines()) == 1 and "rejected 404 bob" in rejected.stdout
    assert [json.loads(line)["user"] for line in by_code.stdout.splitlines()] == ["alice", "bob"]
    assert len(recent.stdout.splitlines()) == 4
    assert future.returncode == 0 and future.stdout == ""
    bad = run_cli("logs", "--since", "yesterday-ish", cwd=cwd)
    assert bad.returncode == 1 and "not a time" in bad.stderr


def test_gateway_log_follow_prints_new_requests(logged_gateway: tuple[Path, str]) -> None:
    cwd, url = logged_gateway
    follower = subprocess.Popen(
        [sys.executable, "-m", "llmops_cli", "logs", "gateway", "-f", "--tail", "0", "--json"],
        cwd=cwd,
        env=cli_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1)
        secret = (cwd / ".env").read_text().split("JWT_SECRET=")[1].split()[0]
        httpx.post(
            f"{url}/llm",
            json={"prompt": "followed"},
            headers={"Authorization": f"Bearer {mint_token(secret, 'carol', 600)}"},
        )
        assert follower.stdout is not None
        ready, _, _ = select.select([follower.stdout], [], [], 15)
        assert ready, "no line followed within 15 s"
        entry = json.loads(follower.stdout.readline())
    finally:
        follower.terminate()
        follower.wait(timeout=10)

    assert (entry["user"], entry["status"]) == ("carol", "ok")


def test_logs_without_a_gateway_log_say_how_to_get_one(tmp_path: Path) -> None:
    result = run_cli("logs", cwd=tmp_path)

    assert result.returncode == 1
    assert "no gateway log" in result.stderr and "llmops up" in result.stderr
