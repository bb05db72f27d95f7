"""/v1/chat/completions and /v1/models through the real openai SDK, against faulty upstreams."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.fake_upstream import Behaviour, FakeUpstream
from tests.harness import Gateway, metric_sum
from tests.openai_spec import assert_valid

UPSTREAM_KEY = "sk-upstream-secret-for-tests-only"


def models_config(upstream: FakeUpstream) -> dict[str, Any]:
    def openai_model(name: str, upstream_model: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "provider": "openai",
            "upstream_model": upstream_model,
            "base_url": upstream.openai_base_url,
            "api_key_env": "FAKE_UPSTREAM_KEY",
            "retries": 0,
            "input_price_per_mtok": 2.0,
            "output_price_per_mtok": 8.0,
            **extra,
        }

    return {
        "default_model": "echo",
        "models": [
            openai_model("gpt-fake", "up-main", fallbacks=["gpt-backup"], cached_input_price_per_mtok=1.0),
            openai_model("gpt-backup", "up-backup", input_price_per_mtok=1.0, output_price_per_mtok=2.0),
            openai_model("gpt-retry", "up-retry", retries=2, retry_backoff_s=0.01),
            openai_model("gpt-solo", "up-solo", first_byte_timeout_s=0.5, total_timeout_s=3),
            openai_model(
                "gpt-unpriced", "up-unpriced", input_price_per_mtok=None, output_price_per_mtok=None
            ),
            {
                "name": "llama",
                "provider": "ollama",
                "upstream_model": "llama3",
                "base_url": upstream.ollama_base_url,
                "retries": 0,
                "input_price_per_mtok": 0.1,
                "output_price_per_mtok": 0.2,
            },
            {"name": "echo", "provider": "echo", "input_price_per_mtok": 0.5, "output_price_per_mtok": 1.5},
            {"name": "echo-trickle", "provider": "echo", "stream_delay_ms": 200},
        ],
    }


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def gw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp("gw-openai")
    models_file = workdir / "models.json"
    models_file.write_text(json.dumps(models_config(upstream)))
    gateway = Gateway(
        workdir, env={"LLMOPS_MODELS_FILE": str(models_file), "FAKE_UPSTREAM_KEY": UPSTREAM_KEY}
    )
    gateway.start()
    yield gateway
    gateway.stop()


@pytest.fixture(autouse=True)
def fresh_scripts(upstream: FakeUpstream) -> None:
    upstream.scripts.clear()


def client(gw: Gateway, sub: str = "sdk-user", **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.token(sub), max_retries=0, **kwargs)


def async_client(gw: Gateway, sub: str = "sdk-user") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key=gw.token(sub), max_retries=0)


def cost(tokens_in: int, tokens_out: int, price_in: float, price_out: float) -> float:
    return (tokens_in * price_in + tokens_out * price_out) / 1e6


def raw_stream(gw: Gateway, body: dict[str, Any], sub: str = "raw") -> tuple[httpx.Response, list[Any]]:
    """POST a streamed call with httpx; every `data:` payload, parsed ([DONE] as a string)."""
    events: list[Any] = []
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/chat/completions",
        json={**body, "stream": True},
        headers=gw.headers(sub),
        timeout=30,
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                data = line[6:]
                events.append(data if data == "[DONE]" else json.loads(data))
    return response, events


# -- the API as the SDK sees it ---------------------------------------------------------------------


def test_sdk_plain_call_matches_openai_schema(gw: Gateway) -> None:
    with client(gw) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model="echo",
            messages=[
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "four words of text"},
            ],
        )
    completion = raw.parse()
    assert_valid("CreateChatCompletionResponse", json.loads(raw.http_response.text))
    assert completion.choices[0].message.content == "four words of text"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (6, 4)
    row = gw.row_for(raw.http_response.headers["x-request-id"])
    assert (row["endpoint"], row["user"], row["model"], row["stream"]) == (
        "/v1/chat/completions",
        "sdk-user",
        "echo",
        0,
    )
    assert (row["prompt_tokens"], row["completion_tokens"]) == (6, 4)


def test_sdk_async_stream_with_usage_matches_chunk_schema(gw: Gateway) -> None:
    async def run() -> tuple[list[Any], str]:
        async with async_client(gw) as sdk:
            raw = await sdk.chat.completions.with_raw_response.create(
                model="echo",
                messages=[{"role": "user", "content": "stream these five words"}],
                stream=True,
                stream_options={"include_usage": True},
                user="end-user-9",
            )
            chunks = [chunk async for chunk in raw.parse()]
            return chunks, raw.http_response.headers["x-request-id"]

    chunks, rid = asyncio.run(run())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "stream these five words"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 8
    assert len({c.id for c in chunks}) == 1
    row = gw.row_for(rid)
    assert (row["stream"], row["status"], row["end_user"], row["tokens"]) == (1, "ok", "end-user-9", 8)
    assert row["ttft_ms"] is not None and row["ttft_ms"] <= row["latency_ms"]


def test_raw_stream_chunks_validate_and_end_in_done(gw: Gateway) -> None:
    response, events = raw_stream(gw, {"model": "echo", "messages": [{"role": "user", "content": "a b c"}]})
    assert response.headers["content-type"].startswith("text/event-stream")
    assert events[-1] == "[DONE]"
    for event in events[:-1]:
        assert_valid("CreateChatCompletionStreamResponse", event)
    assert not any("usage" in e for e in events[:-1])  # not asked for


def test_models_list_matches_schema(gw: Gateway) -> None:
    response = httpx.get(f"{gw.url}/v1/models", headers=gw.headers())
    assert_valid("ListModelsResponse", response.json())
    assert [m["id"] for m in response.json()["data"]][:2] == ["gpt-fake", "gpt-backup"]
    assert httpx.get(f"{gw.url}/v1/models").status_code == 401


def test_errors_match_error_schema(gw: Gateway) -> None:
    response = httpx.post(
        f"{gw.url}/v1/chat/completions", json={"model": "nope", "messages": []}, headers=gw.headers()
    )
    assert response.status_code == 404
    assert_valid("ErrorResponse", {"error": {**response.json()["error"], "code": None, "param": None}})
    with client(gw) as sdk, pytest.raises(openai.NotFoundError, match="configured models: gpt-fake"):
        sdk.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"model": "echo", "messages": []}, "`messages`"),
        ({"model": "echo", "messages": [{"role": "wizard", "content": "x"}]}, "role"),
        ({"model": "echo", "messages": [{"role": "user", "content": 5}]}, "content"),
        ({"model": "echo", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "`stream`"),
        ({"model": "echo", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1}, "max_tokens"),
        ({"model": "echo", "messages": [{"role": "user", "content": "x"}], "temperature": 7}, "temperature"),
        ({"model": "echo", "messages": [{"role": "user", "content": "x"}], "n": 2}, "does not support n > 1"),
        (
            {
                "model": "echo",
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function"}],
            },
            "does not support tools",
        ),
        (
            {
                "model": "llama",
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function"}],
            },
            "ollama provider) does not support tools",
        ),
    ],
)
def test_bad_requests_are_400_with_one_row(gw: Gateway, body: dict[str, Any], needle: str) -> None:
    response = httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=gw.headers("bad"))
    assert response.status_code == 400
    assert needle in response.json()["error"]["message"]
    row = gw.row_for(response.headers["x-request-id"])
    assert (row["status"], row["http_status"]) == ("rejected", 400)


def test_content_parts_are_served(gw: Gateway) -> None:
    with client(gw) as sdk:
        completion = sdk.chat.completions.create(
            model="echo", messages=[{"role": "user", "content": [{"type": "text", "text": "parts work"}]}]
        )
    assert completion.choices[0].message.content == "parts work"


# -- the openai provider: pass-through and accounting -------------------------------------------------


def test_request_is_passed_on_untouched_with_the_key_from_env(gw: Gateway, upstream: FakeUpstream) -> None:
    upstream.script("up-main", Behaviour(text="tool time", prompt_tokens=20, completion_tokens=3))
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    with client(gw) as sdk:
        completion = sdk.chat.completions.create(
            model="gpt-fake",
            messages=[{"role": "user", "content": "hi"}],
            tools=tools,
            seed=7,
            temperature=0.2,
            response_format={"type": "json_object"},
            max_completion_tokens=50,
            stop=["\n"],
            extra_body={"custom_vendor_field": {"keep": True}},
        )
    assert completion.model == "gpt-fake" and completion.system_fingerprint == "fp_fake"
    sent = upstream.requests_for("up-main")[-1]
    assert sent.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert sent.body["tools"] == tools and sent.body["seed"] == 7 and sent.body["stop"] == ["\n"]
    assert sent.body["custom_vendor_field"] == {"keep": True}
    assert sent.body["max_completion_tokens"] == 50 and sent.body["stream"] is False
    assert UPSTREAM_KEY not in gw.log_path.read_text() + (gw.data_dir / "usage.db").read_bytes().decode(
        errors="ignore"
    )


@pytest.mark.parametrize("usage_shape", ["final_chunk", "separate_chunk"])
def test_streamed_usage_is_exact_whatever_chunk_carries_it(
    gw: Gateway, upstream: FakeUpstream, usage_shape: str
) -> None:
    upstream.script(
        "up-main",
        Behaviour(
            text="one two three",
            prompt_tokens=17,
            completion_tokens=3,
            cached_tokens=5,
            reasoning_tokens=2,
            usage=usage_shape,
        ),
    )
    response, events = raw_stream(gw, {"model": "gpt-fake", "messages": [{"role": "user", "content": "q"}]})
    assert events[-1] == "[DONE]"
    assert not any(e.get("usage") for e in events[:-1])  # the client did not ask for usage
    assert upstream.requests_for("up-main")[-1].body["stream_options"] == {"include_usage": True}
    row = gw.row_for(response.headers["x-request-id"])
    assert (row["prompt_tokens"], row["completion_tokens"], row["tokens_estimated"]) == (17, 3, 0)
    assert (row["cached_tokens"], row["reasoning_tokens"]) == (5, 2)
    assert row["cost_usd"] == pytest.approx(
        (12 * 2.0 + 5 * 1.0 + 3 * 8.0) / 1e6
    )  # cached tokens at their price
    assert row["response"] == "one two three"


def test_usage_passed_to_client_when_asked(gw: Gateway, upstream: FakeUpstream) -> None:
    upstream.script(
        "up-main", Behaviour(text="x y", prompt_tokens=9, completion_tokens=2, usage="separate_chunk")
    )
    with client(gw) as sdk:
        chunks = list(
            sdk.chat.completions.create(
                model="gpt-fake",
                messages=[{"role": "user", "content": "q"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 9


def test_missing_usage_is_estimated_and_flagged(gw: Gateway, upstream: FakeUpstream) -> None:
    upstream.script("up-main", Behaviour(text="abcdefgh", usage="none"))
    response, events = raw_stream(
        gw, {"model": "gpt-fake", "messages": [{"role": "user", "content": "12345678"}]}
    )
    assert events[-1] == "[DONE]"
    row = gw.row_for(response.headers["x-request-id"])
    # 8 bytes each way: ceil(8 / 4) = 2 tokens by the documented estimate
    assert (row["prompt_tokens"], row["completion_tokens"], row["tokens_estimated"]) == (2, 2, 1)


def test_gzip_body_is_counted(gw: Gateway, upstream: FakeUpstream) -> None:
    upstream.script(
        "up-main", Behaviour(text="zipped answer", gzip=True, prompt_tokens=4, completion_tokens=2)
    )
    with client(gw) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model="gpt-fake", messages=[{"role": "user", "content": "q"}]
        )
    assert raw.parse().choices[0].message.content == "zipped answer"
    row = gw.row_for(raw.http_response.headers["x-request-id"])
    assert (row["prompt_tokens"], row["completion_tokens"]) == (4, 2)


def test_unknown_price_is_null_and_counted(gw: Gateway, upstream: FakeUpstream) -> None:
    before = metric_sum(gw.metrics(), "llmops_cost_unknown_total", model="gpt-unpriced")
    with client(gw) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model="gpt-unpriced", messages=[{"role": "user", "content": "q"}]
        )
    row = gw.row_for(raw.http_response.headers["x-request-id"])
    assert row["cost_usd"] is None and row["tokens"] > 0
    assert metric_sum(gw.metrics(), "llmops_cost_unknown_total", model="gpt-unpriced") == before + 1


# -- failures ------------------------------------------------------------------------------------------


def test_sdk_streams_through_fallback_while_primary_is_down(gw: Gateway, upstream: FakeUpstream) -> None:
    upstream.script("up-main", Behaviour(status=500))
    upstream.script("up-backup", Behaviour(text="backup speaking", prompt_tokens=7, completion_tokens=2))
    before = gw.metrics()
    with client(gw) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model="gpt-fake", messages=[{"role": "user", "content": "q"}], stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "backup speaking"
    row = gw.row_for(raw.http_response.headers["x-request-id"])
    assert (row["requested_model"], row["model"], row["fallback"], row["status"]) == (
        "gpt-fake",
        "gpt-backup",
        1,
        "ok",
    )
    assert row["cost_usd"] == pytest.approx(cost(7, 2, 1.0, 2.0))  # priced as the model that answered
    after = gw.metrics()
    delta = metric_sum(
        after, "llmops_fallbacks_total", requested_model="gpt-fake", model="gpt-backup"
    ) - metric_sum(before, "llmops_fallbacks_total", requested_model="gpt-fake", model="gpt-backup")
    assert delta == 1


def test_retries_then_answers(gw: Gateway, upstream: FakeUpstream) -> None:
    upstream.script(
        "up-retry", Behaviour(status=503), Behaviour(status=429, retry_after="1"), Behaviour(text="third")
    )
    before = metric_sum(gw.metrics(), "llmops_upstream_errors_total", model="gpt-retry")
    with client(gw) as sdk:
        completion = sdk.chat.completions.create(
            model="gpt-retry", messages=[{"role": "user", "content": "q"}]
        )
    assert completion.choices[0].message.content == "third"
    assert len(upstream.requests_for("up-retry")) == 3
    assert metric_sum(gw.metrics(), "llmops_upstream_errors_total", model="gpt-retry") == before + 2


@pytest.mark.parametrize(
    ("behaviour", "status", "needle", "header"),
    [
        (Behaviour(status=400, error_message="bad parameter foo"), 400, "bad parameter foo", None),
        (Behaviour(status=422, error_message="unprocessable"), 422, "unprocessable", None),
        (Behaviour(status=401, error_message="invalid api key"), 502, "gateway's own credentials", None),
        (Behaviour(status=429, retry_after="7"), 429, "rate limiting", ("retry-after", "7")),
        (Behaviour(status=500), 500, "", None),
        (Behaviour(delay_s=2), 504, "no answer", None),
    ],
)
def test_upstream_failures_map_to_clear_statuses(
    gw: Gateway,
    upstream: FakeUpstream,
    behaviour: Behaviour,
    status: int,
    needle: str,
    header: tuple[str, str] | None,
) -> None:
    upstream.script("up-solo", behaviour)
    response = httpx.post(
        f"{gw.url}/v1/chat/completions",
        headers=gw.headers("faults"),
        timeout=30,
        json={"model": "gpt-solo", "messages": [{"role": "user", "content": "q"}]},
    )
    expected = 502 if status == 500 else status
    assert response.status_code == expected
    assert needle in response.json()["error"]["message"]
    if header:
        assert response.headers[header[0]] == header[1]
    row = gw.row_for(response.headers["x-request-id"])
    assert row["http_status"] == expected and row["status"] in ("error", "rejected") and row["error"]


def test_exhausted_chain_is_502_with_one_row(gw: Gateway, upstream: FakeUpstream) -> None:
    upstream.script("up-main", Behaviour(status=500))
    upstream.script("up-backup", Behaviour(status=503))
    response = httpx.post(
        f"{gw.url}/v1/chat/completions",
        headers=gw.headers("exhausted"),
        json={"model": "gpt-fake", "messages": [{"role": "user", "content": "q"}]},
    )
    assert response.status_code == 502
    assert "every model in the chain failed (gpt-fake, gpt-backup)" in response.json()["error"]["message"]
    assert gw.row_for(response.headers["x-request-id"])["status"] == "error"


def test_stream_cut_after_first_byte_ends_with_error_event(gw: Gateway, upstream: FakeUpstream) -> None:
    upstream.script("up-main", Behaviour(text="one two three four five", cut_after_chunks=3))
    response, events = raw_stream(gw, {"model": "gpt-fake", "messages": [{"role": "user", "content": "q"}]})
    assert "[DONE]" not in events
    assert "error" in events[-1] and "stream cut" in events[-1]["error"]["message"]
    row = gw.row_for(response.headers["x-request-id"])
    assert row["status"] == "error" and row["error"].startswith("stream_cut:")
    assert row["response"] == "one two" and row["completion_tokens"] > 0 and row["tokens_estimated"] == 1
    assert row["fallback"] == 0  # after the first byte, no switching models
    with client(gw) as sdk, pytest.raises(openai.APIError):
        upstream.script("up-main", Behaviour(text="one two three", cut_after_chunks=2))
        list(
            sdk.chat.completions.create(
                model="gpt-fake", messages=[{"role": "user", "content": "q"}], stream=True
            )
        )


def test_stream_failing_before_first_byte_falls_back(gw: Gateway, upstream: FakeUpstream) -> None:
    upstream.script("up-main", Behaviour(cut_after_chunks=0))
    upstream.script("up-backup", Behaviour(text="saved"))
    response, events = raw_stream(gw, {"model": "gpt-fake", "messages": [{"role": "user", "content": "q"}]})
    assert events[-1] == "[DONE]"
    row = gw.row_for(response.headers["x-request-id"])
    assert (row["model"], row["fallback"], row["response"]) == ("gpt-backup", 1, "saved")


def test_first_byte_timeout_on_stream_is_504(gw: Gateway, upstream: FakeUpstream) -> None:
    upstream.script("up-solo", Behaviour(first_chunk_delay_s=2))
    response = httpx.post(
        f"{gw.url}/v1/chat/completions",
        headers=gw.headers(),
        timeout=30,
        json={"model": "gpt-solo", "stream": True, "messages": [{"role": "user", "content": "q"}]},
    )
    assert response.status_code == 504 and response.json()["error"]["type"] == "upstream_timeout"


# -- hang-ups ------------------------------------------------------------------------------------------


def test_client_hangup_mid_stream_cancels_upstream(gw: Gateway, upstream: FakeUpstream) -> None:
    upstream.script("up-main", Behaviour(text=" ".join(f"w{i}" for i in range(50)), chunk_delay_s=0.2))
    rid = "hangup-stream-1"
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/chat/completions",
        timeout=30,
        headers=gw.headers("hangup", **{"x-request-id": rid}),
        json={"model": "gpt-fake", "stream": True, "messages": [{"role": "user", "content": "q"}]},
    ) as response:
        lines = response.iter_lines()
        received = [next(lines) for _ in range(6)]
        assert any("w1" in line for line in received)
        left_at = time.monotonic()
    row = gw.row_for(rid)
    assert (row["status"], row["http_status"]) == ("cancelled", 499)
    assert row["completion_tokens"] > 0 and row["response"].startswith("w0 w1")
    deadline = time.monotonic() + 3
    while not upstream.hangups and time.monotonic() < deadline:
        time.sleep(0.02)
    assert upstream.hangups and upstream.hangups[-1].model == "up-main"
    assert upstream.hangups[-1].at - left_at < 1.0


def test_client_hangup_while_waiting_cancels_upstream(gw: Gateway, upstream: FakeUpstream) -> None:
    upstream.script("up-backup", Behaviour(delay_s=10))
    rid = "hangup-plain-1"
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{gw.url}/v1/chat/completions",
            timeout=0.5,
            headers=gw.headers("hangup", **{"x-request-id": rid}),
            json={"model": "gpt-backup", "messages": [{"role": "user", "content": "q"}]},
        )
    left_at = time.monotonic()
    row = gw.row_for(rid)
    assert (row["status"], row["http_status"]) == ("cancelled", 499)
    deadline = time.monotonic() + 3
    while not any(h.model == "up-backup" for h in upstream.hangups) and time.monotonic() < deadline:
        time.sleep(0.02)
    hangup = next(h for h in upstream.hangups if h.model == "up-backup")
    assert hangup.at - left_at < 1.0
    assert "No response returned" not in gw.log_path.read_text()


def test_echo_stream_hangup_keeps_tokens_so_far(gw: Gateway) -> None:
    rid = "hangup-echo-1"
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/chat/completions",
        timeout=30,
        headers=gw.headers("hangup", **{"x-request-id": rid}),
        json={
            "model": "echo-trickle",
            "stream": True,
            "messages": [{"role": "user", "content": "a b c d e f g h i j"}],
        },
    ) as response:
        lines = response.iter_lines()
        for _ in range(4):
            next(lines)
    row = gw.row_for(rid)
    assert row["status"] == "cancelled" and 0 < row["completion_tokens"] < 10


# -- ollama ---------------------------------------------------------------------------------------------


def test_ollama_plain_and_streamed_with_split_lines(gw: Gateway, upstream: FakeUpstream) -> None:
    upstream.script("llama3", Behaviour(text="llamas are great", prompt_tokens=12, completion_tokens=4))
    with client(gw) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model="llama", messages=[{"role": "user", "content": "q"}], max_tokens=30, temperature=0.1, seed=3
        )
    assert raw.parse().choices[0].message.content == "llamas are great"
    sent = upstream.requests_for("llama3")[-1]
    assert sent.path == "/api/chat" and sent.body["options"] == {
        "num_predict": 30,
        "temperature": 0.1,
        "seed": 3,
    }
    row = gw.row_for(raw.http_response.headers["x-request-id"])
    assert (row["prompt_tokens"], row["completion_tokens"], row["cost_usd"]) == (
        12,
        4,
        pytest.approx(cost(12, 4, 0.1, 0.2)),
    )

    upstream.script(
        "llama3",
        Behaviour(text="split lines still parse", prompt_tokens=8, completion_tokens=5, split_lines=True),
    )
    response, events = raw_stream(
        gw,
        {
            "model": "llama",
            "messages": [{"role": "user", "content": "q"}],
            "stream_options": {"include_usage": True},
        },
    )
    assert events[-1] == "[DONE]"
    for event in events[:-1]:
        assert_valid("CreateChatCompletionStreamResponse", event)
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1] if e["choices"]) == (
        "split lines still parse"
    )
    assert events[-2]["usage"] == {"prompt_tokens": 8, "completion_tokens": 5, "total_tokens": 13}
    row = gw.row_for(response.headers["x-request-id"])
    assert (row["prompt_tokens"], row["completion_tokens"], row["tokens_estimated"]) == (8, 5, 0)


def test_llm_endpoint_uses_the_same_providers(gw: Gateway, upstream: FakeUpstream) -> None:
    upstream.script("up-main", Behaviour(status=502))
    upstream.script("up-backup", Behaviour(text="via llm", prompt_tokens=3, completion_tokens=2))
    response = httpx.post(f"{gw.url}/llm", json={"prompt": "q", "model": "gpt-fake"}, headers=gw.headers())
    body = response.json()
    assert (body["model"], body["response"], body["fallback"]) == ("gpt-backup", "via llm", True)
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_ttft_metrics_count_streams(gw: Gateway) -> None:
    before = gw.metrics()
    raw_stream(gw, {"model": "echo", "messages": [{"role": "user", "content": "x"}]})
    after = gw.metrics()
    for name in (
        "llmops_time_to_first_token_seconds_count",
        "gen_ai_client_operation_time_to_first_chunk_seconds_count",
    ):
        assert metric_sum(after, name) - metric_sum(before, name) == 1


def test_every_call_here_left_exactly_one_row(gw: Gateway) -> None:
    count = gw.settle()
    ids = [r["request_id"] for r in gw.rows()]
    assert len(ids) == len(set(ids)) == count
    assert metric_sum(gw.metrics(), "llmops_requests_total") == count
