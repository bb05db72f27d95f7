"""The two questions the CLI asks Prometheus: what does it scrape, and what does a query return."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

GATEWAY_JOB = "llmops"  # the scrape job of stack/config/prometheus.yml
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _same_endpoint(scrape_url: str, gateway_url: str) -> bool:
    scraped, gateway = urlsplit(scrape_url), urlsplit(gateway_url)
    if scraped.port != gateway.port:
        return False
    return scraped.hostname == gateway.hostname or {scraped.hostname, gateway.hostname} <= _LOOPBACK


def gateway_target(prometheus_url: str, gateway_url: str, timeout: float = 5.0) -> dict[str, Any] | None:
    """Prometheus's active target for the gateway (by address, else the llmops job); None when absent.

    Raises httpx.HTTPError when Prometheus does not answer.
    """
    import httpx

    response = httpx.get(f"{prometheus_url}/api/v1/targets", params={"state": "active"}, timeout=timeout)
    response.raise_for_status()
    targets: list[dict[str, Any]] = response.json()["data"]["activeTargets"]
    by_address = [t for t in targets if _same_endpoint(t.get("scrapeUrl", ""), gateway_url)]
    by_job = [t for t in targets if t.get("labels", {}).get("job") == GATEWAY_JOB]
    candidates = by_address or by_job
    up = [t for t in candidates if t.get("health") == "up"]
    ranked = up or candidates
    return ranked[0] if ranked else None


def query(prometheus_url: str, promql: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The instant vector `promql` evaluates to (empty when it has no data)."""
    import httpx

    response = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": promql}, timeout=timeout)
    response.raise_for_status()
    return response.json()["data"]["result"]  # type: ignore[no-any-return]
