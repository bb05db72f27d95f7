"""Bearer authentication: HS256 JWTs signed with JWT_SECRET, on a fixed algorithm list.

The principal is the token's `sub`. Anything wrong is an AuthError (401 with
WWW-Authenticate: Bearer) whose `reason` is a small fixed label for metrics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt
from jwt import exceptions as jwt_errors

from server.errors import AuthError

# Never taken from the token's header: a token that names another algorithm is refused.
ALGORITHMS = ["HS256"]
_CACHE_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's subject, and what the token carried that the gateway records."""

    subject: str
    expires_at: float
    jti: str | None = None


class Authenticator:
    """Verifies bearer tokens; verified tokens are cached until they expire."""

    def __init__(self, secret: str, leeway_s: float = 5.0) -> None:
        self._secret = secret
        self._leeway_s = leeway_s
        self._verified: dict[str, Principal] = {}

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal for an `Authorization` header value, or AuthError."""
        if not authorization:
            raise AuthError("missing bearer token", reason="missing")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            raise AuthError("authorization scheme must be Bearer", reason="scheme")
        token = token.strip()
        if not token:
            raise AuthError("empty bearer token", reason="missing")

        principal = self._verified.get(token)
        if principal is not None:
            if principal.expires_at + self._leeway_s > time.time():
                return principal
            del self._verified[token]
        principal = self._verify(token)
        if len(self._verified) >= _CACHE_LIMIT:
            self._verified.clear()
        self._verified[token] = principal
        return principal

    def _verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=ALGORITHMS,
                leeway=self._leeway_s,
                options={"require": ["exp", "sub"]},
            )
        except jwt_errors.ExpiredSignatureError as exc:
            raise AuthError("token expired", reason="expired") from exc
        except jwt_errors.InvalidSignatureError as exc:
            raise AuthError("token signature is invalid", reason="invalid_signature") from exc
        except jwt_errors.InvalidAlgorithmError as exc:
            raise AuthError("token algorithm is not allowed", reason="invalid_algorithm") from exc
        except (jwt_errors.MissingRequiredClaimError, jwt_errors.InvalidSubjectError) as exc:
            # PyJWT refuses a non-string `sub`: a numeric subject is a 401, documented in README.
            raise AuthError(f"token claims are invalid: {exc}", reason="invalid_claims") from exc
        except (jwt_errors.ImmatureSignatureError, jwt_errors.InvalidIssuedAtError) as exc:
            raise AuthError("token is not valid yet", reason="not_yet_valid") from exc
        except jwt_errors.PyJWTError as exc:
            raise AuthError("token is malformed", reason="malformed") from exc
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise AuthError("token subject must be a non-empty string", reason="invalid_claims")
        return Principal(subject=subject, expires_at=float(claims["exp"]), jti=claims.get("jti"))


def mint_token(secret: str, subject: str, ttl_s: float, jti: str | None = None) -> str:
    """An HS256 token for `subject`, valid for `ttl_s` seconds."""
    now = int(time.time())
    claims: dict[str, object] = {"sub": subject, "iat": now, "exp": now + int(ttl_s)}
    if jti is not None:
        claims["jti"] = jti
    return jwt.encode(claims, secret, algorithm=ALGORITHMS[0])
