"""OIDC: RS256/ES256 tokens of a configured issuer, verified against a real JWKS server on 127.0.0.1.

The identity provider is a stand-in (keys the test generates, served over HTTP), the gateway is real.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.harness import TEST_SECRET, Gateway, free_port, metric_sum

ISSUER = "https://idp.example.test/realms/llmops"
AUDIENCE = "llmops-gateway"


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private: Any

    @property
    def jwk(self) -> dict[str, Any]:
        to_jwk = RSAAlgorithm.to_jwk if self.algorithm.startswith("RS") else ECAlgorithm.to_jwk
        return {**json.loads(to_jwk(self.private.public_key())), "kid": self.kid, "use": "sig"}

    def token(self, sub: Any = "oidc-user", kid: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 600, **claims}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, self.private, algorithm=self.algorithm, headers={"kid": kid or self.kid})


def rsa_key(kid: str) -> SigningKey:
    return SigningKey(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ec_key(kid: str) -> SigningKey:
    return SigningKey(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


@dataclass
class JwksServer:
    """The identity provider's JWKS endpoint: serves `keys`, counts fetches, can be made to fail."""

    keys: list[SigningKey] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    fetches: int = 0
    status: int = 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks"

    def start(self) -> JwksServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                body = json.dumps({"keys": [key.jwk for key in server.keys]}).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def oidc_env(jwks: JwksServer, **extra: str) -> dict[str, str]:
    return {
        "LLMOPS_OIDC_ISSUER": ISSUER,
        "LLMOPS_OIDC_AUDIENCE": AUDIENCE,
        "LLMOPS_OIDC_JWKS_URL": jwks.url,
        "LLMOPS_OIDC_ALGORITHMS": "RS256,ES256",
        **extra,
    }


@pytest.fixture(scope="module")
def idp_keys() -> dict[str, SigningKey]:
    return {"rsa": rsa_key("rsa-1"), "ec": ec_key("ec-1"), "attacker": rsa_key("rsa-1")}


