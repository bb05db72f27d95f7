"""Prompt privacy (LLMOPS_STORE_PROMPTS) and secrets that never reach a log or an error body."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from pathlib import Path

import httpx
import jwt
import pytest

from tests.fake_upstream import Behaviour, FakeUpstream
from tests.harness import TEST_SECRET, Gateway, run_cli


def request_log_entry(gw: Gateway, request_id: str) -> dict[str, object]:
    for line in gw.log_path.read_text().splitlines():
        if line.startswith("{") and f'"request_id":"{request_id}"' in line:
            return json.loads(line)  # type: ignore[no-any-return]
    raise AssertionError(f"no request-log line for {request_id}")


def everything_written(gw: Gateway) -> bytes:
    """The gateway's log and every file in its data directory, as bytes."""
    return gw.log_path.read_bytes() + b"".join(p.read_bytes() for p in gw.data_dir.iterdir() if p.is_file())


@pytest.mark.parametrize("mode", ["full", "hash", "none"])
def test_store_prompts_mode_governs_rows_and_the_request_log(tmp_path: Path, mode: str) -> None:
    gw = Gateway(
        tmp_path / "gw", env={"LLMOPS_STORE_PROMPTS": mode, "LLMOPS_REQUEST_LOG_PROMPTS": "true"}
    ).start()
    marker = f"private-{uuid.uuid4().hex}"
    prompt = f"my account number is {marker}"
    try:
        response = httpx.post(
            f"{gw.url}/llm", json={"prompt": prompt}, headers=gw.headers("privacy", **{"x-request-id": "p-1"})
        )
        assert response.status_code == 200 and response.json()["response"] == prompt  # the caller gets it
        row = gw.row_for("p-1")
        gw.settle()
    finally:
        assert gw.stop() == 0

    expected = {
        "full": prompt,
        "hash": "sha256:" + hashlib.sha256(prompt.encode()).hexdigest(),
        "none": None,
    }[mode]
    assert row["prompt"] == expected and row["response"] == expected
    assert (row["prompt_tokens"], row["completion_tokens"]) == (5, 5)  # accounting is unaffected
    assert request_log_entry(gw, "p-1")["prompt"] == expected
    written = everything_written(gw)
    assert (marker.encode() in written) == (mode == "full")


def test_request_log_has_no_prompt_unless_asked(tmp_path: Path) -> None:
    gw = Gateway(tmp_path / "gw").start()
    marker = f"private-{uuid.uuid4().hex}"
    try:
        httpx.post(
            f"{gw.url}/llm", json={"prompt": marker}, headers=gw.headers("privacy", **{"x-request-id": "p-2"})
        )
        assert gw.row_for("p-2")["prompt"] == marker  # the usage log keeps it (LLMOPS_STORE_PROMPTS=full)
    finally:
        gw.stop()
    entry = request_log_entry(gw, "p-2")
    assert "prompt" not in entry and marker not in gw.log_path.read_text()


