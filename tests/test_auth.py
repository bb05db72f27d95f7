"""Bearer auth: every bad credential is 401, reaches no provider and writes no row."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from tests.harness import TEST_SECRET, Gateway, metric_sum


def _token(claims: dict[str, object], secret: str = TEST_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


NOW = int(time.time())
BAD_AUTHORIZATIONS = {
    "missing": None,
    "empty-bearer": "Bearer",
    "other-scheme": "Basic dXNlcjpwYXNz",
    "garbage": "Bearer not.a.token",
    "wrong-secret": "Bearer "
    + _token({"sub": "mallory", "exp": NOW + 600}, secret="another-secret-" + "y" * 40),
    "expired": "Bearer " + _token({"sub": "alice", "exp": NOW - 60}),
    "missing-sub": "Bearer " + _token({"exp": NOW + 600}),
    "missing-exp": "Bearer " + _token({"sub": "alice"}),
    "numeric-sub": "Bearer " + _token({"sub": 12345, "exp": NOW + 600}),
    "hs512": "Bearer " + _token({"sub": "alice", "exp": NOW + 600}, algorithm="HS512"),
    "alg-none": "Bearer " + jwt.encode({"sub": "alice", "exp": NOW + 600}, None, algorithm="none"),
}


@pytest.mark.parametrize("case", sorted(BAD_AUTHORIZATIONS))
def test_bad_credentials_are_401_and_write_nothing(gateway: Gateway, case: str) -> None:
    before_rows = gateway.settle()
    before = gateway.metrics()
    authorization = BAD_AUTHORIZATIONS[case]
    headers = {"content-type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    # Invalid JSON too: auth is checked before the body is read.
    response = httpx.post(f"{gateway.url}/llm", content=b"{broken", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["type"] == "authentication_error"
    assert "x-request-id" in response.headers

    # The barrier's row is the only new one.
    assert gateway.settle() == before_rows + 1
    after = gateway.metrics()
    assert (
        metric_sum(after, "llmops_auth_failures_total") - metric_sum(before, "llmops_auth_failures_total")
        == 1
    )
    assert metric_sum(after, "llmops_requests_total") - metric_sum(before, "llmops_requests_total") == 1


def test_leeway_accepts_just_expired_token(gateway: Gateway) -> None:
    token = _token({"sub": "leeway", "exp": int(time.time()) - 2})
    response = httpx.post(
        f"{gateway.url}/llm", json={"prompt": "hi"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200


def test_principal_is_sub_not_x_user_id(gateway: Gateway) -> None:
    response = httpx.post(
        f"{gateway.url}/llm",
        json={"prompt": "who"},
        headers=gateway.headers("real-sub", **{"x-user-id": "admin"}),
    )
    assert response.status_code == 200
    row = gateway.row_for(response.headers["x-request-id"])
    assert (row["user"], row["end_user"]) == ("real-sub", "admin")
