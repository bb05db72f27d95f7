"""The stack through the CLI, as a user runs it: up, simulate, status, logs, shell db, reset, down, nuke.

Real gateway, real Docker engine, Debian's Prometheus and Alertmanager in local images; the stack is
isolated by its own project label, name prefix and free ports on 127.0.0.1.
"""

from __future__ import annotations

import os
import pty
import select
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from stack.config import COMPONENTS, StackConfig
from stack.engine import PROJECT_LABEL
from tests.harness import cli_env, free_port, run_cli
from tests.prometheus_queries import query, wait_for

MakeConfig = Callable[..., StackConfig]


def stack_env(config: StackConfig) -> dict[str, str]:
    """The settings that point the CLI at the isolated test stack ``config`` describes."""
    return {
        "LLMOPS_STACK": "on",
        "LLMOPS_STACK_PROJECT": config.project,
        "LLMOPS_STACK_NAME_PREFIX": config.name_prefix,
        "LLMOPS_PROMETHEUS_PORT": str(config.prometheus_port),
        "LLMOPS_ALERTMANAGER_PORT": str(config.alertmanager_port),
        "LLMOPS_GRAFANA_PORT": str(config.grafana_port),
        "LLMOPS_PROMETHEUS_IMAGE": config.prometheus_image,
        "LLMOPS_ALERTMANAGER_IMAGE": config.alertmanager_image,
        "LLMOPS_GRAFANA_IMAGE": config.grafana_image,
        "LLMOPS_SCRAPE_INTERVAL": config.scrape_interval,
    }


def labelled(docker_client: Any, config: StackConfig) -> list[str]:
    label = {"label": f"{PROJECT_LABEL}={config.project}"}
    return [
        *(c.name for c in docker_client.containers.list(all=True, filters=label)),
        *(v.name for v in docker_client.volumes.list(filters=label)),
        *(n.name for n in docker_client.networks.list(filters=label)),
    ]


def test_the_whole_stack_through_the_cli(
    make_stack_config: MakeConfig, docker_client: Any, tmp_path: Path
) -> None:
    config = make_stack_config(data_dir=tmp_path / "data")
    env = stack_env(config)
    port = str(config.gateway_port)
    url = f"http://127.0.0.1:{port}"

    def cli(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, cwd=tmp_path, env=env, **kwargs)

    try:
        first = cli("up", "--port", port)
        assert first.returncode == 0, first.stderr
        for component in COMPONENTS:
            assert f"{component}: created" in first.stderr
            assert config.url(component) in first.stdout
        assert url in first.stdout
        env_file = tmp_path / ".env"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        password = env_file.read_text().split("GRAFANA_ADMIN_PASSWORD=")[1].split()[0]
        assert len(password) >= 32
        grafana = docker_client.containers.get(f"{config.name_prefix}grafana")
        assert f"GF_SECURITY_ADMIN_PASSWORD={password}" in grafana.attrs["Config"]["Env"]

        rule_groups = httpx.get(f"{config.url('prometheus')}/api/v1/rules", timeout=10).json()["data"][
            "groups"
        ]
        assert [group["file"] for group in rule_groups] == ["/etc/prometheus/rules/llmops_alerts.yml"] * len(
            rule_groups
        )
        am_config = httpx.get(f"{config.url('alertmanager')}/api/v2/status", timeout=10).json()["config"]
        webhook_token = env_file.read_text().split("LLMOPS_ALERTS_WEBHOOK_TOKEN=")[1].split()[0]
        assert f"url: {url}/alerts/webhook" in am_config["original"]
        mounted = (tmp_path / "data" / "stack" / "alertmanager" / "alertmanager.yml").read_text()
        assert f"credentials: {webhook_token}" in mounted

        again = cli("up", "--port", port)
        assert again.returncode == 0, again.stderr
        assert all(f"{component}: unchanged" in again.stderr for component in COMPONENTS)
        assert "generated" not in again.stderr

        simulated = cli("simulate", "--count", "25", "--url", url)
        assert simulated.returncode == 0, simulated.stderr
        wait_for(lambda: query(config, 'up{job="llmops"} == 1'), what='up{job="llmops"} == 1')
        counted = 'sum(llmops_requests_total{job="llmops"})'
        wait_for(lambda: [s for s in query(config, counted) if s["value"][1] == "25"], what="25 requests")

        shown = cli("status")
        assert shown.returncode == 0, shown.stderr
        for component in COMPONENTS:
            row = next(line for line in shown.stdout.splitlines() if f" {component} " in line)
            assert "running" in row and "healthy" in row and config.url(component) in row

        prometheus_log = cli("logs", "prometheus", "--tail", "3")
        assert prometheus_log.returncode == 0 and len(prometheus_log.stdout.splitlines()) == 3

        assert "|25|" in _sqlite_through_shell(
            tmp_path, env, "select '|' || count(*) || '|' from usage_logs;"
        )

        before_reset = time.time()
        for _ in range(2):
            reset = cli("reset")
            assert reset.returncode == 0 and "wiped and Prometheus restarted" in reset.stderr
        assert query(config, 'up{job="prometheus"}', at=before_reset) == []
        assert query(config, "count(llmops_requests_total)", at=before_reset) == []

        down = cli("down")
        assert down.returncode == 0, down.stderr
        assert "gateway stopped" in down.stderr and f"{config.name_prefix}prometheus" in down.stderr
        down_again = cli("down")
        assert "gateway was not running" in down_again.stderr
        assert "stack was not running" in down_again.stderr

        refused = cli("nuke", input="n\n")
        assert refused.returncode == 1
        assert (tmp_path / "data" / "usage.db").exists() and labelled(docker_client, config)

        nuked = cli("nuke", "--yes")
        assert nuked.returncode == 0, nuked.stderr
        removed = nuked.stdout.splitlines()
        assert f"removed container {config.name_prefix}prometheus" in removed
        assert f"removed volume {config.name_prefix}prometheus-data" in removed
        assert "removed file data/usage.db" in removed
        assert "removed file data/gateway.log" in removed
        assert labelled(docker_client, config) == []
        assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["auth.db"]
        assert env_file.exists()
        nothing = cli("nuke", "--yes")
        assert nothing.returncode == 0 and "nothing to remove" in nothing.stderr
    finally:
        cli("down")


