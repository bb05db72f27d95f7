"""The one HTTP client every provider shares for upstream calls.

aiohttp rather than httpx on the hot path: measured under concurrency 50, an httpx
pass-through collapses (its pool checks every pooled connection per request) while
aiohttp keeps up (bench/RESULTS.md has the figures).
"""

from __future__ import annotations

import aiohttp

from server.errors import ConfigError


class UpstreamClient:
    """Holds the shared `aiohttp.ClientSession`, opened and closed with the app's lifespan."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=30)
        # Timeouts are per model, set on each request; no session-wide total.
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None),
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
            raise_for_status=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise ConfigError("the upstream client is not started")
        return self._session
