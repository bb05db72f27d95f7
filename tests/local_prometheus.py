"""A real Prometheus (the Debian binary) on 127.0.0.1, scraping what a test tells it to, every second."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.harness import free_port


class LocalPrometheus:
    """`prometheus` with its own config and storage under `workdir`; `targets` is job -> host:port list."""

    def __init__(self, workdir: Path, targets: dict[str, list[str]]) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.skip("the prometheus binary is not installed (tests/run.sh installs it)")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.targets = targets
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> LocalPrometheus:
        self.workdir.mkdir(parents=True, exist_ok=True)
        jobs = "".join(
            f"  - job_name: {job}\n    static_configs:\n      - targets: {addresses!r}\n"
            for job, addresses in self.targets.items()
        )
        config = self.workdir / "prometheus.yml"
        config.write_text(f"global:\n  scrape_interval: 1s\nscrape_configs:\n{jobs}")
        log = (self.workdir / "prometheus.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.workdir / "prometheus.log").read_text()[-2000:]
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("prometheus did not become ready")

    def wait_for_target(self, health: str, timeout: float = 20) -> None:
        """Until every active target has `health` (up or down)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            targets = httpx.get(f"{self.url}/api/v1/targets").json()["data"]["activeTargets"]
            if targets and all(t["health"] == health for t in targets):
                return
            time.sleep(0.2)
        raise AssertionError(f"targets not {health}: {targets}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