def test_tokens_and_secrets_never_appear_in_logs_or_error_bodies(tmp_path: Path) -> None:
    gw = Gateway(tmp_path / "gw").start()
    now = int(time.time())
    good = gw.token("alice")
    forged = jwt.encode({"sub": "alice", "exp": now + 600}, "another-secret-" + "y" * 40, algorithm="HS256")
    expired = jwt.encode({"sub": "alice", "exp": now - 3600}, TEST_SECRET, algorithm="HS256")
    no_sub = jwt.encode({"exp": now + 600}, TEST_SECRET, algorithm="HS256")
    unsigned = jwt.encode({"sub": "alice", "exp": now + 600}, None, algorithm="none")  # type: ignore[arg-type]
    numeric_sub = jwt.encode({"sub": 42, "exp": now + 600}, TEST_SECRET, algorithm="HS256")
    garbage = f"not-a-jwt-{uuid.uuid4().hex}"
    secrets = [good, forged, expired, no_sub, unsigned, numeric_sub, garbage, TEST_SECRET]

    exchanges = []
    try:
        with httpx.Client(base_url=gw.url) as client:
            for token in secrets[:-1]:
                for scheme in ("Bearer", "bearer", "Basic", "Token"):
                    exchanges.append(
                        client.post(
                            "/llm", json={"prompt": "hi"}, headers={"Authorization": f"{scheme} {token}"}
                        )
                    )
            exchanges.append(
                client.post("/llm", content=b"{broken", headers={"Authorization": f"Bearer {good}"})
            )
            exchanges.append(
                client.post(
                    "/llm",
                    json={"prompt": "hi", "model": "nope"},
                    headers={"Authorization": f"Bearer {good}"},
                )
            )
            exchanges.append(client.get("/nope", headers={"Authorization": f"Bearer {good}"}))
        statuses = [r.status_code for r in exchanges]
        # The good token under "Bearer" and "bearer" is answered; every other credential is a 401.
        assert statuses[:4] == [200, 200, 401, 401]
        assert statuses[4:-3] == [401] * 24
        assert statuses[-3:] == [400, 404, 404]
        gw.settle()
    finally:
        assert gw.stop() == 0

    written = everything_written(gw)
    for response in exchanges:
        if response.status_code >= 400:
            assert set(response.json()) == {"error"}
        exposed = response.content + "".join(f"{k}: {v}" for k, v in response.headers.items()).encode()
        for secret in secrets:
            assert secret.encode() not in exposed
    for secret in secrets:
        assert secret.encode() not in written


def test_generated_secret_is_never_printed(tmp_path: Path) -> None:
    result = run_cli("token", "--sub", "someone", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    secret = next(
        line.split("=", 1)[1]
        for line in (tmp_path / ".env").read_text().splitlines()
        if line.startswith("JWT_SECRET=")
    )
    assert "generated a new JWT_SECRET" in result.stderr
    assert secret not in result.stderr and secret not in result.stdout
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600


def test_upstream_key_never_reaches_clients_logs_or_rows(tmp_path: Path) -> None:
    key = f"sk-live-{uuid.uuid4().hex}"
    upstream = FakeUpstream().start()
    # An upstream that echoes the key it was sent into its error messages (some proxies do).
    for status in (401, 400, 500):
        upstream.script(f"up-{status}", Behaviour(status=status, error_message=f"bad key provided: {key}"))
    models = {
        "default_model": "echo",
        "models": [
            {"name": "echo", "provider": "echo"},
            *(
                {
                    "name": f"gpt-{status}",
                    "provider": "openai",
                    "upstream_model": f"up-{status}",
                    "base_url": upstream.openai_base_url,
                    "api_key_env": "UPSTREAM_KEY",
                    "retries": 0,
                }
                for status in (401, 400, 500)
            ),
        ],
    }
    (tmp_path / "models.json").write_text(json.dumps(models))
    gw = Gateway(
        tmp_path / "gw", env={"LLMOPS_MODELS_FILE": str(tmp_path / "models.json"), "UPSTREAM_KEY": key}
    ).start()
    bodies = []
    try:
        with httpx.Client(base_url=gw.url, headers=gw.headers("key-user"), timeout=30) as client:
            for status in (401, 400, 500):
                chat = {"model": f"gpt-{status}", "messages": [{"role": "user", "content": "hi"}]}
                for endpoint, body in (
                    ("/v1/chat/completions", chat),
                    ("/v1/chat/completions", {**chat, "stream": True}),
                    ("/llm", {"prompt": "hi", "model": f"gpt-{status}"}),
                ):
                    response = client.post(endpoint, json=body)
                    assert response.status_code >= 400 or "error" in response.text
                    bodies.append(response.content)
        gw.settle()
    finally:
        gw.stop()
        upstream.stop()
    assert all(r.headers["Authorization"] == f"Bearer {key}" for r in upstream.requests)  # it was sent
    assert len(bodies) == 9
    for answer in bodies:
        assert key.encode() not in answer, answer
    assert key.encode() not in everything_written(gw)
