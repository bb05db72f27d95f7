"""JWTs: our own HS256 tokens (minted by `llmops token`), and what every JWT check shares.

The algorithm list is fixed per kind of credential and never read from the token's header: a
token naming another algorithm (`none`, HS512, RS256 over our HMAC secret ...) is refused.
During a secret rotation the previous secret is accepted for verification until a set time,
while new tokens are signed with the current one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import exceptions as jwt_errors

from server.auth.principal import Principal, scopes_from_claims
from server.errors import AuthError

HS256 = "HS256"
MAX_SUBJECT_LENGTH = 256
REQUIRED_CLAIMS = ["exp", "sub"]


@dataclass(frozen=True, slots=True)
class PreviousSecret:
    """A secret being rotated out: tokens it signed are accepted until `until` (epoch seconds)."""

    value: str
    until: float


def auth_error_for(exc: Exception) -> AuthError:
    """The AuthError (with its bounded metric reason) for a failed PyJWT decode."""
    if isinstance(exc, jwt_errors.ExpiredSignatureError):
        return AuthError("token expired", reason="expired")
    if isinstance(exc, jwt_errors.ImmatureSignatureError):
        return AuthError("token is not valid yet (nbf or iat in the future)", reason="not_yet_valid")
    if isinstance(exc, jwt_errors.InvalidSignatureError):
        return AuthError("token signature is invalid", reason="invalid_signature")
    if isinstance(exc, jwt_errors.InvalidAlgorithmError):
        return AuthError("token algorithm is not allowed", reason="invalid_algorithm")
    if isinstance(exc, jwt_errors.InvalidAudienceError):
        return AuthError("token audience is not accepted", reason="invalid_audience")
    if isinstance(exc, jwt_errors.InvalidIssuerError):
        return AuthError("token issuer is not accepted", reason="invalid_issuer")
    if isinstance(
        exc,
        jwt_errors.MissingRequiredClaimError
        | jwt_errors.InvalidSubjectError
        | jwt_errors.InvalidIssuedAtError
        | jwt_errors.InvalidJTIError,
    ):
        # PyJWT refuses a non-string `sub`: a numeric subject is a 401 (documented in README).
        return AuthError(f"token claims are invalid: {exc}", reason="invalid_claims")
    return AuthError("token is malformed", reason="malformed")


def decode_verified(
    token: str,
    key: Any,
    algorithm: str,
    leeway_s: float,
    *,
    audience: str | None = None,
    issuer: str | None = None,
    required: Iterable[str] = REQUIRED_CLAIMS,
) -> dict[str, Any]:
    """The claims of `token`, verified with `key` under exactly one `algorithm`, or AuthError."""
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=audience,
            issuer=issuer,
            leeway=leeway_s,
            options={"require": list(required)},
        )
    except jwt_errors.PyJWTError as exc:
        raise auth_error_for(exc) from exc
    except (ValueError, TypeError, KeyError) as exc:
        # A crafted token must never become a 500.
        raise AuthError("token is malformed", reason="malformed") from exc


def principal_from_claims(
    claims: Mapping[str, Any], leeway_s: float, not_after: float = math.inf
) -> Principal:
    """The principal of verified `claims`: accepted until `exp` + leeway, never after `not_after`."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip() or len(subject) > MAX_SUBJECT_LENGTH:
        raise AuthError(
            f"token subject must be a non-empty string of at most {MAX_SUBJECT_LENGTH} characters",
            reason="invalid_claims",
        )
    jti = claims.get("jti")
    return Principal(
        subject=subject,
        expires_at=min(float(claims["exp"]) + leeway_s, not_after),
        jti=jti if isinstance(jti, str) and jti else None,
        scopes=scopes_from_claims(claims),
    )


def unverified_issuer(token: str) -> str | None:
    """The `iss` claim read WITHOUT verification: only to pick the verifier that then checks everything."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except (jwt_errors.PyJWTError, ValueError, TypeError):
        return None
    issuer = claims.get("iss")
    return issuer if isinstance(issuer, str) else None


class HS256Verifier:
    """Verifies our own tokens with JWT_SECRET, or with the previous secret until its grace period ends."""

    def __init__(self, secret: str, leeway_s: float, previous: PreviousSecret | None = None) -> None:
        self._secret = secret
        self._leeway_s = leeway_s
        self._previous = previous

    def verify(self, token: str) -> Principal:
        try:
            claims = decode_verified(token, self._secret, HS256, self._leeway_s)
            return principal_from_claims(claims, self._leeway_s)
        except AuthError as error:
            previous = self._previous
            if error.reason != "invalid_signature" or previous is None or previous.until <= time.time():
                raise
        claims = decode_verified(token, previous.value, HS256, self._leeway_s)
        return principal_from_claims(claims, self._leeway_s, not_after=previous.until)


def mint_token(
    secret: str, subject: str, ttl_s: float, jti: str | None = None, scopes: Iterable[str] = ()
) -> str:
    """An HS256 token for `subject`, valid for `ttl_s` seconds, with `scope` when `scopes` is not empty."""
    now = int(time.time())
    claims: dict[str, object] = {"sub": subject, "iat": now, "exp": now + int(ttl_s)}
    if jti is not None:
        claims["jti"] = jti
    scope = " ".join(scopes)
    if scope:
        claims["scope"] = scope
    return jwt.encode(claims, secret, algorithm=HS256)
