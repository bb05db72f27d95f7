"""Bearer authentication: one entry point for every kind of credential the gateway accepts.

    Authorization: Bearer <credential>
        llmops_sk_...            an API key            -> credential_cache (auth.db)
        JWT with a configured    an OIDC token         -> oidc.OidcVerifier (issuer's JWKS)
          OIDC `iss`
        any other JWT            our HS256 token       -> jwt_tokens.HS256Verifier (JWT_SECRET)

The `iss` claim is peeked at without verification only to pick the verifier; that verifier
then checks signature, algorithm, issuer and audience itself. Verified JWTs are cached until
they expire, but revocation is checked on every request, cached or not. Every refusal is an
AuthError with a bounded `reason` (the label of llmops_auth_failures_total).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterable

from server.auth.api_keys import looks_like_api_key
from server.auth.credential_cache import CredentialCache
from server.auth.jwt_tokens import HS256Verifier, PreviousSecret, unverified_issuer
from server.auth.oidc import OidcIssuer, OidcVerifier
from server.auth.principal import Principal
from server.errors import AuthError
from server.settings import Settings

_CACHE_LIMIT = 10_000


def bearer_token(authorization: str | None) -> str:
    """The credential of an `Authorization: Bearer ...` header value, or AuthError."""
    if not authorization:
        raise AuthError("missing bearer token", reason="missing")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        raise AuthError("authorization scheme must be Bearer", reason="scheme")
    token = token.strip()
    if not token:
        raise AuthError("empty bearer token", reason="missing")
    return token


def bearer_matches(authorization: str | None, expected: str) -> bool:
    """Whether the header carries exactly the static bearer `expected` (scrape and webhook tokens).

    Compared as bytes in constant time: `hmac.compare_digest` raises on non-ASCII str, which a
    client controls.
    """
    scheme, _, presented = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), expected.encode())


class Authenticator:
    """Turns an `Authorization` header into a Principal, or raises AuthError."""

    def __init__(
        self,
        hs256: HS256Verifier,
        credentials: CredentialCache,
        oidc: Iterable[OidcVerifier] = (),
    ) -> None:
        self._hs256 = hs256
        self._credentials = credentials
        self._oidc = {verifier.config.issuer: verifier for verifier in oidc}
        self._verified: dict[str, Principal] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal for an `Authorization` header value, or AuthError."""
        token = bearer_token(authorization)
        await self._credentials.refresh()
        if looks_like_api_key(token):
            return self._credentials.principal_for_api_key(token)

        principal = self._verified.get(token)
        if principal is None or principal.expires_at <= time.time():
            self._verified.pop(token, None)
            principal = await self._verify_jwt(token)
            if len(self._verified) >= _CACHE_LIMIT:
                self._verified.clear()
            self._verified[token] = principal
        if principal.jti is not None and self._credentials.is_revoked(principal.jti):
            raise AuthError("token has been revoked", reason="revoked")
        return principal

    async def _verify_jwt(self, token: str) -> Principal:
        if self._oidc:
            verifier = self._oidc.get(unverified_issuer(token) or "")
            if verifier is not None:
                return await verifier.verify(token)
        return self._hs256.verify(token)

    async def aclose(self) -> None:
        for verifier in self._oidc.values():
            await verifier.aclose()
        self._credentials.close()


def build_authenticator(settings: Settings) -> Authenticator:
    """The authenticator `settings` describe; ConfigError or StorageError before anything listens."""
    previous_secret = settings.previous_jwt_secret()
    previous = (
        None
        if previous_secret is None
        else PreviousSecret(previous_secret[0], previous_secret[1].timestamp())
    )
    oidc = []
    if settings.oidc_issuer is not None:
        oidc.append(
            OidcVerifier(
                OidcIssuer(
                    issuer=settings.oidc_issuer,
                    audience=settings.oidc_audience or "",
                    jwks_url=settings.oidc_jwks_url or "",
                    algorithms=tuple(settings.oidc_algorithms),
                    cache_ttl_s=settings.oidc_jwks_cache_ttl_s,
                    min_refresh_interval_s=settings.oidc_jwks_min_refresh_interval_s,
                ),
                settings.jwt_leeway_s,
            )
        )
    return Authenticator(
        HS256Verifier(settings.require_jwt_secret(), settings.jwt_leeway_s, previous),
        CredentialCache(settings.auth_db_path),
        oidc,
    )
