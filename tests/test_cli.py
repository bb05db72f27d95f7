"""The everyday CLI, run as a user would: up, token, simulate, usage, status, down."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx

from tests.harness import Gateway, free_port, run_cli


def test_up_token_simulate_usage_down(tmp_path: Path) -> None:
    port = str(free_port())
    url = f"http://127.0.0.1:{port}"
    try:
        first = run_cli("up", "--port", port, cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip() == url
        assert "generated a new JWT_SECRET" in first.stderr
        env_file = tmp_path / ".env"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        assert len(env_file.read_text().split("JWT_SECRET=")[1].strip()) >= 32
        assert (tmp_path / "data" / "gateway.pid").exists()

        again = run_cli("up", "--port", port, cwd=tmp_path)
        assert again.returncode == 0 and "already running" in again.stderr
        assert "generated" not in again.stderr

        token = run_cli("token", "--sub", "cli-user", cwd=tmp_path)
        assert token.returncode == 0 and token.stdout.count(".") == 2 and token.stderr == ""
        response = httpx.post(
            f"{url}/llm",
            json={"prompt": "hello from the cli test"},
            headers={"Authorization": f"Bearer {token.stdout.strip()}"},
        )
        assert response.status_code == 200 and response.json()["response"] == "hello from the cli test"

        sim = run_cli("simulate", "--count", "25", "--url", url, cwd=tmp_path)
        assert sim.returncode == 0, sim.stderr
        assert "answered" in sim.stdout and "│ 25" in sim.stdout

        usage = run_cli("usage", "--last", "5", "--json", cwd=tmp_path)
        assert usage.returncode == 0, usage.stderr
        rows = json.loads(usage.stdout)
        assert len(rows) == 5
        assert {r["user"] for r in rows} <= {"alice", "bob", "carol"}
        assert all(r["status"] == "ok" for r in rows)
        assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)

        summary = run_cli("usage", "--summary", "--json", cwd=tmp_path)
        groups = json.loads(summary.stdout)
        assert sum(g["calls"] for g in groups) == 26
        cli_user = next(g for g in groups if g["user"] == "cli-user")
        assert (cli_user["calls"], cli_user["prompt_tokens"], cli_user["completion_tokens"]) == (1, 5, 5)

        table = run_cli("usage", "--last", "5", cwd=tmp_path)
        assert table.returncode == 0 and "time (UTC)" in table.stdout

        status = run_cli("status", cwd=tmp_path)
        assert "running" in status.stdout and "ready" in status.stdout
    finally:
        down = run_cli("down", cwd=tmp_path)
    assert down.returncode == 0 and "gateway stopped" in down.stderr
    assert not (tmp_path / "data" / "gateway.pid").exists()
    assert "gateway was not running" in run_cli("down", cwd=tmp_path).stderr
    assert "stopped" in run_cli("status", cwd=tmp_path).stdout
    # Rows survive the stop, all flushed.
    assert len(json.loads(run_cli("usage", "--last", "100", "--json", cwd=tmp_path).stdout)) == 26


def test_placeholder_secret_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("JWT_SECRET=change-me-llmops-generates-a-real-secret\n")
    result = run_cli("token", cwd=tmp_path)
    assert result.returncode == 1
    assert "placeholder" in result.stderr and result.stdout == ""
    assert "Traceback" not in result.stderr


def test_env_example_carries_the_refused_placeholder() -> None:
    from server.settings import PLACEHOLDER_JWT_SECRET

    example = (Path(__file__).parent.parent / ".env.example").read_text()
    assert f"JWT_SECRET={PLACEHOLDER_JWT_SECRET}" in example


def test_usage_without_a_log_says_so(tmp_path: Path) -> None:
    result = run_cli("usage", cwd=tmp_path)
    assert result.returncode == 0 and "no usage log yet" in result.stderr
    assert run_cli("usage", "--json", cwd=tmp_path).stdout.strip() == "[]"


def test_usage_filters(gateway: Gateway) -> None:
    for user in ("filter-a", "filter-b"):
        httpx.post(
            f"{gateway.url}/llm", json={"prompt": "x y", "model": "echo-slow"}, headers=gateway.headers(user)
        )
    gateway.settle()
    result = run_cli(
        "usage", "--user", "filter-b", "--json", "--data-dir", str(gateway.data_dir), cwd=gateway.workdir
    )
    rows = json.loads(result.stdout)
    assert [r["user"] for r in rows] == ["filter-b"]
    by_model = json.loads(
        run_cli(
            "usage",
            "--model",
            "echo-slow",
            "--since",
            "1h",
            "--json",
            "--data-dir",
            str(gateway.data_dir),
            cwd=gateway.workdir,
        ).stdout
    )
    assert {r["user"] for r in by_model} >= {"filter-a", "filter-b"}
    assert all(r["model"] == "echo-slow" for r in by_model)
    csv_out = run_cli(
        "usage", "-n", "1", "--csv", "--data-dir", str(gateway.data_dir), cwd=gateway.workdir
    ).stdout
    assert csv_out.splitlines()[0].startswith("id,ts,request_id,user")
    bad = run_cli(
        "usage", "--since", "yesterday-ish", "--data-dir", str(gateway.data_dir), cwd=gateway.workdir
    )
    assert bad.returncode == 1 and "error: not a time" in bad.stderr


def test_simulate_against_nothing_is_one_line_error(tmp_path: Path) -> None:
    result = run_cli(
        "simulate",
        "--count",
        "3",
        "--url",
        f"http://127.0.0.1:{free_port()}",
        cwd=tmp_path,
        env={"JWT_SECRET": "s" * 48},
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach the gateway")
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_taken_port(gateway: Gateway, tmp_path: Path) -> None:
    result = run_cli("serve", "--port", str(gateway.port), cwd=tmp_path, env={"JWT_SECRET": "s" * 48})
    assert result.returncode == 1 and "already in use" in result.stderr


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run_cli("--help", cwd=tmp_path)
    for command in ("serve", "up", "down", "status", "token", "simulate", "usage"):
        assert command in result.stdout


def test_env_example_parses_as_a_dotenv_file() -> None:
    from dotenv import dotenv_values

    example = Path(__file__).parent.parent / ".env.example"
    lines = [line for line in example.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert lines == ["JWT_SECRET=change-me-llmops-generates-a-real-secret"]
    assert dotenv_values(example) == {"JWT_SECRET": "change-me-llmops-generates-a-real-secret"}
