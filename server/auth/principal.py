"""Who is calling: the principal a verified credential stands for."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The scope that lets a principal read other principals' usage (e.g. GET /admin/usage).
ADMIN_SCOPE = "llmops:admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller: its subject, and what the credential carried that the gateway checks or records."""

    subject: str
    # Refused from this moment (epoch seconds, any leeway included); inf for a key that never expires.
    expires_at: float = math.inf
    jti: str | None = None
    key_id: str | None = None
    scopes: frozenset[str] = frozenset()

    @property
    def is_admin(self) -> bool:
        return ADMIN_SCOPE in self.scopes


def scopes_from_claims(claims: Mapping[str, Any]) -> frozenset[str]:
    """OAuth scopes of a token: a space-separated `scope` (RFC 8693) or an `scp` list (Entra ID, Okta)."""
    found: set[str] = set()
    scope = claims.get("scope")
    if isinstance(scope, str):
        found.update(scope.split())
    scp = claims.get("scp")
    if isinstance(scp, str):
        found.update(scp.split())
    elif isinstance(scp, list):
        found.update(s for s in scp if isinstance(s, str))
    return frozenset(found)
