"""Long-lived API keys: opaque `llmops_sk_<random>` bearers, stored only as a hash.

A key has 256 random bits, so a plain SHA-256 of it is enough to store (no salt or slow hash:
nothing can be guessed). Its id (`key_...`) is what the CLI shows, revokes and the usage log records.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

KEY_PREFIX = "llmops_sk_"
# Shown by `llmops keys list` to tell keys apart: the prefix and 4 of the 43 random characters.
SHOWN_PREFIX_LENGTH = len(KEY_PREFIX) + 4


def generate_key() -> str:
    """A new secret key (shown to the user once, never stored)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def hash_key(key: str) -> str:
    """What the database stores and the gateway looks keys up by."""
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_api_key(bearer: str) -> bool:
    return bearer.startswith(KEY_PREFIX)


def epoch_of(iso: str | None) -> float:
    """Epoch seconds of a stored UTC ISO-8601 time; inf for None (never)."""
    return math.inf if iso is None else datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's metadata (never its secret)."""

    id: str
    user: str
    name: str | None
    prefix: str
    scopes: frozenset[str]
    created_at: str
    expires_at: str | None = None
    revoked_at: str | None = None

    def status(self, now: float) -> str:
        """`active`, `expired` or `revoked`."""
        if self.revoked_at is not None:
            return "revoked"
        if epoch_of(self.expires_at) <= now:
            return "expired"
        return "active"

    def as_dict(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "name": self.name,
            "prefix": self.prefix,
            "scopes": sorted(self.scopes),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "status": self.status(now),
        }
