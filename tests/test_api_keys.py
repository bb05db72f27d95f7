"""API keys from the real CLI, used as bearers on every endpoint, revoked across gateway processes."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from server.auth import mint_token
from tests.harness import TEST_SECRET, Gateway, metric_sum, run_cli

KEY_FORMAT = re.compile(r"^llmops_sk_[A-Za-z0-9_-]{43}$")


def create_key(data_dir: Path, cwd: Path, *args: str) -> tuple[str, str]:
    """(key, id) of a new key made with `llmops keys create --json ARGS`."""
    result = run_cli("keys", "create", "--json", "--data-dir", str(data_dir), *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    return created["key"], created["id"]


def call(gw: Gateway, key: str, prompt: str = "keyed call") -> httpx.Response:
    return httpx.post(f"{gw.url}/llm", json={"prompt": prompt}, headers={"Authorization": f"Bearer {key}"})


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = Gateway(tmp_path_factory.mktemp("gw-keys")).start()
    yield gateway
    gateway.stop()


def test_create_prints_only_the_key_and_stores_only_its_hash(gw: Gateway, tmp_path: Path) -> None:
    result = run_cli(
        "keys", "create", "--user", "alice", "--name", "ci-bot", "--expires", "90d",
        "--data-dir", str(gw.data_dir), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert result.stdout == key + "\n" and KEY_FORMAT.match(key)
    key_id = re.search(r"created API key (key_[0-9a-f]{16}) for alice \(ci-bot\)", result.stderr)
    assert key_id and "shown only this once" in result.stderr

    auth_db = gw.data_dir / "auth.db"
    assert auth_db.stat().st_mode & 0o777 == 0o600
    stored = b"".join(p.read_bytes() for p in gw.data_dir.glob("auth.db*"))
    assert key.encode() not in stored
    conn = sqlite3.connect(auth_db)
    try:
        row = conn.execute(
            "SELECT key_hash, user, name, expires_at, revoked_at FROM api_keys WHERE id = ?",
            (key_id.group(1),),
        ).fetchone()
        columns = [c[1] for c in conn.execute("PRAGMA table_info(api_keys)")]
        migrations = [r[0] for r in conn.execute("SELECT name FROM _migrations")]
    finally:
        conn.close()
    assert row[0] == hashlib.sha256(key.encode()).hexdigest()
    assert row[1:3] == ("alice", "ci-bot") and row[4] is None
    expires = time.mktime(time.strptime(row[3][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert abs(expires - (time.time() + 90 * 86400)) < 60
    assert columns == [
        "id", "key_hash", "prefix", "user", "name", "scopes", "created_at", "expires_at", "revoked_at"
    ]  # fmt: skip
    assert migrations == ["0001_api_keys_and_revoked_tokens"]

    response = call(gw, key)
    assert response.status_code == 200, response.text
    row = gw.row_for(response.headers["x-request-id"])
    assert (row["user"], row["key_id"]) == ("alice", key_id.group(1))


def test_list_shows_every_key_and_no_secret(gw: Gateway, tmp_path: Path) -> None:
    key, key_id = create_key(gw.data_dir, tmp_path, "--user", "lister", "--name", "listed")
    listed = run_cli("keys", "list", "--json", "--data-dir", str(gw.data_dir), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    entries = {entry["id"]: entry for entry in json.loads(listed.stdout)}
    entry = entries[key_id]
    assert entry == {
        "id": key_id,
        "user": "lister",
        "name": "listed",
        "prefix": key[:14],
        "scopes": [],
        "created_at": entry["created_at"],
        "expires_at": None,
        "revoked_at": None,
        "status": "active",
    }
    assert key not in listed.stdout and hashlib.sha256(key.encode()).hexdigest() not in listed.stdout

    table = run_cli("keys", "list", "--data-dir", str(gw.data_dir), cwd=tmp_path, env={"COLUMNS": "200"})
    assert table.returncode == 0
    line = next(line for line in table.stdout.splitlines() if key_id in line)
    assert "lister" in line and "listed" in line and "active" in line and key[:14] + "…" in line
    assert key not in table.stdout


def test_a_key_is_a_bearer_for_the_openai_sdk(gw: Gateway, tmp_path: Path) -> None:
    key, key_id = create_key(gw.data_dir, tmp_path, "--user", "sdk-app")
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)
    completion = client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "through the sdk"}]
    )
    assert completion.choices[0].message.content == "through the sdk"
    chunks = list(
        client.chat.completions.create(
            model="echo", messages=[{"role": "user", "content": "streamed with a key"}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "streamed with a key"
    assert "echo" in [model.id for model in client.models.list()]
    gw.settle()
    rows = gw.rows("WHERE key_id = ?", (key_id,))
    assert [(r["user"], r["endpoint"], r["stream"], r["status"]) for r in rows] == [
        ("sdk-app", "/v1/chat/completions", 0, "ok"),
        ("sdk-app", "/v1/chat/completions", 1, "ok"),
    ]


def test_unknown_expired_and_revoked_keys_are_401_without_row(gw: Gateway, tmp_path: Path) -> None:
    expiring, _ = create_key(gw.data_dir, tmp_path, "--user", "short-lived", "--expires", "1s")
    revoked, revoked_id = create_key(gw.data_dir, tmp_path, "--user", "to-revoke")
    assert call(gw, revoked).status_code == 200
    result = run_cli("keys", "revoke", revoked_id, "--data-dir", str(gw.data_dir), cwd=tmp_path)
    assert result.returncode == 0 and f"API key {revoked_id} (to-revoke) revoked" in result.stderr
    time.sleep(1.1)

    cases = {
        "unknown_api_key": "llmops_sk_" + "B" * 43,
        "expired": expiring,
        "revoked": revoked,
    }
    for reason, key in cases.items():
        before_rows = gw.settle()
        before = gw.metrics()
        for endpoint, body in (
            ("/llm", {"prompt": "x"}),
            ("/v1/chat/completions", {"model": "echo", "messages": [{"role": "user", "content": "x"}]}),
        ):
            response = httpx.post(
                f"{gw.url}{endpoint}", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            assert response.status_code == 401, (reason, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")
        assert gw.settle() == before_rows + 1
        counted = metric_sum(gw.metrics(), "llmops_auth_failures_total", reason=reason)
        assert counted - metric_sum(before, "llmops_auth_failures_total", reason=reason) == 2

    statuses = {
        e["id"]: e["status"]
        for e in json.loads(
            run_cli("keys", "list", "--json", "--data-dir", str(gw.data_dir), cwd=tmp_path).stdout
        )
    }
    assert statuses[revoked_id] == "revoked"


def test_revoking_an_unknown_id_fails_cleanly(gw: Gateway, tmp_path: Path) -> None:
    result = run_cli("keys", "revoke", "key_doesnotexist", "--data-dir", str(gw.data_dir), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: no API key with id 'key_doesnotexist'")
    assert "hint: `llmops keys list`" in result.stderr


def test_create_refuses_bad_arguments(tmp_path: Path) -> None:
    for args, needle in (
        (("--user", "  "), "--user must not be empty"),
        (("--user", "a", "--expires", "soon"), "not a duration"),
        (("--user", "a", "--expires", "0s"), "--expires must be positive"),
    ):
        result = run_cli("keys", "create", *args, cwd=tmp_path)
        assert result.returncode == 1 and needle in result.stderr and result.stdout == ""


def test_admin_key_reads_usage_and_plain_key_does_not(gw: Gateway, tmp_path: Path) -> None:
    admin_key, _ = create_key(gw.data_dir, tmp_path, "--user", "ops", "--admin")
    plain_key, _ = create_key(gw.data_dir, tmp_path, "--user", "app")
    assert call(gw, plain_key, "plain call").status_code == 200
    gw.settle()
    refused = httpx.get(f"{gw.url}/admin/usage", headers={"Authorization": f"Bearer {plain_key}"})
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_error"
    allowed = httpx.get(f"{gw.url}/admin/usage?user=app", headers={"Authorization": f"Bearer {admin_key}"})
    assert allowed.status_code == 200
    assert [row["prompt"] for row in allowed.json()["data"]] == ["plain call"]


@pytest.fixture
def two_gateways(tmp_path: Path) -> Iterator[tuple[Gateway, Gateway]]:
    """Two gateway processes on one data directory, as two workers of one deployment would be."""
    shared = tmp_path / "shared-data"
    first = Gateway(tmp_path / "a", data_dir=shared).start()
    second = Gateway(tmp_path / "b", data_dir=shared).start()
    yield first, second
    second.stop()
    first.stop()


def test_key_revocation_is_seen_by_every_process_on_the_next_request(
    two_gateways: tuple[Gateway, Gateway], tmp_path: Path
) -> None:
    first, second = two_gateways
    key, key_id = create_key(first.data_dir, tmp_path, "--user", "shared-app")
    for gw in (first, second):
        for _ in range(3):
            assert call(gw, key).status_code == 200
    revoked = run_cli("keys", "revoke", key_id, "--data-dir", str(first.data_dir), cwd=tmp_path)
    assert revoked.returncode == 0, revoked.stderr
    # No sleep: the very next request in each process is refused.
    for gw in (first, second):
        response = call(gw, key)
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "API key has been revoked"
    first.settle()
    second.settle()
    assert len(first.rows("WHERE key_id = ?", (key_id,))) == 6


def test_token_revocation_is_seen_by_every_process_on_the_next_request(
    two_gateways: tuple[Gateway, Gateway], tmp_path: Path
) -> None:
    first, second = two_gateways
    jti = uuid.uuid4().hex
    token = mint_token(TEST_SECRET, "shared-user", 600, jti=jti)
    for gw in (first, second):
        for _ in range(2):  # verified once, then from each process's cache
            assert call(gw, token).status_code == 200
    result = run_cli("token", "revoke", jti, "--data-dir", str(first.data_dir), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for gw in (first, second):
        response = call(gw, token)
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "token has been revoked"


def test_revocation_is_seen_by_every_worker_of_serve_workers(tmp_path: Path) -> None:
    """`llmops serve --workers 2`: new connections land on either worker; neither accepts what was revoked."""
    gw = Gateway(tmp_path, extra_args=("--workers", "2")).start(timeout=40)
    try:
        key, key_id = create_key(gw.data_dir, tmp_path, "--user", "worker-app")
        jti = uuid.uuid4().hex
        token = mint_token(TEST_SECRET, "worker-user", 600, jti=jti)
        for i in range(12):  # a new connection each time, so the workers share the calls
            assert call(gw, key, f"key before {i}").status_code == 200
            assert call(gw, token, f"token before {i}").status_code == 200
        assert run_cli("keys", "revoke", key_id, "--data-dir", str(gw.data_dir), cwd=tmp_path).returncode == 0
        assert run_cli("token", "revoke", jti, "--data-dir", str(gw.data_dir), cwd=tmp_path).returncode == 0
        assert [call(gw, key, f"key after {i}").status_code for i in range(12)] == [401] * 12
        assert [call(gw, token, f"token after {i}").status_code for i in range(12)] == [401] * 12
        gw.settle()
        assert len(gw.rows("WHERE key_id = ?", (key_id,))) == 12
        assert len(gw.rows("WHERE user = 'worker-user'")) == 12
    finally:
        assert gw.stop() == 0
