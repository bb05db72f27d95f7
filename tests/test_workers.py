"""Several worker processes on one port: one usage log, metrics summed across workers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from tests.harness import Gateway, metric_sum


def test_metrics_are_summed_across_workers_and_equal_rows(tmp_path: Path) -> None:
    gw = Gateway(tmp_path, extra_args=("--workers", "2")).start(timeout=30)
    try:
        for i in range(40):  # a new connection each time, so both workers take calls
            response = httpx.post(
                f"{gw.url}/llm",
                json={"prompt": f"call {i}", "model": "echo"},
                headers=gw.headers(f"user-{i % 3}"),
            )
            assert response.status_code == 200
        count = gw.settle()
        scrapes = []
        for _ in range(6):
            response = httpx.get(f"{gw.url}/metrics")
            assert response.status_code == 200 and not response.history  # answered directly, no redirect
            scrapes.append(gw.metrics())
        totals = {metric_sum(s, "llmops_requests_total") for s in scrapes}
        assert totals == {count}
        tokens = {metric_sum(s, "llmops_tokens_total", type="prompt") for s in scrapes}
        assert tokens == {sum(r["prompt_tokens"] for r in gw.rows())}
        assert {metric_sum(s, "llmops_in_flight_requests") for s in scrapes} == {0}
        children = subprocess.run(["pgrep", "-P", str(gw.process.pid)], capture_output=True, text=True).stdout
        assert len(children.split()) >= 2
    finally:
        assert gw.stop() == 0
    assert len(gw.rows()) == count
