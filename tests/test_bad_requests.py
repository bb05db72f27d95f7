"""Whatever clients send: a 4xx with a JSON error, never a 5xx, and metric labels that stay bounded."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from tests.harness import Gateway, metric_sum


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"", 400, "not valid JSON"),
        (b"null", 400, "JSON object"),
        (b'"a string"', 400, "JSON object"),
        (b"\xff\xfe{}", 400, "not valid JSON"),
        (b'{"prompt": "\\ud800"}', 400, "not valid JSON"),  # a lone surrogate
        (b'{"prompt": null}', 400, "`prompt` is required"),
        (b'{"prompt": ["a", "b"]}', 400, "`prompt` is required"),
        (b'{"model": "echo"}', 400, "`prompt` is required"),
        (b'{"prompt": "\\n\\t "}', 400, "must not be empty"),
        (b'{"prompt": "hi", "model": 5}', 400, "`model` must be a string"),
        (b'{"prompt": "hi", "model": ""}', 404, "configured models: echo, echo-flaky, echo-slow"),
        (b'{"prompt": "hi", "max_tokens": 1.5}', 400, "must be an integer"),
        (b'{"prompt": "hi", "max_tokens": true}', 400, "must be an integer"),
        (b'{"prompt": "hi", "max_tokens": -1}', 400, "between 1 and 32768"),
        (b'{"prompt": "hi", "max_tokens": 1e400}', 400, "not valid JSON"),
        (b'{"prompt": "hi", "max_tokens": 99999999999999999999999999}', 400, "`max_tokens`"),
    ],
)
def test_bad_bodies_are_4xx_json_errors(gateway: Gateway, body: bytes, status: int, needle: str) -> None:
    rid = f"bad-{uuid.uuid4().hex}"
    response = httpx.post(
        f"{gateway.url}/llm",
        content=body,
        headers=gateway.headers("bad-input", **{"content-type": "application/json", "x-request-id": rid}),
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert needle in error["message"], error
    assert error["type"] in ("invalid_request_error", "model_not_found")
    row = gateway.row_for(rid)
    assert (row["status"], row["http_status"], row["tokens"]) == ("rejected", status, 0)


def test_chunked_body_without_length_is_cut_at_the_limit(tmp_path: Path) -> None:
    gw = Gateway(tmp_path / "gw", env={"LLMOPS_MAX_BODY_BYTES": "4096"}).start()
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"prompt": "'
        for _ in range(64):
            sent += 1024
            yield b"a" * 1024
        yield b'"}'

    try:
        response = httpx.post(
            f"{gw.url}/llm", content=chunks(), headers=gw.headers("chunked", **{"x-request-id": "chunky"})
        )
        assert "content-length" not in response.request.headers
        assert response.request.headers["transfer-encoding"] == "chunked"
        assert response.status_code == 413
        assert response.json()["error"] == {
            "type": "invalid_request_error",
            "message": "request body is larger than 4096 bytes",
        }
        row = gw.row_for("chunky")
        assert (row["status"], row["http_status"]) == ("rejected", 413)
        # Under the limit, the same chunked upload is answered.
        small = httpx.post(
            f"{gw.url}/llm", content=iter([b'{"prompt": ', b'"two words"}']), headers=gw.headers("chunked")
        )
        assert small.status_code == 200 and small.json()["response"] == "two words"
    finally:
        gw.stop()


def test_metric_labels_stay_bounded(tmp_path: Path) -> None:
    gw = Gateway(tmp_path / "gw", env={"LLMOPS_METRICS_MAX_USERS": "3"}).start()
    try:
        series_before = {key for key in gw.metrics() if not key[0].endswith("_created")}
        with httpx.Client(base_url=gw.url) as client:
            for _ in range(40):
                # Unknown paths and methods: 404/405, no metric series of their own.
                assert client.get(f"/random/{uuid.uuid4().hex}").status_code == 404
                assert client.delete("/llm").status_code == 405
            assert len({key for key in gw.metrics() if not key[0].endswith("_created")}) == len(series_before)
            for i in range(40):
                response = client.post(
                    "/llm",
                    json={"prompt": "x", "model": f"made-up-{i}"},
                    headers=gw.headers(f"user-{i}"),
                )
                assert response.status_code == 404
        samples = gw.metrics()
        labels = [dict(key[1]) for key in samples if key[0] == "llmops_requests_total"]
        assert {label["model"] for label in labels} == {"echo", "echo-flaky", "echo-slow", "other"}
        assert {label["user"] for label in labels} == {"user-0", "user-1", "user-2", "other"}
        assert {label["endpoint"] for label in labels} == {"/llm", "/v1/chat/completions"}
        assert metric_sum(samples, "llmops_requests_total", model="other", status="rejected") == 40
        assert metric_sum(samples, "llmops_requests_total", user="other") == 37
        duration_models = {
            dict(key[1])["model"] for key in samples if key[0] == "llmops_request_duration_seconds_count"
        }
        assert duration_models == {"echo", "echo-flaky", "echo-slow", "other"}
        # The rows keep what was asked for.
        gw.settle()
        assert {row["requested_model"] for row in gw.rows("WHERE status = 'rejected'")} == {
            f"made-up-{i}" for i in range(40)
        }
    finally:
        gw.stop()


# -- Schemathesis against the live gateway's OpenAPI description ----------------------------------


WEBHOOK_TOKEN = "webhook-token-" + "w" * 40


@pytest.fixture(scope="module")
def fuzzed_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway with every route on, the alerts webhook included."""
    gw = Gateway(tmp_path_factory.mktemp("fuzz"), env={"LLMOPS_ALERTS_WEBHOOK_TOKEN": WEBHOOK_TOKEN}).start()
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def live_schema(fuzzed_gateway: Gateway) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzzed_gateway.url}/openapi.json")


api = schemathesis.pytest.from_fixture("live_schema")


@api.parametrize()
@settings(max_examples=80, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_openapi_fuzzing_finds_no_server_error(case: schemathesis.Case, fuzzed_gateway: Gateway) -> None:
    # Every default check runs (not_a_server_error, status-code, content-type, response-schema and
    # negative-data conformance) but positive_data_acceptance: the schema cannot say which models are
    # configured or each one's max_tokens, so some schema-valid bodies are rightly refused with a 4xx.
    # The alerts webhook has a bearer of its own.
    bearer = WEBHOOK_TOKEN if case.path == "/alerts/webhook" else fuzzed_gateway.token("fuzzer")
    case.call_and_validate(
        base_url=fuzzed_gateway.url,
        headers={"Authorization": f"Bearer {bearer}"},
        excluded_checks=[positive_data_acceptance],
    )
