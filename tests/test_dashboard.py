"""The Grafana files: every dashboard query names real metrics, parses, and has data.

The live tests run a real gateway (`llmops serve`), real traffic (`llmops simulate` over the
built-in models, echo-flaky included, plus refused tokens and streams) and a real Prometheus
scraping it; then every PromQL expression of the dashboard, with Grafana's variables filled in,
must return at least one finite value over a short and over a long range.
"""

from __future__ import annotations

import importlib
import json
import math
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from stack.alerting import AlertRuleSettings, render_rules
from tests.harness import Gateway, run_cli
from tests.local_monitoring import Prometheus, run_prometheus, wait_until

REPO = Path(__file__).resolve().parents[1]
GRAFANA = REPO / "stack" / "config" / "grafana"
OVERVIEW = GRAFANA / "dashboards" / "llmops_overview.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "llmops.yml"
DASHBOARD_PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "llmops.yml"
PROMPTS = GRAFANA / "usage_sqlite" / "dashboards" / "llmops_recent_prompts.json"
PROMPTS_DATASOURCE = GRAFANA / "usage_sqlite" / "datasources" / "llmops_usage.yml"

# The exact names the gateway exports (notes/CONTEXT.md); histograms with their sample suffixes.
EXPORTED_METRICS = {
    "llmops_requests_total",
    *(f"llmops_request_duration_seconds{s}" for s in ("_bucket", "_sum", "_count")),
    "llmops_tokens_total",
    "llmops_fallbacks_total",
    "llmops_cost_usd_total",
    "llmops_cost_unknown_total",
    "llmops_upstream_errors_total",
    "llmops_in_flight_requests",
    *(f"llmops_time_to_first_token_seconds{s}" for s in ("_bucket", "_sum", "_count")),
    "llmops_auth_failures_total",
    "llmops_usage_write_errors_total",
    *(f"gen_ai_client_operation_duration_seconds{s}" for s in ("_bucket", "_sum", "_count")),
    *(f"gen_ai_client_token_usage{s}" for s in ("_bucket", "_sum", "_count")),
    *(f"gen_ai_client_operation_time_to_first_chunk_seconds{s}" for s in ("_bucket", "_sum", "_count")),
}
METRIC_NAME = re.compile(r"\b(?:llmops|gen_ai)_[a-z0-9_]+\b")
# What in PromQL can hold a label name: strings, {matchers}, and by/without/on/ignoring/group_x (...).
NOT_METRICS = re.compile(r'"[^"]*"|\{[^}]*\}|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)')
RANGE_SELECTOR = re.compile(r"\[([^\]]+)\]")

# Prometheus in these tests scrapes every second; Grafana's $__rate_interval is
# max($__interval + scrape interval, 4 * scrape interval).
TEST_SCRAPE_SECONDS = 1


@dataclass(frozen=True)
class Query:
    panel: str
    ref: str
    expr: str

    def filled(self, step_s: int, range_s: int) -> str:
        """The expression as Grafana sends it, for a query with this step and time range."""
        rate_interval = max(step_s + TEST_SCRAPE_SECONDS, 4 * TEST_SCRAPE_SECONDS)
        return (
            self.expr.replace("$__rate_interval", f"{rate_interval}s")
            .replace("$__range", f"{range_s}s")
            .replace("$__interval", f"{step_s}s")
        )


def metric_names(promql: str) -> set[str]:
    """The llmops_/gen_ai_ metric names an expression reads (label names left out)."""
    return set(METRIC_NAME.findall(NOT_METRICS.sub(" ", promql)))


