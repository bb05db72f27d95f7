"""OIDC: asymmetric tokens (RS256, ES256 ...) from a configured issuer, verified against its JWKS.

The key comes from the issuer's JWKS and the algorithm from that key (its `alg`, or what its type
implies) and must be one the issuer is configured for: the token's header only names the key id,
it never chooses the algorithm. The JWKS is fetched with an async client (the event loop never
blocks on the identity provider), cached for a TTL, and refreshed when a token names an unknown
key id — at most once per `min_refresh_interval_s`, so a flood of made-up key ids costs the
identity provider one request, not one per token.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import orjson
from jwt import exceptions as jwt_errors

from server.auth.jwt_tokens import decode_verified, principal_from_claims
from server.auth.principal import Principal
from server.errors import AuthError, AuthUnavailable

log = logging.getLogger(__name__)

REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
MAX_JWKS_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True)
class OidcIssuer:
    """One trusted issuer and how to reach its keys."""

    issuer: str
    audience: str
    jwks_url: str
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    cache_ttl_s: float = 3600.0
    min_refresh_interval_s: float = 30.0
    fetch_timeout_s: float = 5.0


@dataclass(frozen=True, slots=True)
class SigningKey:
    key_id: str | None
    algorithm: str
    key: Any


def parse_jwks(document: bytes, algorithms: tuple[str, ...]) -> list[SigningKey]:
    """The signature keys of a JWKS document usable with `algorithms`; others are skipped."""
    try:
        data = orjson.loads(document)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"JWKS is not JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError("JWKS has no `keys` list")
    keys: list[SigningKey] = []
    for jwk in data["keys"]:
        # Symmetric ("oct") keys never: a key published in a JWKS is readable by anybody.
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig" or jwk.get("kty") == "oct":
            continue
        try:
            parsed = jwt.PyJWK(jwk)
        except (jwt_errors.PyJWTError, ValueError, TypeError) as exc:
            log.debug("skipping JWKS key %r: %s", jwk.get("kid"), exc)
            continue
        if parsed.algorithm_name not in algorithms:
            continue
        kid = jwk.get("kid")
        keys.append(SigningKey(kid if isinstance(kid, str) else None, parsed.algorithm_name, parsed.key))
    return keys


class JwksCache:
    """An issuer's signing keys; fetched at most once per `min_refresh_interval_s`."""

    def __init__(self, config: OidcIssuer) -> None:
        self._config = config
        self._keys: list[SigningKey] = []
        self._fetched_at = -math.inf  # monotonic time of the last successful fetch
        self._attempted_at = -math.inf  # ... and of the last attempt, failed or not
        self._generation = 0
        self._lock = asyncio.Lock()
        self._client: httpx.AsyncClient | None = None

    async def keys_for(self, key_id: str | None) -> list[SigningKey]:
        """The keys a token naming `key_id` may be signed with (all of them when it names none)."""
        stale = time.monotonic() - self._fetched_at >= self._config.cache_ttl_s
        matching = self._matching(key_id)
        if stale or not matching:
            await self._refresh(self._generation)
            matching = self._matching(key_id)
        return matching

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _matching(self, key_id: str | None) -> list[SigningKey]:
        if key_id is None:
            return list(self._keys)
        return [key for key in self._keys if key.key_id == key_id]

    async def _refresh(self, seen_generation: int) -> None:
        async with self._lock:
            if self._generation != seen_generation:
                return  # another request refreshed while this one waited
            if time.monotonic() - self._attempted_at < self._config.min_refresh_interval_s:
                if not self._keys:
                    raise AuthUnavailable(
                        "the identity provider's signing keys are unavailable",
                        retry_after_s=self._config.min_refresh_interval_s,
                    )
                return
            self._attempted_at = time.monotonic()
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("cannot fetch JWKS from %s: %s", self._config.jwks_url, exc)
                if not self._keys:
                    raise AuthUnavailable(
                        "the identity provider's signing keys are unavailable",
                        retry_after_s=self._config.min_refresh_interval_s,
                    ) from exc
                return  # keep verifying with the keys we have
            self._keys = keys
            self._fetched_at = time.monotonic()
            self._generation += 1
            log.info("fetched %d signing keys from %s", len(keys), self._config.jwks_url)

    async def _fetch(self) -> list[SigningKey]:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._config.fetch_timeout_s, follow_redirects=False)
        body = bytearray()
        async with self._client.stream("GET", self._config.jwks_url) as response:
            response.raise_for_status()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError(f"JWKS is larger than {MAX_JWKS_BYTES} bytes")
        return parse_jwks(bytes(body), self._config.algorithms)


class OidcVerifier:
    """Verifies tokens of one issuer: signature with the issuer's keys, `iss`, `aud`, `exp`, `sub`."""

    def __init__(self, config: OidcIssuer, leeway_s: float) -> None:
        self.config = config
        self._leeway_s = leeway_s
        self._jwks = JwksCache(config)

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt_errors.PyJWTError as exc:
            raise AuthError("token is malformed", reason="malformed") from exc
        key_id = header.get("kid")
        if key_id is not None and not isinstance(key_id, str):
            raise AuthError("token key id must be a string", reason="malformed")
        keys = await self._jwks.keys_for(key_id)
        if not keys:
            raise AuthError("no signing key of the issuer matches the token", reason="unknown_key")
        # Several candidates only when the token names no key id; a wrong one fails its signature.
        for index, key in enumerate(keys):
            try:
                claims = decode_verified(
                    token,
                    key.key,
                    key.algorithm,
                    self._leeway_s,
                    audience=self.config.audience,
                    issuer=self.config.issuer,
                    required=REQUIRED_CLAIMS,
                )
            except AuthError as error:
                if error.reason in ("invalid_signature", "invalid_algorithm") and index + 1 < len(keys):
                    continue
                raise
            return principal_from_claims(claims, self._leeway_s)
        raise AssertionError("unreachable: the last key either returns or raises")

    async def aclose(self) -> None:
        await self._jwks.aclose()
