"""POST /llm against a real gateway: answers, rows, metrics, errors."""

from __future__ import annotations

import random
import re

import httpx
import pytest

from server.models_config import BUILTIN_MODELS
from tests.harness import Gateway, metric_sum

MODELS = {m.name: m for m in BUILTIN_MODELS.models}


def test_answer_row_and_metrics_agree(gateway: Gateway) -> None:
    before = gateway.metrics()
    prompt = "the quick brown fox jumps"
    response = httpx.post(
        f"{gateway.url}/llm",
        json={"prompt": prompt, "model": "echo"},
        headers=gateway.headers("alice", **{"x-user-id": "customer-42", "x-request-id": "req-abc-1"}),
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-abc-1"
    body = response.json()
    assert body["id"] == "req-abc-1"
    assert body["model"] == "echo"
    assert body["response"] == prompt
    assert body["usage"] == {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}
    assert body["fallback"] is False
    assert body["latency_ms"] > 0

    row = gateway.row_for("req-abc-1")
    assert row["user"] == "alice"
    assert row["end_user"] == "customer-42"
    assert row["endpoint"] == "/llm"
    assert (row["requested_model"], row["model"], row["provider"]) == ("echo", "echo", "echo")
    assert (row["status"], row["http_status"], row["error"]) == ("ok", 200, None)
    assert (row["prompt_tokens"], row["completion_tokens"], row["tokens"]) == (5, 5, 10)
    echo = MODELS["echo"]
    assert row["cost_usd"] == pytest.approx(
        (5 * echo.input_price_per_mtok + 5 * echo.output_price_per_mtok) / 1e6
    )
    assert row["prompt"] == prompt and row["response"] == prompt
    assert (row["fallback"], row["stream"]) == (0, 0)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", row["ts"])
    assert row["latency_ms"] > 0

    after = gateway.metrics()
    key = {"endpoint": "/llm", "model": "echo", "status": "ok", "user": "alice"}
    assert (
        metric_sum(after, "llmops_requests_total", **key) - metric_sum(before, "llmops_requests_total", **key)
        == 1
    )
    assert (
        metric_sum(after, "llmops_tokens_total", model="echo", type="prompt")
        - metric_sum(before, "llmops_tokens_total", model="echo", type="prompt")
    ) == 5
    assert metric_sum(after, "llmops_in_flight_requests") == 0


def test_max_tokens_cuts_the_answer(gateway: Gateway) -> None:
    response = httpx.post(
        f"{gateway.url}/llm",
        json={"prompt": "one two three four", "max_tokens": 2},
        headers=gateway.headers(),
    )
    assert response.status_code == 200
    assert response.json()["response"] == "one two"
    assert response.json()["usage"] == {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}


def test_request_id_generated_when_absent_or_unsafe(gateway: Gateway) -> None:
    response = httpx.post(
        f"{gateway.url}/llm",
        json={"prompt": "hi"},
        headers=gateway.headers(**{"x-request-id": "bad id with spaces"}),
    )
    rid = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert response.json()["id"] == rid
    assert httpx.get(f"{gateway.url}/healthz").headers["x-request-id"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"prompt": 42}', 400, "`prompt`"),
        (b'{"prompt": "   "}', 400, "must not be empty"),
        (b'{"prompt": "hi", "model": "gpt-nope"}', 404, "echo, echo-flaky, echo-slow"),
        (b'{"prompt": "hi", "max_tokens": 0}', 400, "max_tokens"),
        (b'{"prompt": "hi", "max_tokens": 10000000000}', 400, "max_tokens"),
        (b'{"prompt": "hi", "max_tokens": "5"}', 400, "max_tokens"),
        (b'{"prompt": "' + b"a" * 1_100_000 + b'"}', 413, "larger than"),
    ],
)
def test_bad_bodies_are_4xx_with_one_rejected_row(
    gateway: Gateway, body: bytes, status: int, needle: str
) -> None:
    before = gateway.settle()
    response = httpx.post(
        f"{gateway.url}/llm",
        content=body,
        headers=gateway.headers("bad-input", **{"content-type": "application/json"}),
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert needle in error["message"] and error["type"]
    row = gateway.row_for(response.headers["x-request-id"])
    assert gateway.settle() == before + 2  # exactly one row for the bad call, one for the barrier
    assert (row["user"], row["status"], row["http_status"]) == ("bad-input", "rejected", status)
    assert row["model"] is None and row["tokens"] == 0


def test_seeded_flaky_model_falls_back_exactly_where_expected(fresh_gateway: Gateway) -> None:
    flaky = MODELS["echo-flaky"]
    draws = random.Random(flaky.seed)
    expected = [draws.random() < flaky.failure_rate for _ in range(20)]
    assert any(expected) and not all(expected)

    fallbacks = []
    with httpx.Client(base_url=fresh_gateway.url, headers=fresh_gateway.headers("flaky-user")) as client:
        for i in range(20):
            response = client.post("/llm", json={"prompt": f"call number {i}", "model": "echo-flaky"})
            assert response.status_code == 200
            body = response.json()
            fallbacks.append(body["fallback"])
            assert body["model"] == ("echo" if body["fallback"] else "echo-flaky")
    assert fallbacks == expected

    rows = fresh_gateway.wait_rows(20)
    assert [bool(r["fallback"]) for r in rows] == expected
    assert all(r["requested_model"] == "echo-flaky" for r in rows)
    echo = MODELS["echo"]
    for row in rows:  # a fallback is priced as the model that answered
        price = echo if row["fallback"] else flaky
        assert row["cost_usd"] == pytest.approx(
            (
                row["prompt_tokens"] * price.input_price_per_mtok
                + row["completion_tokens"] * price.output_price_per_mtok
            )
            / 1e6
        )
    samples = fresh_gateway.metrics()
    assert metric_sum(samples, "llmops_fallbacks_total", requested_model="echo-flaky", model="echo") == sum(
        expected
    )
    assert metric_sum(samples, "llmops_upstream_errors_total", model="echo-flaky") == sum(expected)
    assert metric_sum(samples, "llmops_requests_total") == len(rows) == 20


def test_series_for_configured_models_start_at_zero(fresh_gateway: Gateway) -> None:
    samples = fresh_gateway.metrics()
    for model in MODELS:
        key = (
            "llmops_requests_total",
            tuple(sorted({"endpoint": "/llm", "model": model, "status": "error", "user": "other"}.items())),
        )
        assert samples[key] == 0
    assert metric_sum(samples, "llmops_requests_total") == 0
    fallback_pair = ("llmops_fallbacks_total", (("model", "echo"), ("requested_model", "echo-flaky")))
    assert samples[fallback_pair] == 0
    for model in MODELS:
        assert samples[("llmops_time_to_first_token_seconds_count", (("model", model),))] == 0


def test_genai_histograms_use_semconv_names_and_buckets(gateway: Gateway) -> None:
    httpx.post(f"{gateway.url}/llm", json={"prompt": "a b c"}, headers=gateway.headers("genai"))
    samples = gateway.metrics()
    buckets = sorted(
        float(dict(labels)["le"])
        for (name, labels), _ in samples.items()
        if name == "gen_ai_client_operation_duration_seconds_bucket"
        and dict(labels)["gen_ai_request_model"] == "echo"
    )
    assert buckets[:3] == [0.01, 0.02, 0.04] and buckets[-2] == 81.92
    assert (
        metric_sum(
            samples, "gen_ai_client_token_usage_count", gen_ai_token_type="input", gen_ai_provider_name="echo"
        )
        >= 1
    )
    assert metric_sum(samples, "gen_ai_client_token_usage_sum", gen_ai_token_type="input") >= 3


def test_user_label_is_capped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    gw = Gateway(tmp_path / "gw", env={"LLMOPS_METRICS_MAX_USERS": "2"}).start()
    try:
        for user in ("u1", "u2", "u3", "u4"):
            assert (
                httpx.post(f"{gw.url}/llm", json={"prompt": "x"}, headers=gw.headers(user)).status_code == 200
            )
        samples = gw.metrics()
        users = {
            dict(labels)["user"]
            for (name, labels), value in samples.items()
            if name == "llmops_requests_total" and value > 0
        }
        assert users == {"u1", "u2", "other"}
        assert metric_sum(samples, "llmops_requests_total", user="other") == 2
    finally:
        gw.stop()


def test_openapi_describes_llm(gateway: Gateway) -> None:
    spec = httpx.get(f"{gateway.url}/openapi.json").json()
    operation = spec["paths"]["/llm"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["prompt"]
    assert set(schema["properties"]) == {"prompt", "model", "max_tokens"}
    assert "200" in operation["responses"] and "401" in operation["responses"]


def test_unknown_path_is_json_404(gateway: Gateway) -> None:
    response = httpx.get(f"{gateway.url}/nope")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"
