"""The stack against a real Docker engine, real Prometheus and real Alertmanager (Debian's, in local images).

Every request goes to 127.0.0.1; every stack is isolated by its own project label and name prefix.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pty
import select
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from stack.config import COMPONENTS, StackConfig
from stack.container_logs import read_logs
from stack.engine import COMPONENT_LABEL, PROJECT_LABEL, SPEC_HASH_LABEL, find_containers, find_volumes
from stack.errors import ComponentUnhealthy
from stack.lifecycle import down, nuke, reset_prometheus, status, up
from tests.harness import Gateway, free_port
from tests.images import GRAFANA_STANDIN_IMAGE
from tests.prometheus_queries import prometheus_api, query, wait_for

MakeConfig = Callable[..., StackConfig]


def container_ids(docker_client: Any, config: StackConfig) -> dict[str, str]:
    return {c.labels[COMPONENT_LABEL]: c.id for c in find_containers(docker_client, config)}


def test_up_from_nothing_starts_every_component_on_loopback(
    make_stack_config: MakeConfig, docker_client: Any
) -> None:
    config = make_stack_config()

    changes = up(config)

    assert [(c.component, c.action) for c in changes] == [(name, "created") for name in COMPONENTS]
    assert {c.component: c.url for c in changes} == {
        "prometheus": f"http://127.0.0.1:{config.prometheus_port}",
        "alertmanager": f"http://127.0.0.1:{config.alertmanager_port}",
        "grafana": f"http://127.0.0.1:{config.grafana_port}",
    }
    containers = {c.labels[COMPONENT_LABEL]: c for c in find_containers(docker_client, config)}
    assert sorted(containers) == sorted(COMPONENTS)
    for component, container in containers.items():
        assert container.name == f"{config.name_prefix}{component}"
        assert container.labels[PROJECT_LABEL] == config.project
        assert len(container.labels[SPEC_HASH_LABEL]) == 64
        assert container.attrs["HostConfig"]["NetworkMode"] == "host"
    volumes = sorted(v.name for v in find_volumes(docker_client, config))
    assert volumes == sorted(f"{config.name_prefix}{c}-data" for c in COMPONENTS)

    flags = prometheus_api(config, "/api/v1/status/flags")
    assert flags["web.listen-address"] == f"127.0.0.1:{config.prometheus_port}"
    assert flags["storage.tsdb.path"] == "/prometheus"
    loaded = prometheus_api(config, "/api/v1/status/config")["yaml"]
    assert f"127.0.0.1:{config.gateway_port}" in loaded
    assert "/etc/prometheus/rules/*.yml" in loaded
    alertmanagers = wait_for(
        lambda: prometheus_api(config, "/api/v1/alertmanagers")["activeAlertmanagers"],
        what="Prometheus to discover the Alertmanager",
    )
    assert alertmanagers == [{"url": f"http://127.0.0.1:{config.alertmanager_port}/api/v2/alerts"}]

    am_status = httpx.get(f"{config.url('alertmanager')}/api/v2/status", timeout=10, trust_env=False).json()
    assert f"url: http://127.0.0.1:{config.gateway_port}/alerts/webhook" in am_status["config"]["original"]
    rule_groups = prometheus_api(config, "/api/v1/rules")["groups"]
    assert rule_groups and all(group["file"].startswith("/etc/prometheus/rules/") for group in rule_groups)
    assert stat.S_IMODE(config.files_dir.stat().st_mode) == 0o700

    grafana = containers["grafana"]
    environment = dict(item.split("=", 1) for item in grafana.attrs["Config"]["Env"])
    assert environment["GF_SERVER_HTTP_ADDR"] == "127.0.0.1"
    assert environment["GF_SERVER_HTTP_PORT"] == str(config.grafana_port)
    assert environment["GF_SECURITY_ADMIN_PASSWORD"] == config.grafana_admin_password
    assert environment["LLMOPS_PROMETHEUS_URL"] == f"http://127.0.0.1:{config.prometheus_port}"
    mounts = {m["Destination"]: m for m in grafana.attrs["Mounts"]}
    assert mounts["/etc/grafana/provisioning"]["RW"] is False
    assert mounts["/var/lib/grafana"]["Name"] == f"{config.name_prefix}grafana-data"
    health = httpx.get(config.health_url("grafana"), timeout=10, trust_env=False)
    assert health.json()["database"] == "ok"


def test_up_twice_changes_nothing(make_stack_config: MakeConfig, docker_client: Any) -> None:
    config = make_stack_config()
    up(config)
    before = container_ids(docker_client, config)
    written = {p: p.stat().st_mtime_ns for p in config.files_dir.rglob("*") if p.is_file()}

    changes = up(config)

    assert [c.action for c in changes] == ["unchanged"] * len(COMPONENTS)
    assert container_ids(docker_client, config) == before
    assert {p: p.stat().st_mtime_ns for p in config.files_dir.rglob("*") if p.is_file()} == written


def test_a_changed_setting_recreates_only_the_container_it_affects(
    make_stack_config: MakeConfig, docker_client: Any
) -> None:
    config = make_stack_config()
    up(config)
    first = container_ids(docker_client, config)

    # The gateway's address lives in prometheus.yml only, so only Prometheus depends on it.
    moved = dataclasses.replace(config, gateway_port=config.gateway_port + 1)
    changes = {c.component: c.action for c in up(moved)}

    assert changes == {"prometheus": "recreated", "alertmanager": "unchanged", "grafana": "unchanged"}
    second = container_ids(docker_client, config)
    assert second["prometheus"] != first["prometheus"]
    assert {k: second[k] for k in ("alertmanager", "grafana")} == {
        k: first[k] for k in ("alertmanager", "grafana")
    }
    assert f"127.0.0.1:{config.gateway_port + 1}" in prometheus_api(config, "/api/v1/status/config")["yaml"]

    # A mounted file that changes recreates its container, here the Alertmanager.
    rerouted = dataclasses.replace(
        moved,
        rendered_files={
            **moved.rendered_files,
            "alertmanager/alertmanager.yml": "route:\n  receiver: other\nreceivers:\n  - name: other\n",
        },
    )
    changes = {c.component: c.action for c in up(rerouted)}

    assert changes == {"prometheus": "unchanged", "alertmanager": "recreated", "grafana": "unchanged"}
    third = container_ids(docker_client, config)
    assert third["alertmanager"] != second["alertmanager"]
    assert {k: third[k] for k in ("prometheus", "grafana")} == {
        k: second[k] for k in ("prometheus", "grafana")
    }


def test_down_then_up_keeps_prometheus_data(make_stack_config: MakeConfig, docker_client: Any) -> None:
    config = make_stack_config()
    up(config)
    wait_for(lambda: query(config, 'up{job="prometheus"} == 1'), what="Prometheus to scrape itself")
    scraped_at = time.time()
    volume_before = docker_client.volumes.get(f"{config.name_prefix}prometheus-data").attrs["CreatedAt"]

    stopped = down(config)

    assert sorted(stopped) == sorted(f"{config.name_prefix}{c}" for c in COMPONENTS)
    assert [(row.state, row.healthy) for row in status(config)] == [("exited", None)] * len(COMPONENTS)

    changes = up(config)

    assert [c.action for c in changes] == ["started"] * len(COMPONENTS)
    assert (
        docker_client.volumes.get(f"{config.name_prefix}prometheus-data").attrs["CreatedAt"] == volume_before
    )
    kept = query(config, 'up{job="prometheus"}', at=scraped_at)
    assert [sample["value"][1] for sample in kept] == ["1"]


def test_reset_leaves_an_empty_tsdb(make_stack_config: MakeConfig) -> None:
    config = make_stack_config()
    up(config)
    wait_for(lambda: query(config, 'up{job="prometheus"} == 1'), what="Prometheus to scrape itself")
    before_reset = time.time()
    assert query(config, 'up{job="prometheus"}', at=before_reset) != []
    assert prometheus_api(config, "/api/v1/status/tsdb")["headStats"]["numSeries"] > 0

    change = reset_prometheus(config)

    assert change is not None and change.action == "created"
    # Prometheus scrapes again right away, so "empty" means: nothing from before the reset survives.
    assert query(config, 'up{job="prometheus"}', at=before_reset) == []
    assert query(config, "count({__name__=~'.+'})", at=before_reset) == []
    head = prometheus_api(config, "/api/v1/status/tsdb")["headStats"]
    assert head["numSeries"] == 0 or head["minTime"] >= int(before_reset * 1000)


def test_reset_of_a_stopped_prometheus_wipes_without_starting(
    make_stack_config: MakeConfig, docker_client: Any
) -> None:
    config = make_stack_config()
    up(config, ["prometheus"])
    down(config)

    assert reset_prometheus(config) is None

    assert find_containers(docker_client, config, "prometheus") == []
    assert find_volumes(docker_client, config, "prometheus") == []


def test_nuke_removes_every_labelled_object_and_nothing_else(
    make_stack_config: MakeConfig, docker_client: Any
) -> None:
    # Bridge mode, so the stack also has a network to remove; ports are published on 127.0.0.1.
    config = make_stack_config(network_mode="bridge")
    bystander = docker_client.containers.create(GRAFANA_STANDIN_IMAGE, name=f"{config.name_prefix}bystander")
    try:
        changes = up(config)
        assert [c.action for c in changes] == ["created"] * len(COMPONENTS)
        prometheus = docker_client.containers.get(f"{config.name_prefix}prometheus")
        bindings = prometheus.attrs["HostConfig"]["PortBindings"]["9090/tcp"]
        assert bindings == [{"HostIp": "127.0.0.1", "HostPort": str(config.prometheus_port)}]
        assert prometheus.attrs["HostConfig"]["ExtraHosts"] == ["host.docker.internal:host-gateway"]
        assert config.files_dir.is_dir()

        removed = nuke(config)

        prefix = config.name_prefix
        assert sorted(removed) == sorted(
            [f"container {prefix}{c}" for c in COMPONENTS]
            + [f"volume {prefix}{c}-data" for c in COMPONENTS]
            + [f"network {prefix}net", f"files {config.files_dir}"]
        )
        label = {"label": f"{PROJECT_LABEL}={config.project}"}
        assert docker_client.containers.list(all=True, filters=label) == []
        assert docker_client.volumes.list(filters=label) == []
        assert docker_client.networks.list(filters=label) == []
        assert not config.files_dir.exists()
        bystander.reload()
        assert bystander.status == "created"
        assert nuke(config) == []
    finally:
        bystander.remove(force=True)


def test_a_component_that_never_gets_healthy_raises_with_its_logs(make_stack_config: MakeConfig) -> None:
    broken = "route:\n  receiver: nowhere\nreceivers:\n  - name: blackhole\n"
    config = make_stack_config()
    config = dataclasses.replace(
        config, rendered_files={**config.rendered_files, "alertmanager/alertmanager.yml": broken}
    )

    with pytest.raises(ComponentUnhealthy) as raised:
        up(config, ["alertmanager"])

    assert raised.value.component == "alertmanager"
    # Alertmanager logs in logfmt, which escapes the quotes.
    assert r"undefined receiver \"nowhere\" used in route" in raised.value.logs
    assert r"undefined receiver \"nowhere\" used in route" in str(raised.value)
    # A component that failed is stopped, not left crash-looping; its log stays readable.
    assert [row.state for row in status(config) if row.component == "alertmanager"] == ["exited"]
    assert any("undefined receiver" in line for line in read_logs(config, "alertmanager"))


def test_prometheus_on_a_taken_port_fails_with_the_bind_error(make_stack_config: MakeConfig) -> None:
    config = make_stack_config()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", config.prometheus_port))
        squatter.listen()

        with pytest.raises(ComponentUnhealthy) as raised:
            up(config, ["prometheus"])

    assert raised.value.component == "prometheus"
    assert "address already in use" in raised.value.logs


def test_prometheus_scrapes_the_real_gateway(make_stack_config: MakeConfig, fresh_gateway: Gateway) -> None:
    config = make_stack_config(gateway_port=fresh_gateway.port)
    up(config)
    for number in range(5):
        response = httpx.post(
            f"{fresh_gateway.url}/llm",
            json={"prompt": f"scrape me {number}"},
            headers=fresh_gateway.headers("scrape-user"),
        )
        assert response.status_code == 200

    target_up = wait_for(lambda: query(config, 'up{job="llmops"} == 1'), what='up{job="llmops"} == 1')

    assert target_up[0]["metric"]["instance"] == f"127.0.0.1:{fresh_gateway.port}"
    counted = 'sum(llmops_requests_total{job="llmops",user="scrape-user",status="ok"})'
    assert wait_for(
        lambda: [s for s in query(config, counted) if s["value"][1] == "5"], what="the 5 requests counted"
    )


def test_prometheus_scrapes_a_gateway_whose_metrics_want_a_token_on_their_own_port(
    make_stack_config: MakeConfig, tmp_path: Path
) -> None:
    token = "scrape-token-" + "t" * 24
    metrics_port = free_port()
    gateway = Gateway(
        tmp_path / "gw", env={"LLMOPS_METRICS_TOKEN": token, "LLMOPS_METRICS_PORT": str(metrics_port)}
    ).start()
    try:
        config = make_stack_config(
            gateway_port=gateway.port, gateway_metrics_port=metrics_port, gateway_metrics_token=token
        )
        up(config)

        target_up = wait_for(lambda: query(config, 'up{job="llmops"} == 1'), what='up{job="llmops"} == 1')

        assert target_up[0]["metric"]["instance"] == f"127.0.0.1:{metrics_port}"
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).status_code == 401
    finally:
        gateway.stop()


def test_status_and_logs_report_each_component(make_stack_config: MakeConfig) -> None:
    config = make_stack_config()
    assert [row.state for row in status(config)] == ["absent"] * len(COMPONENTS)
    up(config)

    rows = status(config)

    assert [(r.component, r.state, r.healthy) for r in rows] == [(c, "running", True) for c in COMPONENTS]
    logs = list(read_logs(config, "prometheus"))
    assert any("Server is ready to receive web requests." in line for line in logs)
    assert len(list(read_logs(config, "prometheus", tail=3))) == 3
    followed = read_logs(config, "grafana", follow=True)
    assert "grafana-standin: listening on 127.0.0.1" in next(followed)
    followed.close()


def test_shell_is_an_interactive_tty_in_the_container(make_stack_config: MakeConfig) -> None:
    config = make_stack_config()
    up(config, ["prometheus"])
    settings = {
        "data_dir": str(config.data_dir),
        "project": config.project,
        "name_prefix": config.name_prefix,
        "prometheus_port": config.prometheus_port,
    }
    program = (
        "import json, sys; from stack.config import StackConfig; from stack.shell import open_shell; "
        "sys.exit(open_shell(StackConfig(**json.loads(sys.argv[1])), 'prometheus'))"
    )
    controller, terminal = pty.openpty()
    shell = subprocess.Popen(
        [sys.executable, "-c", program, json.dumps(settings)],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    os.close(terminal)
    try:
        # busybox sh prompts "$ " for the image's unprivileged user (nobody).
        prompt = _read_until(controller, b"$ ", timeout=30)
        assert "$ " in prompt, prompt
        os.write(controller, b"tty; echo answer-$((6 * 7)) uid-$(id -u); exit 3\r")
        output = prompt + _read_until(controller, None, timeout=30)
        assert shell.wait(timeout=30) == 3
    finally:
        shell.kill()
        os.close(controller)

    assert "answer-42 uid-65534" in output
    assert "/dev/pts/" in output


def _read_until(fd: int, marker: bytes | None, timeout: float) -> str:
    """Read the terminal until ``marker`` appears (or, for None, until the other side closes)."""
    received = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: every process holding the terminal has exited
            break
        if not data:
            break
        received += data
        if marker is not None and marker in received:
            break
    return received.decode(errors="replace")


def test_unprivileged_containers_read_the_config_whatever_the_umask(
    make_stack_config: MakeConfig, docker_client: Any
) -> None:
    config = make_stack_config()
    previous = os.umask(0o077)
    try:
        changes = up(config)
    finally:
        os.umask(previous)

    assert [c.action for c in changes] == ["created"] * len(COMPONENTS)
    users = {
        c.labels[COMPONENT_LABEL]: c.attrs["Config"]["User"] for c in find_containers(docker_client, config)
    }
    assert users == {"prometheus": "65534:65534", "alertmanager": "65534:65534", "grafana": "472:0"}
    loaded = prometheus_api(config, "/api/v1/status/config")["yaml"]
    assert f"127.0.0.1:{config.gateway_port}" in loaded
