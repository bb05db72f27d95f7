"""Real Prometheus and Alertmanager processes for tests, on 127.0.0.1 free ports, in temp dirs.

Debian's binaries (/usr/bin/prometheus, /usr/bin/prometheus-alertmanager) run as plain child
processes: these tests are about the rules, queries and routing, not about containers (the
stack's own tests cover those). Every process started here is stopped by its context manager.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port nobody listens on right now at 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def binary(name: str) -> str:
    """Path of a Debian-installed binary; fails (never skips) when it is missing."""
    path = shutil.which(name) or f"/usr/bin/{name}"
    assert Path(path).exists(), f"{name} missing: tests/run.sh installs it with apt-get"
    return path


def wait_until(check: Any, timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    """Call ``check`` until it returns something truthy; return that value or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except (httpx.HTTPError, OSError) as error:
            last_error = error
        else:
            if value:
                return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_error})")


@dataclass
class _Process:
    name: str
    argv: list[str]
    url: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout: float = 30.0) -> None:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200

        try:
            wait_until(ready, ready_timeout, what=f"{self.name} to be ready")
        except AssertionError:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Prometheus:
    """A running Prometheus: its URL and small query helpers."""

    url: str
    process: _Process

    def api(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=30)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", (path, params, body)
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=expr)["result"])

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        return list(self.api("query_range", query=expr, start=start, end=end, step=step)["result"])

    def firing_alerts(self) -> list[dict[str, Any]]:
        return [a for a in self.api("alerts")["alerts"] if a["state"] == "firing"]

    def rule_evaluations(self) -> int:
        """How many times the rule groups have been evaluated so far (from Prometheus' own metrics)."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith("prometheus_rule_group_iterations_total{"):
                total += float(line.rsplit(" ", 1)[1])
        return int(total)


@contextmanager
def run_prometheus(
    workdir: Path,
    scrape_targets: list[str],
    rules: str | None = None,
    alertmanager: str | None = None,
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
) -> Iterator[Prometheus]:
    """Start Prometheus scraping ``scrape_targets`` as job "llmops", with optional rules and Alertmanager."""
    workdir.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval},
        "scrape_configs": [{"job_name": "llmops", "static_configs": [{"targets": scrape_targets}]}],
    }
    if rules is not None:
        (workdir / "rules").mkdir(exist_ok=True)
        (workdir / "rules" / "llmops_alerts.yml").write_text(rules)
        config["rule_files"] = [str(workdir / "rules" / "*.yml")]
    if alertmanager is not None:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    process = _Process(
        name="prometheus",
        argv=[
            binary("prometheus"),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address={LOOPBACK}:{port}",
            "--web.enable-lifecycle",
        ],
        url=f"http://{LOOPBACK}:{port}",
        log_path=workdir / "prometheus.log",
    )
    process.start()
    try:
        yield Prometheus(url=process.url, process=process)
    finally:
        process.stop()


@dataclass
class Alertmanager:
    url: str
    address: str
    process: _Process

    def alerts(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.url}/api/v2/alerts", timeout=10).json())


@contextmanager
def run_alertmanager(workdir: Path, config: str) -> Iterator[Alertmanager]:
    """Start Alertmanager with the rendered ``config``, clustering off, on a free port."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "alertmanager.yml"
    config_path.write_text(config)
    port = free_port()
    process = _Process(
        name="alertmanager",
        argv=[
            binary("prometheus-alertmanager"),
            f"--config.file={config_path}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address={LOOPBACK}:{port}",
            "--cluster.listen-address=",
        ],
        url=f"http://{LOOPBACK}:{port}",
        log_path=workdir / "alertmanager.log",
    )
    process.start()
    try:
        yield Alertmanager(url=process.url, address=f"{LOOPBACK}:{port}", process=process)
    finally:
        process.stop()


@dataclass
class WebhookRecorder:
    """A real HTTP server that records every POSTed JSON body and its Authorization header."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def alerts(self) -> list[dict[str, Any]]:
        with self.lock:
            return [alert for payload in self.received for alert in payload["alerts"]]


@contextmanager
def run_webhook_recorder(path: str = "/alerts/webhook") -> Iterator[WebhookRecorder]:
    """Serve ``path`` on a free 127.0.0.1 port until the context ends."""
    port = free_port()
    recorder = WebhookRecorder(url=f"http://{LOOPBACK}:{port}{path}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = 404
            if self.path == path:
                with recorder.lock:
                    recorder.received.append(json.loads(body))
                    recorder.authorizations.append(self.headers.get("Authorization"))
                status = 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("webhook recorder: " + format, *args)

    server = ThreadingHTTPServer((LOOPBACK, port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
