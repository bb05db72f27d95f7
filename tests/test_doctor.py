"""`llmops doctor`: every check, each tested by causing the fault it names (and once without it)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest

from server.settings import PLACEHOLDER_JWT_SECRET
from tests.grafana_standin import GrafanaStandIn
from tests.harness import TEST_SECRET, Gateway, free_port, run_cli
from tests.local_prometheus import LocalPrometheus
from tests.mounts import fill
from tests.printed_checklist import checklist


def doctor(
    workdir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    port: int | None = None,
    secret: str | None = TEST_SECRET,
) -> tuple[int, dict[str, tuple[str, str, str | None]], str]:
    """`llmops doctor` with the stack's URLs on free ports (nothing of the machine's own leaks in)."""
    workdir.mkdir(parents=True, exist_ok=True)
    stack = {
        "--prometheus-url": f"http://127.0.0.1:{free_port()}",
        "--alertmanager-url": f"http://127.0.0.1:{free_port()}",
        "--grafana-url": f"http://127.0.0.1:{free_port()}",
        "--data-dir": str(workdir / "data"),
    }
    for flag, value in zip(args[::2], args[1::2], strict=False):
        stack[flag] = value
    flags = [item for pair in stack.items() for item in pair]
    environment = {"LLMOPS_PORT": str(port or free_port()), **(env or {})}
    if secret is not None:
        environment["JWT_SECRET"] = secret
    result = run_cli("doctor", *flags, cwd=workdir, env=environment, timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, checklist(result.stdout), result.stdout


def test_healthy_setup_passes_the_local_checks(tmp_path: Path) -> None:
    code, checks, output = doctor(tmp_path)
    assert checks["usage log writable"][0] == "ok"
    assert checks["JWT secret"] == ("ok", "set, not the placeholder", None)
    assert checks["prometheus.yml is a file"][0] == "skip"
    assert checks["token in use"][0] == "skip"
    assert checks["Prometheus scrapes the gateway"][0] == "skip"
    assert checks["Grafana datasources"][0] == "skip"
    assert all(status == "ok" for name, (status, _, _) in checks.items() if name.startswith("port "))
    assert code == (1 if checks["Docker reachable"][0] == "fail" else 0), output


def test_usage_log_not_writable(tmp_path: Path, mounts) -> None:  # type: ignore[no-untyped-def]
    gw = Gateway(tmp_path / "gw")
    gw.start()
    gw.settle()
    gw.stop()
    mounts(gw.data_dir, "ro")
    code, checks, _ = doctor(tmp_path / "ro", "--data-dir", str(gw.data_dir))
    status, detail, fix = checks["usage log writable"]
    assert (code, status) == (1, "fail")
    assert "Read-only file system" in detail and fix is not None and "writable" in fix

    full = mounts(tmp_path / "full", "tmpfs:64k")
    fill(full)
    code, checks, _ = doctor(tmp_path / "full-run", "--data-dir", str(full))
    assert (code, checks["usage log writable"][0]) == (1, "fail")
    assert "No space left on device" in checks["usage log writable"][1]


def test_prometheus_yml_mounted_as_a_directory(tmp_path: Path) -> None:
    config = tmp_path / "data" / "stack" / "prometheus" / "prometheus.yml"
    config.mkdir(parents=True)
    code, checks, _ = doctor(tmp_path)
    status, detail, fix = checks["prometheus.yml is a file"]
    assert (code, status) == (1, "fail")
    assert f"{config} is a directory" in detail and fix is not None and f"rm -r {config}" in fix

    config.rmdir()
    config.write_text("global: {}\n")
    code, checks, _ = doctor(tmp_path)
    assert checks["prometheus.yml is a file"] == ("ok", str(config), None)


@pytest.mark.parametrize(
    ("env_file", "secret", "needle", "fix"),
    [
        (None, None, "JWT_SECRET is not set", "generates a strong one into .env"),
        (
            f"JWT_SECRET={PLACEHOLDER_JWT_SECRET}\n",
            None,
            "still the placeholder",
            "delete the JWT_SECRET line",
        ),
        (None, "short", "shorter than 32 characters", "delete the JWT_SECRET line"),
    ],
)
def test_missing_or_placeholder_jwt_secret(
    tmp_path: Path, env_file: str | None, secret: str | None, needle: str, fix: str
) -> None:
    if env_file is not None:
        (tmp_path / ".env").write_text(env_file)
    code, checks, _ = doctor(tmp_path, secret=secret)
    status, detail, shown_fix = checks["JWT secret"]
    assert (code, status) == (1, "fail")
    assert needle in detail and shown_fix is not None and fix in shown_fix
    # The doctor diagnoses; it generates nothing.
    assert (tmp_path / ".env").exists() == (env_file is not None)


def test_expired_token_in_use(tmp_path: Path) -> None:
    now = int(time.time())
    expired = jwt.encode({"sub": "alice", "exp": now - 7200}, TEST_SECRET, algorithm="HS256")
    forged = jwt.encode({"sub": "alice", "exp": now + 600}, "x" * 48, algorithm="HS256")
    valid = jwt.encode({"sub": "alice", "exp": now + 3600}, TEST_SECRET, algorithm="HS256")

    code, checks, output = doctor(tmp_path, env={"LLMOPS_TOKEN": expired})
    status, detail, fix = checks["token in use"]
    assert (code, status) == (1, "fail")
    assert detail == "the token in LLMOPS_TOKEN (sub=alice) expired 2h ago"
    assert fix == "export LLMOPS_TOKEN=$(llmops token --sub <you> --ttl 1h)"
    assert expired not in output

    (tmp_path / ".env").write_text(f"LLMOPS_TOKEN={forged}\n")
    code, checks, output = doctor(tmp_path)
    assert checks["token in use"][:2] == (
        "fail",
        "the token in LLMOPS_TOKEN in .env (sub=alice) was signed with another JWT_SECRET",
    )
    assert forged not in output

    _, checks, _ = doctor(tmp_path, "--token", "llmops_sk_" + "k" * 40)
    assert checks["token in use"][:2] == (
        "skip",
        "--token holds an API key: `llmops keys list` shows whether it expired",
    )

    code, checks, _ = doctor(tmp_path, "--token", valid)
    assert (
        checks["token in use"][0] == "ok" and "--token: sub=alice, valid for 59m" in checks["token in use"][1]
    )


def docker_answers() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def test_docker_unreachable(tmp_path: Path) -> None:
    socket = tmp_path / "no-docker.sock"
    code, checks, _ = doctor(tmp_path, env={"DOCKER_HOST": f"unix://{socket}"})
    status, detail, fix = checks["Docker reachable"]
    assert (code, status) == (1, "fail")
    assert detail.startswith(f"no Docker engine at unix://{socket}")
    assert fix is not None and "dockerd" in fix
    if docker_answers():
        _, checks, _ = doctor(tmp_path)
        assert checks["Docker reachable"][0] == "ok" and checks["Docker reachable"][1].startswith("engine ")


def test_port_taken_by_something_else(tmp_path: Path) -> None:
    gateway_port, prometheus_port = free_port(), free_port()
    squatter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket, sys, time\n"
            "socks = []\n"
            "for port in sys.argv[1:]:\n"
            "    s = socket.socket(); s.bind(('127.0.0.1', int(port))); s.listen(); socks.append(s)\n"
            "print('listening', flush=True); time.sleep(120)\n",
            str(gateway_port),
            str(prometheus_port),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert squatter.stdout is not None and squatter.stdout.readline().strip() == "listening"
        code, checks, _ = doctor(
            tmp_path, "--prometheus-url", f"http://127.0.0.1:{prometheus_port}", port=gateway_port
        )
    finally:
        squatter.kill()
        squatter.wait()
    assert code == 1
    for component, port in (("gateway", gateway_port), ("prometheus", prometheus_port)):
        status, detail, fix = checks[f"port {port} ({component})"]
        assert status == "fail"
        assert detail.startswith(f"taken by pid {squatter.pid} (python")
        assert fix == f"stop it, or give llmops's {component} another port"


def test_port_held_by_our_gateway_is_fine(tmp_path: Path) -> None:
    gw = Gateway(tmp_path / "gw").start()
    try:
        _, checks, _ = doctor(tmp_path, "--data-dir", str(gw.data_dir), port=gw.port)
    finally:
        gw.stop()
    status, detail, _ = checks[f"port {gw.port} (gateway)"]
    assert status == "ok" and detail.startswith("in use by llmops (gateway, pid ")


def test_prometheus_not_scraping_the_gateway(tmp_path: Path) -> None:
    gw = Gateway(tmp_path / "gw").start()
    wrong = LocalPrometheus(tmp_path / "prom-wrong", {"llmops": [f"127.0.0.1:{free_port()}"]}).start()
    none = LocalPrometheus(tmp_path / "prom-none", {"something": [f"127.0.0.1:{free_port()}"]}).start()
    right = LocalPrometheus(tmp_path / "prom-right", {"llmops": [f"127.0.0.1:{gw.port}"]}).start()
    try:
        wrong.wait_for_target("down")
        code, checks, _ = doctor(tmp_path / "a", "--prometheus-url", wrong.url, port=gw.port)
        status, detail, fix = checks["Prometheus scrapes the gateway"]
        assert (code, status) == (1, "fail")
        assert "is down: " in detail and "connection refused" in detail
        assert fix is not None and "prometheus.yml" in fix

        code, checks, _ = doctor(tmp_path / "b", "--prometheus-url", none.url, port=gw.port)
        assert checks["Prometheus scrapes the gateway"][:2] == (
            "fail",
            f"Prometheus at {none.url} has no target for http://127.0.0.1:{gw.port}",
        )

        right.wait_for_target("up")
        _, checks, _ = doctor(tmp_path / "c", "--prometheus-url", right.url, port=gw.port)
        assert checks["Prometheus scrapes the gateway"] == (
            "ok",
            f"http://127.0.0.1:{gw.port}/metrics up",
            None,
        )
    finally:
        for prometheus in (wrong, none, right):
            prometheus.stop()
        gw.stop()


def test_grafana_datasource_unreachable(tmp_path: Path) -> None:
    password = "grafana-" + "p" * 24
    env = {"GRAFANA_ADMIN_PASSWORD": password}
    with GrafanaStandIn(password, datasource_ok=False) as grafana:
        code, checks, output = doctor(tmp_path, "--grafana-url", grafana.url, env=env)
        status, detail, fix = checks["Grafana datasources"]
        assert (code, status) == (1, "fail")
        assert (
            "Prometheus (llmops) (http://127.0.0.1:9090): Post" in detail and "connection refused" in detail
        )
        assert fix is not None and "inside the Grafana container" in fix
        assert password not in output

        grafana.datasource_ok = True
        _, checks, _ = doctor(tmp_path, "--grafana-url", grafana.url, env=env)
        assert checks["Grafana datasources"] == ("ok", "1 reachable", None)

        code, checks, _ = doctor(
            tmp_path, "--grafana-url", grafana.url, env={"GRAFANA_ADMIN_PASSWORD": "wrong"}
        )
        assert checks["Grafana datasources"][:2] == ("fail", "Grafana refused the admin login")
        assert "/api/datasources/uid/llmops-prometheus/health" in grafana.requests
