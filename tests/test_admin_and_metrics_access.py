"""What is exposed: /admin/usage needs the admin scope; /metrics can want a token or live on its own port."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import TEST_SECRET, Gateway, free_port, metric_sum, run_cli

METRICS_TOKEN = "scrape-token-" + "m" * 30


def test_admin_usage_is_401_403_or_rows(gateway: Gateway, tmp_path: Path) -> None:
    for user in ("tenant-a", "tenant-b"):
        assert (
            httpx.post(
                f"{gateway.url}/llm", json={"prompt": f"hi from {user}"}, headers=gateway.headers(user)
            )
        ).status_code == 200
    gateway.settle()

    anonymous = httpx.get(f"{gateway.url}/admin/usage")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Bearer")
    assert "data" not in anonymous.json()

    tenant = httpx.get(f"{gateway.url}/admin/usage", headers=gateway.headers("tenant-a"))
    assert tenant.status_code == 403
    assert tenant.json()["error"] == {
        "type": "permission_error",
        "message": "reading other principals' usage needs the llmops:admin scope",
    }

    minted = run_cli("token", "--sub", "ops", "--admin", cwd=tmp_path, env={"JWT_SECRET": TEST_SECRET})
    assert minted.returncode == 0, minted.stderr
    admin = {"Authorization": f"Bearer {minted.stdout.strip()}"}
    newest = httpx.get(f"{gateway.url}/admin/usage?last=1", headers=admin)
    assert newest.status_code == 200
    assert [row["user"] for row in newest.json()["data"]] == ["barrier"]
    rows = httpx.get(f"{gateway.url}/admin/usage?last=50&user=tenant-b", headers=admin).json()["data"]
    assert [(row["user"], row["prompt"]) for row in rows] == [("tenant-b", "hi from tenant-b")]
    assert {"id", "ts", "request_id", "model", "status", "latency_ms", "cost_usd"} <= set(rows[0])

    for bad in ("0", "1001", "ten"):
        response = httpx.get(f"{gateway.url}/admin/usage?last={bad}", headers=admin)
        assert response.status_code == 400 and "`last`" in response.json()["error"]["message"]
    # Without credentials a bad query is still a 401: nothing is looked at before auth.
    assert httpx.get(f"{gateway.url}/admin/usage?last=ten").status_code == 401


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Gateway]:
    gw = Gateway(tmp_path, env={"LLMOPS_METRICS_TOKEN": METRICS_TOKEN}).start()
    yield gw
    gw.stop()


def test_metrics_token_is_required_when_set(guarded: Gateway) -> None:
    scrape = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {METRICS_TOKEN}"}):
        response = httpx.get(f"{guarded.url}/metrics", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "llmops_" not in response.text
    # An LLM bearer token is not a scrape token.
    assert httpx.get(f"{guarded.url}/metrics", headers=guarded.headers("alice")).status_code == 401
    samples = guarded.metrics(headers=scrape)
    assert metric_sum(samples, "llmops_auth_failures_total", reason="metrics_token") == 4
    assert ("llmops_usage_write_errors_total", ()) in samples
    # The scrape token opens nothing else.
    response = httpx.post(f"{guarded.url}/llm", json={"prompt": "x"}, headers=scrape)
    assert response.status_code == 401


@pytest.fixture
def separate(tmp_path: Path) -> Iterator[tuple[Gateway, str]]:
    metrics_port = free_port()
    gw = Gateway(
        tmp_path, env={"LLMOPS_METRICS_PORT": str(metrics_port), "LLMOPS_METRICS_TOKEN": METRICS_TOKEN}
    ).start()
    yield gw, f"http://127.0.0.1:{metrics_port}"
    gw.stop()


def test_metrics_on_their_own_address(separate: tuple[Gateway, str]) -> None:
    gw, metrics_url = separate
    scrape = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    on_main_port = httpx.get(f"{gw.url}/metrics", headers=scrape)
    assert on_main_port.status_code == 404
    assert "llmops_" not in on_main_port.text

    assert (
        httpx.post(f"{gw.url}/llm", json={"prompt": "counted"}, headers=gw.headers("alice")).status_code
        == 200
    )
    gw.settle()
    refused = httpx.get(f"{metrics_url}/metrics")
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert httpx.get(f"{metrics_url}/other", headers=scrape).status_code == 404
    samples = gw.metrics(url=f"{metrics_url}/metrics", headers=scrape)
    assert metric_sum(samples, "llmops_requests_total", user="alice") == 1
    assert metric_sum(samples, "llmops_auth_failures_total", reason="metrics_token") == 1
    # The LLM port serves no metrics, the metrics port no LLM.
    assert httpx.post(f"{metrics_url}/llm", json={"prompt": "x"}, headers=gw.headers()).status_code == 404


def test_metrics_port_with_serve_workers(tmp_path: Path) -> None:
    metrics_port = free_port()
    gw = Gateway(
        tmp_path,
        env={"LLMOPS_METRICS_PORT": str(metrics_port), "LLMOPS_METRICS_TOKEN": METRICS_TOKEN},
        extra_args=("--workers", "2"),
    )
    gw.start(timeout=40)
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        for i in range(6):
            response = httpx.post(f"{gw.url}/llm", json={"prompt": f"w{i}"}, headers=gw.headers())
            assert response.status_code == 200
        count = gw.settle()
        assert httpx.get(metrics_url).status_code == 401
        assert httpx.get(f"{gw.url}/metrics").status_code == 404
        samples = gw.metrics(url=metrics_url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert metric_sum(samples, "llmops_requests_total") == count  # the sum over both workers
    finally:
        assert gw.stop() == 0


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="tests/run.sh installs prometheus")
def test_prometheus_scrapes_with_the_documented_authorization_config(
    separate: tuple[Gateway, str], tmp_path: Path
) -> None:
    """The README's scrape config, run by a real Prometheus: with the token `up`, without it 401."""
    gw, metrics_url = separate
    target = metrics_url.removeprefix("http://")
    token_file = tmp_path / "llmops_metrics_token"
    token_file.write_text(METRICS_TOKEN + "\n")
    token_file.chmod(0o600)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: llmops
    authorization:
      type: Bearer
      credentials_file: {token_file}
    static_configs:
      - targets: ["{target}"]
  - job_name: llmops-without-token
    static_configs:
      - targets: ["{target}"]
"""
    )
    port = free_port()
    prometheus = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    try:
        deadline = time.monotonic() + 60
        health: dict[str, tuple[str, str]] = {}
        while time.monotonic() < deadline:
            try:
                targets = httpx.get(f"http://127.0.0.1:{port}/api/v1/targets", timeout=2).json()["data"]
                health = {t["labels"]["job"]: (t["health"], t["lastError"]) for t in targets["activeTargets"]}
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            if len(health) == 2 and all(state != "unknown" for state, _ in health.values()):
                break
            time.sleep(0.5)
        assert health["llmops"] == ("up", ""), health
        assert health["llmops-without-token"][0] == "down"
        assert "401" in health["llmops-without-token"][1]
        assert (
            "llmops_"
            in httpx.get(f"{metrics_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
        )
        assert gw.process is not None and gw.process.poll() is None
    finally:
        prometheus.terminate()
        prometheus.wait(30)


def test_short_metrics_token_is_refused(tmp_path: Path) -> None:
    result = run_cli(
        "serve", "--port", str(free_port()), cwd=tmp_path,
        env={"JWT_SECRET": TEST_SECRET, "LLMOPS_METRICS_TOKEN": "short"}, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert "LLMOPS_METRICS_TOKEN is shorter than 16 characters" in result.stderr
