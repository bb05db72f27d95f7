"""The gateway's in-memory view of `<data>/auth.db`, current as of the last commit by any process.

Every request asks SQLite for `PRAGMA data_version` on one persistent connection: in WAL mode
that reads the shared-memory index, no disk I/O, and the value changes whenever another
connection (the CLI revoking a key, another worker) has committed. Only then are the keys and
revoked token ids reloaded, in a worker thread. So a revocation takes effect on the very next
request in every gateway process, and the hot path stays in memory.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path

from server.auth.api_keys import epoch_of, hash_key
from server.auth.auth_db import Credentials, load_credentials, open_auth_db
from server.auth.principal import Principal
from server.errors import AuthError, AuthUnavailable
from server.usage.store import connect

log = logging.getLogger(__name__)


class CredentialCache:
    """API keys and revoked token ids, reloaded when auth.db changed."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._watch = open_auth_db(path)
        self._version = self._data_version()
        self._credentials = load_credentials(self._watch)
        self._reload_lock = asyncio.Lock()

    def _data_version(self) -> int:
        return int(self._watch.execute("PRAGMA data_version").fetchone()[0])

    async def refresh(self) -> None:
        """Reload if another connection committed since the last load; fails closed (503) on errors."""
        try:
            if self._data_version() == self._version:
                return
            async with self._reload_lock:
                version = self._data_version()
                if version == self._version:
                    return  # another request reloaded while this one waited
                # Read after `version`, so the snapshot is at least that new; a commit in between
                # only causes one more reload on the next request.
                self._credentials = await asyncio.to_thread(self._load)
                self._version = version
        except sqlite3.Error as exc:
            log.error("cannot read the auth database %s: %s", self._path, exc)
            raise AuthUnavailable(
                "credentials cannot be checked right now", reason="auth_db_unavailable"
            ) from exc

    def _load(self) -> Credentials:
        conn = connect(self._path, readonly=True)
        try:
            return load_credentials(conn)
        finally:
            conn.close()

    def principal_for_api_key(self, key: str) -> Principal:
        """The principal of an API key, or AuthError when it is unknown, revoked or expired."""
        record = self._credentials.keys_by_hash.get(hash_key(key))
        if record is None:
            raise AuthError("unknown API key", reason="unknown_api_key")
        if record.revoked_at is not None:
            raise AuthError("API key has been revoked", reason="revoked")
        expires_at = epoch_of(record.expires_at)
        if expires_at <= time.time():
            raise AuthError("API key expired", reason="expired")
        return Principal(subject=record.user, expires_at=expires_at, key_id=record.id, scopes=record.scopes)

    def is_revoked(self, jti: str) -> bool:
        return jti in self._credentials.revoked_jtis

    def close(self) -> None:
        self._watch.close()
