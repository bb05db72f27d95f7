"""`<data>/auth.db`: API keys (hashes only) and revoked token ids.

A SQLite file of its own, apart from the usage log, written by the CLI (`llmops keys ...`,
`llmops token revoke`) and read by every gateway process. WAL mode lets the gateways read
while the CLI writes; `credential_cache.CredentialCache` notices each commit.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from server.auth.api_keys import SHOWN_PREFIX_LENGTH, ApiKey, generate_key, hash_key, new_key_id
from server.errors import StorageError, UnknownCredential
from server.usage.row import utc_now_iso
from server.usage.schema import migrate
from server.usage.store import connect

# (name, SQL). Never edit or reorder an applied migration: append a new one.
MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_api_keys_and_revoked_tokens",
        """
        CREATE TABLE api_keys (
            id          TEXT PRIMARY KEY,
            key_hash    TEXT NOT NULL UNIQUE,
            prefix      TEXT NOT NULL,
            user        TEXT NOT NULL,
            name        TEXT,
            scopes      TEXT NOT NULL DEFAULT '',
            created_at  TEXT NOT NULL,
            expires_at  TEXT,
            revoked_at  TEXT
        );
        CREATE TABLE revoked_tokens (
            jti         TEXT PRIMARY KEY,
            revoked_at  TEXT NOT NULL,
            expires_at  TEXT
        )
        """,
    ),
]

# Longer than any JWT leeway: a revoked token stays denied until well after it expired.
REVOCATION_MARGIN_S = 300
_KEY_COLUMNS = "id, user, name, prefix, scopes, created_at, expires_at, revoked_at"


@dataclass(frozen=True)
class Credentials:
    """Everything the gateway checks per request, read in one transaction."""

    keys_by_hash: dict[str, ApiKey] = field(default_factory=dict)
    revoked_jtis: frozenset[str] = frozenset()


def open_auth_db(path: Path) -> sqlite3.Connection:
    """Create (mode 0600), switch to WAL and migrate `path`; a connection in autocommit mode."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)  # SQLite gives -wal and -shm the database's mode
        conn = connect(path)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        migrate(conn, MIGRATIONS)
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(f"auth database {path} cannot be opened: {exc}") from exc
    return conn


def _api_key(row: tuple[str, ...]) -> ApiKey:
    key_id, user, name, prefix, scopes, created_at, expires_at, revoked_at = row
    return ApiKey(key_id, user, name, prefix, frozenset(scopes.split()), created_at, expires_at, revoked_at)


def _iso(epoch_s: float) -> str:
    """UTC ISO-8601 in the usage log's format (`utc_now_iso`), so stored times compare as text."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def create_api_key(
    conn: sqlite3.Connection,
    user: str,
    name: str | None = None,
    ttl_s: float | None = None,
    scopes: frozenset[str] = frozenset(),
) -> tuple[ApiKey, str]:
    """A new key for `user`: its metadata and its secret, which exists nowhere else afterwards."""
    secret = generate_key()
    key = ApiKey(
        id=new_key_id(),
        user=user,
        name=name,
        prefix=secret[:SHOWN_PREFIX_LENGTH],
        scopes=scopes,
        created_at=utc_now_iso(),
        expires_at=None if ttl_s is None else _iso(time.time() + ttl_s),
    )
    conn.execute(
        "INSERT INTO api_keys (id, key_hash, prefix, user, name, scopes, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            key.id,
            hash_key(secret),
            key.prefix,
            key.user,
            key.name,
            " ".join(sorted(scopes)),
            key.created_at,
            key.expires_at,
        ),
    )
    return key, secret


def list_api_keys(conn: sqlite3.Connection) -> list[ApiKey]:
    """Every key, oldest first, revoked and expired ones included."""
    return [_api_key(row) for row in conn.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY rowid")]


def revoke_api_key(conn: sqlite3.Connection, key_id: str) -> ApiKey:
    """Revoke `key_id` (a no-op for one already revoked); the key as it is now."""
    conn.execute(
        "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (utc_now_iso(), key_id)
    )
    row = conn.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)).fetchone()
    if row is None:
        raise UnknownCredential(f"no API key with id {key_id!r}")
    return _api_key(row)


def revoke_token(conn: sqlite3.Connection, jti: str, expires_at: float | None = None) -> bool:
    """Deny the token whose `jti` this is; False when it was already revoked."""
    cursor = conn.execute(
        "INSERT OR IGNORE INTO revoked_tokens (jti, revoked_at, expires_at) VALUES (?, ?, ?)",
        (jti, utc_now_iso(), None if expires_at is None else _iso(expires_at)),
    )
    return cursor.rowcount == 1


def load_credentials(conn: sqlite3.Connection) -> Credentials:
    """The keys and revoked token ids, as one consistent snapshot."""
    conn.execute("BEGIN")
    try:
        keys = conn.execute(f"SELECT key_hash, {_KEY_COLUMNS} FROM api_keys").fetchall()
        # A revoked token id matters only until the token expires (plus any leeway); NULL: for ever.
        jtis = conn.execute(
            "SELECT jti FROM revoked_tokens WHERE expires_at IS NULL OR expires_at > ?",
            (_iso(time.time() - REVOCATION_MARGIN_S),),
        ).fetchall()
    finally:
        conn.execute("COMMIT")
    return Credentials(
        keys_by_hash={row[0]: _api_key(row[1:]) for row in keys},
        revoked_jtis=frozenset(row[0] for row in jtis),
    )