def test_up_without_docker_starts_the_gateway_and_says_how_to_get_dashboards(
    make_stack_config: MakeConfig, tmp_path: Path
) -> None:
    config = make_stack_config(data_dir=tmp_path / "data")
    env = {**stack_env(config), "DOCKER_HOST": f"unix://{tmp_path}/no-docker-here.sock"}
    port = str(config.gateway_port)
    try:
        result = run_cli("up", "--port", port, cwd=tmp_path, env=env)

        assert result.returncode == 0, result.stderr
        assert "Docker engine does not answer" in result.stderr
        assert "start Docker" in result.stderr and "llmops up" in result.stderr
        assert f"http://127.0.0.1:{port}" in result.stdout
        assert "prometheus" not in result.stdout
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
        shown = run_cli("status", cwd=tmp_path, env=env)
        assert shown.returncode == 0 and "state is unknown" in shown.stderr
    finally:
        run_cli("down", cwd=tmp_path, env=env)


def test_stack_commands_without_a_stack_explain_themselves(
    make_stack_config: MakeConfig, tmp_path: Path
) -> None:
    config = make_stack_config(data_dir=tmp_path / "data")
    env = stack_env(config)

    logs = run_cli("logs", "grafana", cwd=tmp_path, env=env)
    shell = run_cli("shell", "db", cwd=tmp_path, env=env)
    mixed = run_cli("logs", "prometheus", "--user", "bob", cwd=tmp_path, env=env)

    assert logs.returncode == 1 and "grafana has no container" in logs.stderr and "llmops up" in logs.stderr
    assert shell.returncode == 1 and "no usage log" in shell.stderr
    assert mixed.returncode == 1 and "gateway log only" in mixed.stderr


def _sqlite_through_shell(cwd: Path, env: dict[str, str], sql: str) -> str:
    """Run `llmops shell db` on a real terminal, type ``sql`` and .quit, return what the terminal showed."""
    controller, terminal = pty.openpty()
    shell = subprocess.Popen(
        [sys.executable, "-m", "llmops_cli", "shell", "db"],
        cwd=cwd,
        env=cli_env(env),
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    received = b""
    try:
        os.write(controller, f"{sql}\n.quit\n".encode())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if not ready:
                continue
            try:
                data = os.read(controller, 4096)
            except OSError:  # EIO: sqlite3 exited
                break
            if not data:
                break
            received += data
        assert shell.wait(timeout=30) == 0
    finally:
        shell.kill()
        os.close(controller)
    return received.decode(errors="replace")


def test_nuke_stops_the_gateway_and_keeps_env_unless_all(tmp_path: Path) -> None:
    # The harness sets LLMOPS_STACK=off: no Docker object is looked at, let alone removed.
    port = str(free_port())
    assert run_cli("up", "--port", port, cwd=tmp_path).returncode == 0

    nuked = run_cli("nuke", "--yes", cwd=tmp_path)

    assert nuked.returncode == 0, nuked.stderr
    removed = nuked.stdout.splitlines()
    assert removed[0].startswith("removed gateway process ")
    assert set(removed[1:]) == {
        "removed file data/usage.db",
        "removed file data/usage.db-wal",
        "removed file data/usage.db-shm",
        "removed file data/gateway.pid",
        "removed file data/gateway.log",
    }
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["auth.db"]
    assert (tmp_path / ".env").exists()

    everything = run_cli("nuke", "--yes", "--all", cwd=tmp_path)
    assert everything.stdout.splitlines() == ["removed file data/auth.db", "removed file .env"]
    assert not (tmp_path / ".env").exists()
    assert not (tmp_path / "data").exists()
