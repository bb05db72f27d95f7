"""Limits and budgets: the arithmetic, the shared SQLite limiter, and a real gateway under bursts."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
import pytest

from server.errors import ConfigError
from server.limits import (
    Estimate,
    LimitExceeded,
    PrincipalState,
    SqliteLimiter,
    admit,
    seconds_to_midnight,
    settle,
)
from server.limits_config import Limits, LimitsPolicy, load_policy
from server.providers.base import estimate_tokens
from server.usage.store import open_usage_db
from tests.harness import Gateway, metric_sum

ECHO_PRICED = {
    "default_model": "echo",
    "models": [
        {"name": "echo", "provider": "echo", "input_price_per_mtok": 0.5, "output_price_per_mtok": 1.5},
        {"name": "broken", "provider": "echo", "failure_rate": 1.0, "retries": 0},
        # Holds its reservation long enough for a whole burst to arrive before any call settles.
        {"name": "held", "provider": "echo", "latency_ms": 400},
    ],
}


def models_file(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "models.json"
    path.write_text(json.dumps(ECHO_PRICED))
    return path


async def burst(
    url: str, headers: dict[str, str], bodies: Sequence[Mapping[str, object]]
) -> list[httpx.Response]:
    """Every body at once, each on its own connection."""
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:
        return list(await asyncio.gather(*(client.post("/llm", json=body) for body in bodies)))


# -- policy ---------------------------------------------------------------------------------------


def test_limits_file_overrides_defaults_per_principal(tmp_path: Path) -> None:
    limits_file = tmp_path / "limits.toml"
    limits_file.write_text(
        "[default]\ntpm = 1000\n\n"
        '[principals.alice]\nrpm = 600\n\n[principals."batch-job"]\nrpm = 0\ndaily_usd = 2.5\n'
    )
    policy = load_policy(Limits(rpm=60, daily_tokens=0), limits_file)
    assert policy.for_principal("someone") == Limits(rpm=60, tpm=1000)
    assert policy.for_principal("alice") == Limits(rpm=600, tpm=1000)
    # 0 in a file means unlimited, overriding the default.
    assert policy.for_principal("batch-job") == Limits(tpm=1000, daily_usd=2.5)

    json_file = tmp_path / "limits.json"
    json_file.write_text(json.dumps({"principals": {"bob": {"daily_tokens": 5000}}}))
    assert load_policy(Limits(), json_file).for_principal("bob") == Limits(daily_tokens=5000)
    assert load_policy(Limits(), json_file).for_principal("carol").unlimited
    assert LimitsPolicy(Limits(rpm=0, tpm=0)).unlimited


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"principals": {"a": {"rpn": 5}}}', "rpn"),
        ('{"principals": {"a": {"rpm": -1}}}', "rpm"),
        ("{not json", "invalid limits file"),
    ],
)
def test_bad_limits_file_is_a_config_error(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "limits.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=needle):
        load_policy(Limits(), path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_policy(Limits(), tmp_path / "missing.json")


# -- arithmetic -----------------------------------------------------------------------------------


def test_rpm_bucket_admits_the_limit_then_refills_at_limit_per_minute() -> None:
    limits, state, now = Limits(rpm=6), PrincipalState(updated=1000.0), 1000.0
    for _ in range(6):
        admit(state, limits, "p", Estimate(1, 0.0), now)
    with pytest.raises(LimitExceeded) as refused:
        admit(state, limits, "p", Estimate(1, 0.0), now)
    assert refused.value.limit == "rpm" and refused.value.retry_after_s == pytest.approx(10.0)
    assert refused.value.headers() == {"Retry-After": "10"}
    assert state.requests == 6  # a refusal changes nothing
    with pytest.raises(LimitExceeded):
        admit(state, limits, "p", Estimate(1, 0.0), now + 9.9)
    admit(state, limits, "p", Estimate(1, 0.0), now + 10.0)  # one slot leaked back after 60/6 s


def test_tpm_reserves_the_estimate_and_settles_to_the_real_count() -> None:
    limits, state, now = Limits(tpm=100), PrincipalState(updated=1000.0), 1000.0
    first = admit(state, limits, "p", Estimate(41, 0.0), now)
    admit(state, limits, "p", Estimate(41, 0.0), now)
    with pytest.raises(LimitExceeded) as refused:
        admit(state, limits, "p", Estimate(41, 0.0), now)
    assert refused.value.limit == "tpm"
    assert refused.value.retry_after_s == pytest.approx((82 + 41 - 100) * 60 / 100)
    settle(state, limits, first, 5, None, now)  # the call used 5 of its 41
    assert state.tokens == pytest.approx(46, abs=0.1)
    with pytest.raises(LimitExceeded, match="more than the limit of 100 tokens per minute"):
        admit(state, limits, "p", Estimate(101, 0.0), now)


def test_daily_budgets_refuse_until_midnight_utc() -> None:
    now = 1_767_225_600.0 + 3600  # 2026-01-01T01:00:00Z
    limits = Limits(daily_tokens=100, daily_usd=1.0)
    state = PrincipalState(updated=now)
    reservation = admit(state, limits, "p", Estimate(60, 0.5), now)
    with pytest.raises(LimitExceeded) as refused:
        admit(state, limits, "p", Estimate(60, 0.1), now)
    assert refused.value.limit == "daily_tokens"
    assert refused.value.retry_after_s == pytest.approx(23 * 3600) == seconds_to_midnight(now)
    settle(state, limits, reservation, 30, 0.6, now)
    with pytest.raises(LimitExceeded) as over_spend:
        admit(state, limits, "p", Estimate(10, 0.5), now)
    assert over_spend.value.limit == "daily_usd"
    admit(state, limits, "p", Estimate(60, 0.5), now + 23 * 3600)  # a new day
    assert (state.day, state.day_tokens) == ("2026-01-02", 60)


# -- the shared limiter ---------------------------------------------------------------------------


def test_concurrent_reservations_cannot_overrun(tmp_path: Path) -> None:
    open_usage_db(tmp_path / "usage.db").close()
    limiter = SqliteLimiter(tmp_path / "limits.db", tmp_path / "usage.db", LimitsPolicy(Limits(rpm=13)))
    limiter.start()

    async def one() -> str:
        try:
            await limiter.reserve("burst", Estimate(10, 0.0))
        except LimitExceeded as exc:
            return exc.limit
        return "admitted"

    async def fifty() -> list[str]:
        return list(await asyncio.gather(*(one() for _ in range(50))))

    try:
        assert Counter(asyncio.run(fifty())) == {"admitted": 13, "rpm": 37}
    finally:
        limiter.close()


def test_unlimited_principal_skips_the_store(tmp_path: Path) -> None:
    open_usage_db(tmp_path / "usage.db").close()
    policy = LimitsPolicy(Limits(), {"capped": Limits(rpm=1)})
    limiter = SqliteLimiter(tmp_path / "limits.db", tmp_path / "usage.db", policy)
    limiter.start()
    try:
        assert asyncio.run(limiter.reserve("free", Estimate(10**9, 10.0))) is None
    finally:
        limiter.close()


# -- a real gateway -------------------------------------------------------------------------------


def test_burst_of_50_admits_exactly_the_limit(tmp_path: Path) -> None:
    gw = Gateway(
        tmp_path / "gw", env={"LLMOPS_LIMIT_RPM": "7", "LLMOPS_MODELS_FILE": str(models_file(tmp_path))}
    ).start()
    try:
        responses = asyncio.run(burst(gw.url, gw.headers("burst"), [{"prompt": f"x {i}"} for i in range(50)]))
        assert Counter(r.status_code for r in responses) == {200: 7, 429: 43}
        refused = [r for r in responses if r.status_code == 429]
        for response in refused:
            assert int(response.headers["retry-after"]) == 9  # 60 s / 7, rounded up
            assert response.json()["error"] == {
                "type": "rate_limit_exceeded",
                "message": "rate limit of 7 requests per minute reached",
            }
        gw.settle()
        rows = {r["request_id"]: r for r in gw.rows("WHERE user = 'burst'")}
        assert len(rows) == 50  # one row per call, the refused ones included
        for response in refused:
            row = rows[response.headers["x-request-id"]]
            assert (row["status"], row["http_status"], row["tokens"], row["model"]) == (
                "rejected",
                429,
                0,
                None,
            )
            assert row["error"].startswith("rate_limit_exceeded: ")
        samples = gw.metrics()
        assert metric_sum(samples, "llmops_rate_limited_total", limit="rpm") == 43
        assert metric_sum(samples, "llmops_rate_limited_total") == 43
        assert metric_sum(samples, "llmops_requests_total", user="burst", status="rejected") == 43
        assert metric_sum(samples, "llmops_requests_total", user="burst", status="ok") == 7
        # Other principals have buckets of their own.
        assert gw.settle() == 52
    finally:
        gw.stop()


def test_tokens_per_minute_settle_to_real_usage(tmp_path: Path) -> None:
    limits_file = tmp_path / "limits.json"
    limits_file.write_text(json.dumps({"principals": {"tpm-user": {"tpm": 100}}}))
    gw = Gateway(
        tmp_path / "gw",
        env={"LLMOPS_LIMITS_FILE": str(limits_file), "LLMOPS_MODELS_FILE": str(models_file(tmp_path))},
    ).start()
    try:
        body = {"prompt": "x y", "max_tokens": 40}
        assert estimate_tokens("x y") + 40 == 41  # so two fit in 100, three do not
        responses = asyncio.run(burst(gw.url, gw.headers("tpm-user"), [{**body, "model": "held"}] * 10))
        assert Counter(r.status_code for r in responses) == {200: 2, 429: 8}
        for response in responses:
            if response.status_code == 429:
                assert response.json()["error"]["message"].startswith("rate limit of 100 tokens per minute")
        # Each answered call used 4 tokens, not 41: the bucket holds 8 now, so sequential calls pass.
        with httpx.Client(base_url=gw.url, headers=gw.headers("tpm-user")) as client:
            assert [client.post("/llm", json=body).status_code for _ in range(5)] == [200] * 5
            # A call that failed upstream used nothing.
            assert client.post("/llm", json={**body, "model": "broken"}).status_code == 502
            assert client.post("/llm", json=body).status_code == 200
            assert (
                client.post("/llm", json={"prompt": "x", "max_tokens": 100}).json()["error"]["message"]
                == "this call reserves 101 tokens (prompt estimate + max_tokens), more than the limit of "
                "100 tokens per minute; lower max_tokens"
            )
        # A principal without an entry is unlimited.
        assert Counter(
            r.status_code for r in asyncio.run(burst(gw.url, gw.headers("free"), [body] * 10))
        ) == {200: 10}
        assert metric_sum(gw.metrics(), "llmops_rate_limited_total", limit="tpm") == 9
    finally:
        gw.stop()


def expected_admitted(budget: float, estimate: float, actual: float) -> int:
    """Calls admitted one after another when each reserves `estimate` and settles to `actual`."""
    spent, admitted = 0.0, 0
    while spent + estimate <= budget:
        spent, admitted = spent + actual, admitted + 1
    return admitted


@pytest.mark.parametrize("drop_limits_db", [False, True])
def test_daily_budgets_survive_a_restart(tmp_path: Path, drop_limits_db: bool) -> None:
    env = {
        "LLMOPS_BUDGET_DAILY_TOKENS": "40",
        "LLMOPS_BUDGET_DAILY_USD": "0.00005",
        "LLMOPS_MODELS_FILE": str(models_file(tmp_path)),
    }
    gw = Gateway(tmp_path / "gw", env=env).start()
    body = {"prompt": "a b", "max_tokens": 10}  # 4 tokens used, 1 + 10 reserved
    # Priced as echo: 2 prompt + 2 completion words used; 1 + 10 estimated.
    used_usd, reserved_usd = (2 * 0.5 + 2 * 1.5) / 1e6, (1 * 0.5 + 10 * 1.5) / 1e6
    by_tokens = expected_admitted(40, 11, 4)
    by_cost = expected_admitted(0.00005, reserved_usd, used_usd)
    assert (by_tokens, by_cost) == (8, 9)
    with httpx.Client(base_url=gw.url, headers=gw.headers("daily")) as client:
        statuses = [client.post("/llm", json=body).status_code for _ in range(10)]
    assert statuses == [200] * 8 + [429] * 2
    assert gw.stop() == 0
    if drop_limits_db:
        (gw.data_dir / "limits.db").unlink()
        for leftover in gw.data_dir.glob("limits.db-*"):
            leftover.unlink()

    gw.start()
    try:
        response = httpx.post(f"{gw.url}/llm", json=body, headers=gw.headers("daily"))
        assert response.status_code == 429
        message = response.json()["error"]["message"]
        assert message.startswith("daily budget of 40 tokens reached (32 used today")
        assert 0 < int(response.headers["retry-after"]) <= 86400
        # Budgets are per principal.
        assert httpx.post(f"{gw.url}/llm", json=body, headers=gw.headers("other")).status_code == 200
        assert metric_sum(gw.metrics(), "llmops_rate_limited_total", limit="daily_tokens") == 1
    finally:
        gw.stop()

    gw.env.pop("LLMOPS_BUDGET_DAILY_TOKENS")
    gw.start()
    try:
        with httpx.Client(base_url=gw.url, headers=gw.headers("daily")) as client:
            statuses = [client.post("/llm", json=body).status_code for _ in range(3)]
        assert statuses == [200, 429, 429]  # 9 calls' worth of spend in all, 8 already made
        refusal = httpx.post(f"{gw.url}/llm", json=body, headers=gw.headers("daily"))
        assert refusal.status_code == 429
        assert refusal.json()["error"]["message"].startswith(
            "daily budget of $0.00005 reached ($0.000036 spent today"
        )
        assert metric_sum(gw.metrics(), "llmops_rate_limited_total", limit="daily_usd") == 3
    finally:
        gw.stop()


def test_limits_hold_across_gateway_processes_sharing_a_data_dir(tmp_path: Path) -> None:
    env = {"LLMOPS_LIMIT_RPM": "11", "LLMOPS_MODELS_FILE": str(models_file(tmp_path))}
    first = Gateway(tmp_path / "gw", env=env).start()
    second = Gateway(tmp_path / "gw", env=env)
    second.data_dir = first.data_dir  # the same data directory, a port and a log of its own
    second.log_path = tmp_path / "second.out"
    second.start()
    try:
        bodies = [{"prompt": f"x {i}"} for i in range(25)]

        async def both(principal: str) -> list[httpx.Response]:
            a, b = await asyncio.gather(
                burst(first.url, first.headers(principal), bodies),
                burst(second.url, second.headers(principal), bodies),
            )
            return a + b

        # 50 at once, half to each process: one shared bucket admits 11.
        assert Counter(r.status_code for r in asyncio.run(both("together"))) == {200: 11, 429: 39}
        # What one process admitted, the other sees.
        assert Counter(
            r.status_code for r in asyncio.run(burst(first.url, first.headers("one-then-other"), bodies[:8]))
        ) == {200: 8}
        assert Counter(
            r.status_code for r in asyncio.run(burst(second.url, second.headers("one-then-other"), bodies))
        ) == {200: 3, 429: 22}
    finally:
        second.stop()
        first.stop()


def test_chat_completions_plain_and_streamed_share_the_limits(tmp_path: Path) -> None:
    limits_file = tmp_path / "limits.json"
    limits_file.write_text(json.dumps({"principals": {"tpm-user": {"rpm": 0, "tpm": 100}}}))
    gw = Gateway(
        tmp_path / "gw",
        env={
            "LLMOPS_LIMIT_RPM": "6",
            "LLMOPS_LIMITS_FILE": str(limits_file),
            "LLMOPS_MODELS_FILE": str(models_file(tmp_path)),
        },
    ).start()

    def chat(stream: bool, max_tokens: int = 5, model: str = "echo") -> dict[str, object]:
        return {
            "model": model,
            "messages": [{"role": "user", "content": "x y"}],
            "stream": stream,
            "max_tokens": max_tokens,
        }

    async def mixed_burst(principal: str, bodies: list[dict[str, object]]) -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=gw.url, headers=gw.headers(principal), limits=limits, timeout=30
        ) as client:
            return list(await asyncio.gather(*(client.post("/v1/chat/completions", json=b) for b in bodies)))

    try:
        responses = asyncio.run(mixed_burst("chat-burst", [chat(i % 2 == 0) for i in range(20)]))
        assert Counter(r.status_code for r in responses) == {200: 6, 429: 14}
        for response in responses:
            if response.status_code == 429:
                assert response.headers["content-type"] == "application/json"
                assert response.json()["error"]["type"] == "rate_limit_exceeded"
                assert int(response.headers["retry-after"]) == 10
            elif response.headers["content-type"].startswith("text/event-stream"):
                assert response.text.endswith("data: [DONE]\n\n")
        gw.settle()
        rows = gw.rows("WHERE user = 'chat-burst'")
        assert Counter((r["status"], r["http_status"]) for r in rows) == {
            ("ok", 200): 6,
            ("rejected", 429): 14,
        }
        assert all(r["endpoint"] == "/v1/chat/completions" for r in rows)

        # Streamed calls settle to their real usage too: each reserves 41 tokens and uses 4.
        streamed = asyncio.run(mixed_burst("tpm-user", [chat(True, 40, "held")] * 5))
        assert Counter(r.status_code for r in streamed) == {200: 2, 429: 3}
        with httpx.Client(base_url=gw.url, headers=gw.headers("tpm-user"), timeout=30) as client:
            for _ in range(4):
                response = client.post("/v1/chat/completions", json=chat(True, 40))
                assert response.status_code == 200 and response.text.endswith("data: [DONE]\n\n")
        samples = gw.metrics()
        assert metric_sum(samples, "llmops_rate_limited_total", limit="rpm") == 14
        assert metric_sum(samples, "llmops_rate_limited_total", limit="tpm") == 3
    finally:
        gw.stop()


def test_limits_hold_across_serve_workers(tmp_path: Path) -> None:
    gw = Gateway(
        tmp_path,
        env={"LLMOPS_LIMIT_RPM": "9", "LLMOPS_MODELS_FILE": str(models_file(tmp_path))},
        extra_args=("--workers", "2"),
    ).start(timeout=60)
    try:
        responses = asyncio.run(
            burst(gw.url, gw.headers("workers"), [{"prompt": f"x {i}"} for i in range(50)])
        )
        assert Counter(r.status_code for r in responses) == {200: 9, 429: 41}
        assert metric_sum(gw.metrics(), "llmops_rate_limited_total", limit="rpm") == 41  # summed over workers
        gw.settle()
        assert len(gw.rows("WHERE user = 'workers'")) == 50
    finally:
        assert gw.stop() == 0
