from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Gateway

pytest_plugins = ["tests.mounts"]  # the `mounts` fixture


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's settings, secrets or data directory."""
    import os

    for key in list(os.environ):
        if key.startswith("LLMOPS_") or key in ("JWT_SECRET", "GRAFANA_ADMIN_PASSWORD"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One real gateway per test module (tests use deltas or their own principals)."""
    gw = Gateway(tmp_path_factory.mktemp("gw")).start()
    yield gw
    gw.stop()


@pytest.fixture
def fresh_gateway(tmp_path: Path) -> Iterator[Gateway]:
    """A gateway of the test's own, for exact totals."""
    gw = Gateway(tmp_path / "gw").start()
    yield gw
    gw.stop()
