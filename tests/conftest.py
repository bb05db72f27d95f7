"""Shared fixtures: an isolated environment for every test, real gateways, and isolated Docker stacks.

Stack tests run against the real Docker engine with the local images of tests/images.py. Each test gets
a stack of its own: a project label and name prefix unique to the test session, free ports on 127.0.0.1,
and a data directory under tmp_path. Whatever a test creates is removed by label afterwards, even when
it fails.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stack.config import StackConfig
from tests.harness import Gateway

pytest_plugins = ["tests.mounts"]  # the `mounts` fixture

SESSION_PROJECT = f"llmops-test-{uuid.uuid4().hex[:8]}"
"""Prefix of the project label of every stack this test session creates."""

TEST_WEBHOOK_TOKEN = "test-webhook-token-" + "w" * 40


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 (held open together so they cannot repeat)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def rendered_alerting_files(gateway_port: int) -> dict[str, str]:
    """The shipped alert rules and Alertmanager config rendered with default settings, as `llmops up` does."""
    from stack.alerting import (
        AlertReceiverSettings,
        AlertRuleSettings,
        render_alertmanager_config,
        render_rules,
    )

    webhook = f"http://127.0.0.1:{gateway_port}/alerts/webhook"
    return {
        "prometheus/rules/llmops_alerts.yml": render_rules(AlertRuleSettings()),
        "alertmanager/alertmanager.yml": render_alertmanager_config(
            AlertReceiverSettings(), webhook, TEST_WEBHOOK_TOKEN
        ),
    }


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


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    from stack.engine import PROJECT_LABEL, connect
    from stack.errors import DockerUnavailable

    try:
        client = connect()
    except DockerUnavailable as exc:
        pytest.fail(f"{exc.message}; run `bash tests/provision.sh` as root first", pytrace=False)
    yield client
    # Safety net for objects a crashed test could not clean up: everything of this session, by label.
    leftovers = [
        *[(c, {"force": True}) for c in client.containers.list(all=True)],
        *[(v, {}) for v in client.volumes.list()],
        *[(n, {}) for n in client.networks.list()],
    ]
    for item, options in leftovers:
        labels = item.attrs.get("Labels") or item.attrs.get("Config", {}).get("Labels") or {}
        if labels.get(PROJECT_LABEL, "").startswith(SESSION_PROJECT):
            with contextlib.suppress(Exception):
                item.remove(**options)
    client.close()


@pytest.fixture(scope="session")
def test_images(docker_client: Any) -> dict[str, str]:
    from tests.images import build_test_images

    return build_test_images(docker_client)


@pytest.fixture
def make_stack_config(tmp_path: Any, test_images: dict[str, str]) -> Iterator[Callable[..., StackConfig]]:
    """Build an isolated StackConfig (override any field by keyword); its objects are nuked afterwards."""
    from stack.lifecycle import nuke
    from tests.images import ALERTMANAGER_IMAGE, GRAFANA_STANDIN_IMAGE, PROMETHEUS_IMAGE

    made: list[StackConfig] = []

    def make(**overrides: Any) -> StackConfig:
        project = f"{SESSION_PROJECT}-{uuid.uuid4().hex[:6]}"
        prometheus_port, alertmanager_port, grafana_port, gateway_port = free_ports(4)
        values: dict[str, Any] = {
            "data_dir": tmp_path / f"data-{len(made)}",
            "project": project,
            "name_prefix": f"{project}-",
            "prometheus_port": prometheus_port,
            "alertmanager_port": alertmanager_port,
            "grafana_port": grafana_port,
            "gateway_port": gateway_port,
            "prometheus_image": PROMETHEUS_IMAGE,
            "alertmanager_image": ALERTMANAGER_IMAGE,
            "grafana_image": GRAFANA_STANDIN_IMAGE,
            "grafana_admin_password": secrets.token_urlsafe(18),
            "scrape_interval": "1s",
            "health_timeout": 60.0,
        }
        values.update(overrides)
        values.setdefault("rendered_files", rendered_alerting_files(values["gateway_port"]))
        config = StackConfig(**values)
        made.append(config)
        return config

    yield make
    for config in made:
        nuke(config)
