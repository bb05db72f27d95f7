"""Forged and broken credentials, on every LLM endpoint: 401, no provider call, no row, one count.

Also: the leeway edges, a cached token revoked from the CLI, and secret rotation.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from server.auth import Authenticator, mint_token
from server.auth.credential_cache import CredentialCache
from server.auth.jwt_tokens import HS256Verifier, PreviousSecret
from server.errors import AuthError
from tests.fake_upstream import FakeUpstream
from tests.harness import TEST_SECRET, Gateway, free_port, metric_sum, run_cli

ENDPOINT_BODIES = {
    "/llm": {"prompt": "forged call", "model": "gpt-fake"},
    "/v1/chat/completions": {"model": "gpt-fake", "messages": [{"role": "user", "content": "forged call"}]},
    "/v1/chat/completions stream": {
        "model": "gpt-fake",
        "stream": True,
        "messages": [{"role": "user", "content": "forged call"}],
    },
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hmac_token(header: dict[str, object], claims: dict[str, object], secret: str = TEST_SECRET) -> str:
    """A token signed with HMAC-SHA256 whatever its header claims (PyJWT would not write a lie)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _hs(claims: dict[str, object], secret: str = TEST_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def _tampered() -> str:
    header, _, signature = mint_token(TEST_SECRET, "alice", 600).split(".")
    claims = {"sub": "admin", "exp": int(time.time()) + 600, "scope": "llmops:admin"}
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


NOW = int(time.time())
VALID = {"sub": "alice", "exp": NOW + 600}
# case -> (Authorization header value, the reason label it is counted under)
FORGED: dict[str, tuple[str | None, str]] = {
    "no-header": (None, "missing"),
    "empty-bearer": ("Bearer", "missing"),
    "other-scheme": ("Basic YWxpY2U6cGFzcw==", "scheme"),
    "token-without-scheme": (mint_token(TEST_SECRET, "alice", 600), "scheme"),
    "garbage": ("Bearer not.a.token", "malformed"),
    "garbage-one-part": ("Bearer xxxxxxxx", "malformed"),
    "alg-none": ("Bearer " + jwt.encode(VALID, None, algorithm="none"), "invalid_algorithm"),  # type: ignore[arg-type]
    "alg-none-empty-signature": (
        "Bearer " + _b64(b'{"alg":"none","typ":"JWT"}') + "." + _b64(json.dumps(VALID).encode()) + ".",
        "invalid_algorithm",
    ),
    "hs512": ("Bearer " + _hs(VALID, algorithm="HS512"), "invalid_algorithm"),
    "hs384": ("Bearer " + _hs(VALID, algorithm="HS384"), "invalid_algorithm"),
    "rs256-header-over-hmac-key": (
        "Bearer " + _hmac_token({"alg": "RS256", "typ": "JWT"}, VALID),
        "invalid_algorithm",
    ),
    "tampered-payload": ("Bearer " + _tampered(), "invalid_signature"),
    "wrong-secret": ("Bearer " + _hs(VALID, secret="another-secret-" + "y" * 40), "invalid_signature"),
    "expired": ("Bearer " + _hs({"sub": "alice", "exp": NOW - 60}), "expired"),
    "nbf-in-future": ("Bearer " + _hs({**VALID, "nbf": NOW + 3600}), "not_yet_valid"),
    "iat-in-future": ("Bearer " + _hs({**VALID, "iat": NOW + 3600}), "not_yet_valid"),
    "missing-sub": ("Bearer " + _hs({"exp": NOW + 600}), "invalid_claims"),
    "empty-sub": ("Bearer " + _hs({"sub": "", "exp": NOW + 600}), "invalid_claims"),
    "numeric-sub": ("Bearer " + _hs({"sub": 12345, "exp": NOW + 600}), "invalid_claims"),
    "missing-exp": ("Bearer " + _hs({"sub": "alice"}), "invalid_claims"),
    "unknown-api-key": ("Bearer llmops_sk_" + "A" * 43, "unknown_api_key"),
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def gw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway whose `gpt-fake` is a real HTTP upstream that records every request it gets."""
    workdir = tmp_path_factory.mktemp("gw-forged")
    models = {
        "default_model": "echo",
        "models": [
            {"name": "echo", "provider": "echo"},
            {
                "name": "gpt-fake",
                "provider": "openai",
                "upstream_model": "up-forged",
                "base_url": upstream.openai_base_url,
                "api_key_env": "FAKE_UPSTREAM_KEY",
                "retries": 0,
            },
        ],
    }
    (workdir / "models.json").write_text(json.dumps(models))
    gateway = Gateway(
        workdir,
        env={"LLMOPS_MODELS_FILE": str(workdir / "models.json"), "FAKE_UPSTREAM_KEY": "sk-test-upstream"},
    )
    gateway.start()
    yield gateway
    gateway.stop()


def _post(gw: Gateway, endpoint: str, authorization: str | None) -> httpx.Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    return httpx.post(f"{gw.url}{endpoint.split()[0]}", json=ENDPOINT_BODIES[endpoint], headers=headers)


def test_a_valid_token_does_reach_the_upstream(gw: Gateway, upstream: FakeUpstream) -> None:
    """The control for every case below: with a good token the same request is answered upstream."""
    before = len(upstream.requests_for("up-forged"))
    for endpoint in ENDPOINT_BODIES:
        response = _post(gw, endpoint, f"Bearer {gw.token('alice')}")
        assert response.status_code == 200, response.text
    assert len(upstream.requests_for("up-forged")) == before + len(ENDPOINT_BODIES)


@pytest.mark.parametrize("endpoint", sorted(ENDPOINT_BODIES))
@pytest.mark.parametrize("case", sorted(FORGED))
def test_forged_credentials_are_401_without_provider_call_or_row(
    gw: Gateway, upstream: FakeUpstream, case: str, endpoint: str
) -> None:
    authorization, reason = FORGED[case]
    before_rows = gw.settle()
    before = gw.metrics()
    upstream_before = len(upstream.requests)

    response = _post(gw, endpoint, authorization)

    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == 'Bearer realm="llmops"'
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["type"] == "authentication_error" and error["message"]
    assert TEST_SECRET not in response.text
    assert len(upstream.requests) == upstream_before
    assert gw.settle() == before_rows + 1  # the barrier's row is the only new one
    after = gw.metrics()
    delta = metric_sum(after, "llmops_auth_failures_total") - metric_sum(before, "llmops_auth_failures_total")
    assert delta == 1
    reason_delta = metric_sum(after, "llmops_auth_failures_total", reason=reason) - metric_sum(
        before, "llmops_auth_failures_total", reason=reason
    )
    assert reason_delta == 1
    # The barrier is the one counted call, and no token was spent on the forged one.
    assert metric_sum(after, "llmops_requests_total") - metric_sum(before, "llmops_requests_total") == 1
    assert metric_sum(after, "llmops_requests_total", model="gpt-fake") == metric_sum(
        before, "llmops_requests_total", model="gpt-fake"
    )


@pytest.mark.parametrize("case", ["alg-none", "tampered-payload", "no-header", "numeric-sub"])
def test_models_list_refuses_forged_credentials(gw: Gateway, case: str) -> None:
    authorization, _ = FORGED[case]
    headers = {} if authorization is None else {"Authorization": authorization}
    response = httpx.get(f"{gw.url}/v1/models", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "data" not in response.json()


def test_numeric_sub_is_refused_and_the_cli_mints_string_subjects(gw: Gateway, tmp_path: Path) -> None:
    """Documented: a non-string `sub` is 401 (never 500); `llmops token --sub 123` mints the string "123"."""
    response = _post(gw, "/llm", FORGED["numeric-sub"][0])
    assert response.status_code == 401
    assert "subject" in response.json()["error"]["message"].lower()
    minted = run_cli("token", "--sub", "123", cwd=tmp_path, env={"JWT_SECRET": TEST_SECRET})
    token = minted.stdout.strip()
    assert jwt.decode(token, TEST_SECRET, algorithms=["HS256"])["sub"] == "123"
    response = httpx.post(
        f"{gw.url}/llm", json={"prompt": "hi"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert gw.row_for(response.headers["x-request-id"])["user"] == "123"


@pytest.mark.parametrize(
    ("claim", "offset_s", "status"),
    [
        ("nbf", 2, 200),  # within the 5 s leeway
        ("iat", 2, 200),
        ("nbf", 30, 401),
        ("iat", 30, 401),
        ("exp", -2, 200),
        ("exp", -30, 401),
    ],
)
def test_leeway_edges(gw: Gateway, claim: str, offset_s: int, status: int) -> None:
    now = int(time.time())
    claims: dict[str, object] = {"sub": "edge", "exp": now + 600, claim: now + offset_s}
    response = httpx.post(
        f"{gw.url}/llm", json={"prompt": "edge"}, headers={"Authorization": f"Bearer {_hs(claims)}"}
    )
    assert response.status_code == status


def test_scheme_is_case_insensitive(gw: Gateway) -> None:
    response = httpx.post(
        f"{gw.url}/llm", json={"prompt": "hi"}, headers={"Authorization": f"bearer {gw.token('lower')}"}
    )
    assert response.status_code == 200


def test_cached_token_revoked_from_the_cli_is_refused_on_the_next_request(
    gw: Gateway, tmp_path: Path
) -> None:
    jti = uuid.uuid4().hex
    token = mint_token(TEST_SECRET, "revoke-me", 600, jti=jti)
    for _ in range(2):  # the second is answered from the verified-token cache
        response = httpx.post(
            f"{gw.url}/llm", json={"prompt": "hi"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200

    revoked = run_cli("token", "revoke", jti, "--data-dir", str(gw.data_dir), cwd=tmp_path)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout == "" and f"token {jti} revoked" in revoked.stderr

    before_rows = gw.settle()
    before = gw.metrics()
    for endpoint in ENDPOINT_BODIES:
        response = _post(gw, endpoint, f"Bearer {token}")
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "token has been revoked"
    assert gw.settle() == before_rows + 1
    delta = metric_sum(gw.metrics(), "llmops_auth_failures_total", reason="revoked") - metric_sum(
        before, "llmops_auth_failures_total", reason="revoked"
    )
    assert delta == len(ENDPOINT_BODIES)
    # Other tokens of the same subject are untouched.
    other = mint_token(TEST_SECRET, "revoke-me", 600, jti=uuid.uuid4().hex)
    assert _post(gw, "/llm", f"Bearer {other}").status_code == 200


def test_token_revoke_accepts_the_whole_token(gw: Gateway, tmp_path: Path) -> None:
    token = run_cli("token", "--sub", "whole", cwd=tmp_path, env={"JWT_SECRET": TEST_SECRET}).stdout.strip()
    assert _post(gw, "/llm", f"Bearer {token}").status_code == 200
    revoked = run_cli("token", "revoke", token, "--data-dir", str(gw.data_dir), cwd=tmp_path)
    assert revoked.returncode == 0, revoked.stderr
    jti = jwt.decode(token, TEST_SECRET, algorithms=["HS256"])["jti"]
    assert f"token {jti} revoked" in revoked.stderr
    assert _post(gw, "/llm", f"Bearer {token}").status_code == 401
    again = run_cli("token", "revoke", jti, "--data-dir", str(gw.data_dir), cwd=tmp_path)
    assert again.returncode == 0 and "already revoked" in again.stderr


def _call(gw: Gateway, token: str) -> httpx.Response:
    return httpx.post(
        f"{gw.url}/llm", json={"prompt": "rotation"}, headers={"Authorization": f"Bearer {token}"}
    )


def test_secret_rotation_accepts_the_previous_secret_until_its_deadline(tmp_path: Path) -> None:
    minted_old = run_cli("token", "--sub", "old-secret-user", "--ttl", "1h", cwd=tmp_path)
    assert minted_old.returncode == 0, minted_old.stderr
    old_token = minted_old.stdout.strip()
    old_secret = _env_file(tmp_path)["JWT_SECRET"]

    rotated = run_cli("token", "rotate-secret", "--grace", "1h", cwd=tmp_path)
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout == "" and "Restart the gateway" in rotated.stderr
    env = _env_file(tmp_path)
    assert env["JWT_PREVIOUS_SECRET"] == old_secret and env["JWT_SECRET"] != old_secret
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    new_token = run_cli("token", "--sub", "new-secret-user", cwd=tmp_path).stdout.strip()
    assert jwt.decode(new_token, env["JWT_SECRET"], algorithms=["HS256"])["sub"] == "new-secret-user"

    gw = Gateway(tmp_path, secret=None).start()
    try:
        for token, user in ((old_token, "old-secret-user"), (new_token, "new-secret-user")):
            response = _call(gw, token)
            assert response.status_code == 200, response.text
            assert gw.row_for(response.headers["x-request-id"])["user"] == user
        # A token signed with neither secret stays out.
        assert _call(gw, _hs(VALID, secret="third-secret-" + "z" * 40)).status_code == 401
    finally:
        gw.stop()

    # The grace period is over: the previous secret signs nothing any more, the new one still does.
    _set_env_line(tmp_path, "LLMOPS_JWT_PREVIOUS_SECRET_UNTIL", "2000-01-01T00:00:00+00:00")
    gw = Gateway(tmp_path, secret=None).start()
    try:
        response = _call(gw, old_token)
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "token signature is invalid"
        assert _call(gw, new_token).status_code == 200
    finally:
        gw.stop()


def test_previous_secret_stops_at_its_deadline_even_for_a_cached_token(tmp_path: Path) -> None:
    """In-process, to hit the deadline to the tenth of a second whatever the machine's load."""
    previous = "previous-secret-" + "p" * 40
    until = time.time() + 1.0
    authenticator = Authenticator(
        HS256Verifier(TEST_SECRET, 5.0, PreviousSecret(previous, until)),
        CredentialCache(tmp_path / "auth.db"),
    )
    old = f"Bearer {mint_token(previous, 'cached-old', 3600)}"

    async def scenario() -> str:
        first = await authenticator.authenticate(old)
        second = await authenticator.authenticate(old)  # from the verified-token cache
        assert first is second and first.expires_at == until
        await asyncio.sleep(until + 0.1 - time.time())
        try:
            await authenticator.authenticate(old)
        except AuthError as error:
            return error.reason
        finally:
            await authenticator.aclose()
        return "accepted"

    assert asyncio.run(scenario()) == "invalid_signature"


def test_previous_secret_without_a_deadline_is_refused_at_startup(tmp_path: Path) -> None:
    result = run_cli(
        "serve",
        "--port",
        str(free_port()),
        cwd=tmp_path,
        env={"JWT_SECRET": TEST_SECRET, "JWT_PREVIOUS_SECRET": "previous-secret-" + "p" * 40},
        timeout=30,
    )
    assert result.returncode == 1
    assert "LLMOPS_JWT_PREVIOUS_SECRET_UNTIL" in result.stderr and "Traceback" not in result.stderr


def _env_file(directory: Path) -> dict[str, str]:
    lines = (directory / ".env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def _set_env_line(directory: Path, key: str, value: str) -> None:
    path = directory / ".env"
    lines = [line for line in path.read_text().splitlines() if not line.startswith(f"{key}=")]
    path.write_text("\n".join([*lines, f"{key}={value}"]) + "\n")


def test_non_ascii_bearer_is_401_everywhere_never_500(tmp_path: Path) -> None:
    """Header bytes outside ASCII reach every bearer check (LLM, admin, scrape, webhook tokens)."""
    gw = Gateway(
        tmp_path, env={"LLMOPS_METRICS_TOKEN": "s" * 20, "LLMOPS_ALERTS_WEBHOOK_TOKEN": "w" * 20}
    ).start()
    try:
        raw = [(b"Authorization", "Bearer \xe9t\xe9-\xff".encode("latin-1"))]
        for method, path in (
            ("POST", "/llm"),
            ("POST", "/v1/chat/completions"),
            ("GET", "/v1/models"),
            ("GET", "/admin/usage"),
            ("GET", "/metrics"),
            ("POST", "/alerts/webhook"),
        ):
            response = httpx.request(method, f"{gw.url}{path}", headers=raw, json={})
            assert response.status_code == 401, (path, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")
    finally:
        gw.stop()