@pytest.fixture(scope="module")
def jwks(idp_keys: dict[str, SigningKey]) -> Iterator[JwksServer]:
    server = JwksServer([idp_keys["rsa"], idp_keys["ec"]]).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def attacker_jwks(idp_keys: dict[str, SigningKey]) -> Iterator[JwksServer]:
    server = JwksServer([idp_keys["attacker"]]).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gw(jwks: JwksServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = Gateway(
        tmp_path_factory.mktemp("gw-oidc"), env=oidc_env(jwks, LLMOPS_OIDC_JWKS_MIN_REFRESH_INTERVAL_S="60")
    ).start()
    yield gateway
    gateway.stop()


def call(gw: Gateway, token: str, endpoint: str = "/llm") -> httpx.Response:
    if endpoint == "/llm":
        body: dict[str, Any] = {"prompt": "hello idp", "model": "echo"}
    else:
        body = {"model": "echo", "messages": [{"role": "user", "content": "hello idp"}]}
    return httpx.post(f"{gw.url}{endpoint}", json=body, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("endpoint", ["/llm", "/v1/chat/completions"])
@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_issuer_tokens_are_accepted_and_attributed_to_sub(
    gw: Gateway, idp_keys: dict[str, SigningKey], kind: str, endpoint: str
) -> None:
    response = call(gw, idp_keys[kind].token(sub=f"{kind}-person", jti=uuid.uuid4().hex), endpoint)
    assert response.status_code == 200, response.text
    row = gw.row_for(response.headers["x-request-id"])
    assert (row["user"], row["endpoint"], row["key_id"]) == (f"{kind}-person", endpoint, None)


def test_llmops_hs256_tokens_keep_working_beside_oidc(gw: Gateway) -> None:
    response = call(gw, gw.token("hs256-person"))
    assert response.status_code == 200
    assert gw.row_for(response.headers["x-request-id"])["user"] == "hs256-person"


def test_keys_are_fetched_once_and_cached(
    gw: Gateway, jwks: JwksServer, idp_keys: dict[str, SigningKey]
) -> None:
    assert call(gw, idp_keys["rsa"].token(jti=uuid.uuid4().hex)).status_code == 200
    fetches = jwks.fetches
    for _ in range(5):
        assert call(gw, idp_keys["ec"].token(jti=uuid.uuid4().hex)).status_code == 200
    assert jwks.fetches == fetches == 1


def _forged(keys: dict[str, SigningKey], attacker_jwks: JwksServer) -> dict[str, tuple[str, str]]:
    rsa_key_, ec_key_, attacker = keys["rsa"], keys["ec"], keys["attacker"]
    now = int(time.time())
    public_pem = rsa_key_.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "exp": now + 600}
    return {
        "wrong-audience": (rsa_key_.token(aud="another-app"), "invalid_audience"),
        "missing-audience": (rsa_key_.token(aud=None), "invalid_claims"),
        "expired": (rsa_key_.token(exp=now - 60), "expired"),
        "nbf-in-future": (ec_key_.token(nbf=now + 3600), "not_yet_valid"),
        "missing-sub": (rsa_key_.token(sub=None), "invalid_claims"),
        "numeric-sub": (rsa_key_.token(sub=4242), "invalid_claims"),
        # Signed by the attacker's own key under the issuer's key id.
        "attacker-key-real-kid": (attacker.token(), "invalid_signature"),
        # The issuer's public key used as an HMAC secret (the classic algorithm confusion).
        "hs256-with-public-key-as-secret": (
            _hmac_with(public_pem.decode(), claims, {"kid": rsa_key_.kid}),
            "invalid_algorithm",
        ),
        "hs256-with-our-jwt-secret": (
            jwt.encode(claims, TEST_SECRET, algorithm="HS256", headers={"kid": rsa_key_.kid}),
            "invalid_algorithm",
        ),
        "alg-none": (jwt.encode(claims, None, algorithm="none"), "invalid_algorithm"),  # type: ignore[arg-type]
        # Header says ES256 over the RSA key's id: the key decides the algorithm, not the header.
        "es256-header-on-rsa-kid": (
            jwt.encode(claims, ec_key_.private, algorithm="ES256", headers={"kid": rsa_key_.kid}),
            "invalid_algorithm",
        ),
        "ps256-not-configured": (
            jwt.encode(claims, rsa_key_.private, algorithm="PS256", headers={"kid": rsa_key_.kid}),
            "invalid_algorithm",
        ),
        # The gateway never follows a key URL the token names.
        "jku-header-ignored": (
            jwt.encode(
                claims,
                attacker.private,
                algorithm="RS256",
                headers={"kid": "attacker-kid", "jku": attacker_jwks.url},
            ),
            "unknown_key",
        ),
        "kid-not-a-string": (
            _raw_token(
                {"alg": "RS256", "typ": "JWT", "kid": 7},
                claims,
                lambda data: RSAAlgorithm(RSAAlgorithm.SHA256).sign(data, rsa_key_.private),
            ),
            "malformed",
        ),
        # Another issuer's token is routed to the HS256 verifier, which refuses RS256.
        "other-issuer": (rsa_key_.token(iss="https://evil.example.test"), "invalid_algorithm"),
    }


def _raw_token(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """A token exactly as given, header lies included (PyJWT refuses to write some of these)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def _hmac_with(secret: str, claims: dict[str, Any], headers: dict[str, Any]) -> str:
    return _raw_token(
        {"alg": "HS256", "typ": "JWT", **headers},
        claims,
        lambda data: hmac.new(secret.encode(), data, hashlib.sha256).digest(),
    )


FORGED_CASES = [
    "wrong-audience",
    "missing-audience",
    "expired",
    "nbf-in-future",
    "missing-sub",
    "numeric-sub",
    "attacker-key-real-kid",
    "hs256-with-public-key-as-secret",
    "hs256-with-our-jwt-secret",
    "alg-none",
    "es256-header-on-rsa-kid",
    "ps256-not-configured",
    "jku-header-ignored",
    "kid-not-a-string",
    "other-issuer",
]


@pytest.mark.parametrize("case", FORGED_CASES)
def test_forged_issuer_tokens_are_401_without_row(
    gw: Gateway, idp_keys: dict[str, SigningKey], attacker_jwks: JwksServer, case: str
) -> None:
    token, reason = _forged(idp_keys, attacker_jwks)[case]
    before_rows = gw.settle()
    before = gw.metrics()
    attacker_fetches = attacker_jwks.fetches

    response = call(gw, token)

    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["type"] == "authentication_error"
    assert gw.settle() == before_rows + 1
    after = gw.metrics()
    assert (
        metric_sum(after, "llmops_auth_failures_total", reason=reason)
        - metric_sum(before, "llmops_auth_failures_total", reason=reason)
        == 1
    ), response.json()
    assert attacker_jwks.fetches == attacker_fetches == 0


def test_admin_scope_from_an_issuer_token(gw: Gateway, idp_keys: dict[str, SigningKey]) -> None:
    plain = httpx.get(
        f"{gw.url}/admin/usage",
        headers={"Authorization": f"Bearer {idp_keys['rsa'].token(jti=uuid.uuid4().hex)}"},
    )
    assert plain.status_code == 403
    admin_token = idp_keys["ec"].token(sub="idp-admin", scp=["openid", "llmops:admin"])
    for _ in range(3):
        assert call(gw, admin_token).status_code == 200
    gw.settle()
    response = httpx.get(
        f"{gw.url}/admin/usage?last=4&user=idp-admin", headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert response.status_code == 200
    assert [row["user"] for row in response.json()["data"]] == ["idp-admin"] * 3


def test_key_rotation_triggers_one_refresh(tmp_path: Path) -> None:
    old, new = rsa_key("2024-old"), ec_key("2025-new")
    jwks = JwksServer([old]).start()
    gw = Gateway(tmp_path, env=oidc_env(jwks, LLMOPS_OIDC_JWKS_MIN_REFRESH_INTERVAL_S="0.5")).start()
    try:
        assert call(gw, old.token()).status_code == 200
        assert jwks.fetches == 1
        jwks.keys = [new]  # the identity provider rotates: the old key is gone, a new one signs
        time.sleep(0.6)
        response = call(gw, new.token(sub="after-rotation"))
        assert response.status_code == 200, response.text
        assert gw.row_for(response.headers["x-request-id"])["user"] == "after-rotation"
        assert jwks.fetches == 2
        # Right after that refresh, a token under the dropped key id is refused without another fetch.
        response = call(gw, old.token(jti=uuid.uuid4().hex))
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "no signing key of the issuer matches the token"
        assert jwks.fetches == 2
    finally:
        gw.stop()
        jwks.stop()


def test_a_flood_of_unknown_key_ids_costs_at_most_one_fetch(tmp_path: Path) -> None:
    real = rsa_key("real")
    jwks = JwksServer([real]).start()
    gw = Gateway(tmp_path, env=oidc_env(jwks, LLMOPS_OIDC_JWKS_MIN_REFRESH_INTERVAL_S="60")).start()
    try:
        flood = [rsa_key(f"made-up-{i}") for i in range(3)]
        tokens = [flood[i % 3].token(kid=f"made-up-{uuid.uuid4().hex}") for i in range(40)]
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda t: call(gw, t).status_code, tokens))
        assert statuses == [401] * 40
        assert jwks.fetches == 1  # the first fetch; no refresh for any of the 40 unknown ids
        assert call(gw, real.token()).status_code == 200
        assert jwks.fetches == 1
        assert metric_sum(gw.metrics(), "llmops_auth_failures_total", reason="unknown_key") == 40
        assert gw.settle() == 2  # the real token's row and the barrier's
    finally:
        gw.stop()
        jwks.stop()


def test_keys_are_refetched_after_their_ttl(tmp_path: Path) -> None:
    key = ec_key("ttl")
    jwks = JwksServer([key]).start()
    env = oidc_env(jwks, LLMOPS_OIDC_JWKS_CACHE_TTL_S="0.5", LLMOPS_OIDC_JWKS_MIN_REFRESH_INTERVAL_S="0")
    gw = Gateway(tmp_path, env=env).start()
    try:
        assert call(gw, key.token(jti="a")).status_code == 200
        assert call(gw, key.token(jti="b")).status_code == 200
        assert jwks.fetches == 1
        time.sleep(0.6)
        assert call(gw, key.token(jti="c")).status_code == 200
        assert jwks.fetches == 2
        # The identity provider fails: the cached keys keep working after the TTL.
        jwks.status = 500
        time.sleep(0.6)
        assert call(gw, key.token(jti="d")).status_code == 200
        assert jwks.fetches == 3
    finally:
        gw.stop()
        jwks.stop()


def test_unreachable_jwks_is_503_and_hs256_still_works(tmp_path: Path) -> None:
    unreachable = JwksServer(port=free_port())  # never started: nothing listens there
    gw = Gateway(tmp_path, env=oidc_env(unreachable)).start()
    try:
        before = gw.settle()
        response = call(gw, rsa_key("k").token())
        assert response.status_code == 503
        assert response.json()["error"]["type"] == "auth_unavailable"
        assert int(response.headers["retry-after"]) >= 1
        assert gw.settle() == before + 1
        assert metric_sum(gw.metrics(), "llmops_auth_failures_total", reason="jwks_unavailable") == 1
        assert call(gw, gw.token("still-hs256")).status_code == 200
    finally:
        gw.stop()


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"LLMOPS_OIDC_ISSUER": ISSUER}, "LLMOPS_OIDC_AUDIENCE"),
        (
            {
                "LLMOPS_OIDC_ISSUER": ISSUER,
                "LLMOPS_OIDC_AUDIENCE": AUDIENCE,
                "LLMOPS_OIDC_JWKS_URL": "http://127.0.0.1:9/jwks",
                "LLMOPS_OIDC_ALGORITHMS": "RS256,HS256",
            },
            "refused: ['HS256']",
        ),
    ],
)
def test_incomplete_or_symmetric_oidc_settings_are_refused(
    tmp_path: Path, env: dict[str, str], needle: str
) -> None:
    from tests.harness import run_cli

    result = run_cli(
        "serve", "--port", str(free_port()), cwd=tmp_path, env={"JWT_SECRET": TEST_SECRET, **env}
    )
    assert result.returncode == 1
    assert needle in result.stderr and "Traceback" not in result.stderr