def load_json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included, rows themselves excluded."""
    found = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def prometheus_queries() -> list[Query]:
    return [
        Query(panel["title"], target["refId"], target["expr"])
        for panel in panels(load_json(OVERVIEW))
        for target in panel["targets"]
    ]


QUERIES = prometheus_queries()


def query_id(query: Query) -> str:
    return f"{query.panel}/{query.ref}"


# --- static checks -----------------------------------------------------------------------------


def test_overview_has_every_required_panel() -> None:
    titles = {panel["title"] for panel in panels(load_json(OVERVIEW))}
    for required in (
        "Request rate by user",
        "Request rate by model",
        "Request latency p50 / p95 / p99",
        "Error %",
        "Fallback %",
        "Tokens / s by model",
        "Cost by model (USD / hour)",
        "Time to first token p50 / p95 by model",
        "In-flight requests",
        "Firing alerts",
    ):
        assert required in titles
    latency = next(p for p in panels(load_json(OVERVIEW)) if p["title"] == "Request latency p50 / p95 / p99")
    assert [t["expr"].split(",")[0] for t in latency["targets"]] == [
        "histogram_quantile(0.5",
        "histogram_quantile(0.95",
        "histogram_quantile(0.99",
    ]


def test_every_metric_in_the_dashboard_and_rules_is_one_the_gateway_exports() -> None:
    rules = render_rules(AlertRuleSettings(_env_file=None))  # type: ignore[call-arg]
    used = {name for query in QUERIES for name in metric_names(query.expr)}
    rule_exprs = [rule["expr"] for group in yaml.safe_load(rules)["groups"] for rule in group["rules"]]
    used_by_rules = {name for expr in rule_exprs for name in metric_names(expr)}
    assert len(used_by_rules) >= 7
    assert used - EXPORTED_METRICS == set()
    assert used_by_rules - EXPORTED_METRICS == set()
    # The dashboard shows every llmops_ metric family (gen_ai_ token/chunk histograms are for OTel users).
    family = re.compile(r"_(bucket|sum|count)$")
    exported_families = {family.sub("", n) for n in EXPORTED_METRICS if n.startswith("llmops_")}
    assert exported_families - {family.sub("", n) for n in used} == set()


def test_every_range_uses_a_grafana_interval_variable() -> None:
    for query in QUERIES:
        for selector in RANGE_SELECTOR.findall(query.expr):
            assert selector in ("$__rate_interval", "$__range"), (query.panel, selector)


def test_every_panel_uses_the_provisioned_prometheus_datasource() -> None:
    (prometheus,) = [
        ds for ds in yaml.safe_load(DATASOURCES.read_text())["datasources"] if ds["type"] == "prometheus"
    ]
    for panel in panels(load_json(OVERVIEW)):
        assert panel["datasource"] == {"type": "prometheus", "uid": prometheus["uid"]}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == prometheus["uid"]


def test_panel_ids_are_unique_and_panels_fit_the_grid() -> None:
    dashboard = load_json(OVERVIEW)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine
    assert dashboard["uid"] == "llmops-overview"


def test_datasource_scrape_interval_matches_prometheus_config() -> None:
    (prometheus,) = [
        ds for ds in yaml.safe_load(DATASOURCES.read_text())["datasources"] if ds["type"] == "prometheus"
    ]
    assert prometheus["jsonData"]["timeInterval"] == "5s"
    assert prometheus["url"] == "${LLMOPS_PROMETHEUS_URL}"
    if not (REPO / "stack" / "config.py").exists():
        pytest.skip("stack/config.py (the stack's settings) is not on this branch yet")
    # Imported by name: until the stack's modules land, `stack.config` is only the config/ folder.
    stack_config = importlib.import_module("stack.config")
    stack_files = importlib.import_module("stack.files")
    config = stack_config.StackConfig(data_dir=Path("/nonexistent"))
    rendered = yaml.safe_load(stack_files.render_prometheus_config(config))
    assert rendered["global"]["scrape_interval"] == prometheus["jsonData"]["timeInterval"]


def test_dashboard_provider_reads_the_directory_the_stack_mounts() -> None:
    (provider,) = yaml.safe_load(DASHBOARD_PROVIDERS.read_text())["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    assert provider["type"] == "file"


def test_recent_prompts_dashboard_uses_the_read_only_sqlite_datasource() -> None:
    (datasource,) = yaml.safe_load(PROMPTS_DATASOURCE.read_text())["datasources"]
    assert datasource["type"] == "frser-sqlite-datasource"
    assert datasource["jsonData"]["pathOptions"] == "mode=ro"
    (panel,) = panels(load_json(PROMPTS))
    assert panel["datasource"] == {"type": "frser-sqlite-datasource", "uid": datasource["uid"]}
    (target,) = panel["targets"]
    assert target["queryText"] == target["rawQueryText"]
    assert target["timeColumns"] == ["time"]


def test_every_query_parses_in_real_prometheus(tmp_path: Path) -> None:
    """Syntax only (no data needed): Prometheus answers each filled-in query with success."""
    with run_prometheus(tmp_path, ["127.0.0.1:9"]) as prometheus:
        for query in QUERIES:
            response = httpx.post(
                f"{prometheus.url}/api/v1/query", data={"query": query.filled(15, 3600)}, timeout=10
            )
            assert response.status_code == 200, (query_id(query), response.text)
            assert response.json()["status"] == "success"


# --- live: real gateway, real traffic, real Prometheus ----------------------------------------------

# The built-in echo models, plus one without a price so "requests without a known price" has data.
MODELS = {
    "default_model": "echo",
    "models": [
        {
            "name": "echo",
            "latency_ms": 15,
            "latency_jitter_ms": 10,
            "input_price_per_mtok": 0.5,
            "output_price_per_mtok": 1.5,
        },
        {
            "name": "echo-flaky",
            "latency_ms": 25,
            "latency_jitter_ms": 20,
            "failure_rate": 0.3,
            "seed": 42,
            "retries": 0,
            "fallbacks": ["echo"],
            "input_price_per_mtok": 1.0,
            "output_price_per_mtok": 3.0,
        },
        {
            "name": "echo-slow",
            "latency_ms": 400,
            "latency_jitter_ms": 300,
            "input_price_per_mtok": 2.0,
            "output_price_per_mtok": 6.0,
        },
        {"name": "echo-unpriced", "latency_ms": 5},
    ],
}
SIMULATED_CALLS = 60
STREAMED_CALLS = 4


@dataclass
class LiveStack:
    gateway: Gateway
    prometheus: Prometheus


def send_streams(gateway: Gateway, count: int) -> None:
    """Streamed chat completions, for the time-to-first-token panels."""
    for i in range(count):
        with httpx.stream(
            "POST",
            f"{gateway.url}/v1/chat/completions",
            json={"model": "echo", "stream": True, "messages": [{"role": "user", "content": f"stream {i}"}]},
            headers=gateway.headers("streamer"),
            timeout=30,
        ) as response:
            assert response.status_code == 200, response.read()
            assert any(line.startswith("data: ") for line in response.iter_lines())
        time.sleep(0.3)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    workdir = tmp_path_factory.mktemp("live")
    gateway = Gateway(workdir / "gateway", env={"LLMOPS_MODELS": json.dumps(MODELS)}).start()
    # A low fallback threshold so echo-flaky fires an alert: the "Firing alerts" panel needs one.
    rules = render_rules(
        AlertRuleSettings(  # type: ignore[call-arg]
            _env_file=None,
            # 5m: the alert stays firing while the tests below query it.
            rate_window="5m",
            fallback_ratio=0.01,
            fallback_ratio_for="0s",
            min_request_rate=0.01,
        )
    )
    try:
        with run_prometheus(
            workdir / "prometheus",
            [f"127.0.0.1:{gateway.port}"],
            rules=rules,
            scrape_interval=f"{TEST_SCRAPE_SECONDS}s",
        ) as prometheus:
            wait_until(lambda: prometheus.query('up{job="llmops"} == 1'), 30, what="a first scrape")
            result = run_cli(
                "simulate",
                "--count",
                str(SIMULATED_CALLS),
                "--concurrency",
                "4",
                "--url",
                gateway.url,
                cwd=workdir,
                env={"JWT_SECRET": gateway.secret, "LLMOPS_MODELS": json.dumps(MODELS)},
            )
            assert result.returncode == 0, result.stdout + result.stderr
            for _ in range(3):
                refused = httpx.post(
                    f"{gateway.url}/llm", json={"prompt": "x"}, headers={"Authorization": "Bearer not-a-jwt"}
                )
                assert refused.status_code == 401
            # The first stream creates the TTFT series (it is not exported before): the next ones,
            # scraped later, are what rate() sees.
            send_streams(gateway, 1)
            wait_until(
                lambda: prometheus.query("llmops_time_to_first_token_seconds_count"), 30, what="a TTFT series"
            )
            send_streams(gateway, STREAMED_CALLS)
            wait_until(
                lambda: prometheus.query(f"sum(llmops_requests_total) >= {SIMULATED_CALLS}"),
                30,
                what="Prometheus to scrape the simulated traffic",
            )
            wait_until(lambda: prometheus.query('ALERTS{alertstate="firing"}'), 30, what="a firing alert")
            time.sleep(3 * TEST_SCRAPE_SECONDS)  # a few more scrapes, so every rate() has two samples
            yield LiveStack(gateway, prometheus)
    finally:
        gateway.stop()


def has_finite_value(result: list[dict[str, Any]]) -> bool:
    return any(not math.isnan(float(value)) for series in result for _, value in series["values"])


@pytest.mark.parametrize("query", QUERIES, ids=query_id)
def test_dashboard_query_has_data_over_a_short_and_a_long_range(live: LiveStack, query: Query) -> None:
    now = time.time()
    for range_s, step_s in ((60, 1), (3600, 60)):
        expr = query.filled(step_s, range_s)
        result = live.prometheus.query_range(expr, now - range_s, now, step_s)
        assert has_finite_value(result), f"{query_id(query)} has no data over {range_s}s: {expr}"


def test_every_dashboard_metric_is_on_the_live_metrics_page(live: LiveStack) -> None:
    text = httpx.get(f"{live.gateway.url}/metrics", timeout=10).text
    exported = {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}
    used = {name for query in QUERIES for name in metric_names(query.expr)}
    assert used - exported == set()


# --- the recent-prompts panel's SQL against a real usage log ---------------------------------------


def recent_prompts_sql(from_ms: int, to_ms: int) -> str:
    """The panel's SQL with Grafana's $__from / $__to (epoch milliseconds) filled in."""
    (panel,) = panels(load_json(PROMPTS))
    (target,) = panel["targets"]
    return str(target["rawQueryText"]).replace("$__from", str(from_ms)).replace("$__to", str(to_ms))


def run_recent_prompts(db_path: Path, from_ms: int, to_ms: int) -> list[dict[str, Any]]:
    # Read-only, as the datasource opens it.
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(recent_prompts_sql(from_ms, to_ms))]
    finally:
        conn.close()


def test_recent_prompts_sql_reads_the_real_usage_log(live: LiveStack) -> None:
    stored = live.gateway.rows()
    now_ms = int(time.time() * 1000)
    rows = run_recent_prompts(live.gateway.db_path, now_ms - 3_600_000, now_ms)
    assert len(rows) == min(len(stored), 200)
    assert [row["request_id"] for row in rows] == [row["request_id"] for row in reversed(stored)][:200]
    assert set(rows[0]) >= {"time", "user", "requested_model", "model", "status", "prompt", "response"}
    assert {row["requested_model"] for row in rows} >= {"echo", "echo-flaky", "echo-slow"}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", row["time"]) for row in rows)
    # A range that ended before the traffic shows nothing.
    assert run_recent_prompts(live.gateway.db_path, now_ms - 7_200_000, now_ms - 3_600_000) == []


@pytest.mark.parametrize("store_prompts", ["full", "hash", "none"])
def test_recent_prompts_show_only_what_the_privacy_setting_stores(tmp_path: Path, store_prompts: str) -> None:
    secret_prompt = f"my card number is 4111-{store_prompts}"
    gateway = Gateway(tmp_path / "gw", env={"LLMOPS_STORE_PROMPTS": store_prompts}).start()
    try:
        response = httpx.post(
            f"{gateway.url}/llm",
            json={"prompt": secret_prompt, "model": "echo"},
            headers=gateway.headers("privacy", **{"x-request-id": "privacy-1"}),
        )
        assert response.status_code == 200, response.text
        gateway.row_for("privacy-1")
        now_ms = int(time.time() * 1000)
        (row,) = [
            r
            for r in run_recent_prompts(gateway.db_path, now_ms - 60_000, now_ms)
            if r["request_id"] == "privacy-1"
        ]
    finally:
        gateway.stop()
    shown = json.dumps(row)
    if store_prompts == "full":
        assert row["prompt"] == secret_prompt
    else:
        assert "4111" not in shown
        if store_prompts == "hash":
            assert str(row["prompt"]).startswith("sha256:")
            assert str(row["response"]).startswith("sha256:")
        else:
            assert row["prompt"] is None and row["response"] is None
