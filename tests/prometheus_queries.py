"""Asking a test stack's Prometheus over its HTTP API on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from stack.config import StackConfig


def prometheus_api(config: StackConfig, path: str, **params: Any) -> Any:
    """GET a Prometheus HTTP API path on 127.0.0.1 and return its ``data``."""
    response = httpx.get(f"{config.url('prometheus')}{path}", params=params, timeout=10, trust_env=False)
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]


def query(config: StackConfig, promql: str, at: float | None = None) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"query": promql}
    if at is not None:
        params["time"] = f"{at:.3f}"
    return prometheus_api(config, "/api/v1/query", **params)["result"]


def wait_for(check: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.5)
