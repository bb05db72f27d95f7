"""Real processes for tests: the gateway on a free loopback port, the CLI, and the usage log."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from server.auth import mint_token

TEST_SECRET = "test-secret-" + "x" * 60
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a CLI or gateway process: no inherited llmops settings, and no Docker stack
    unless the test asks for one (LLMOPS_STACK=on with an isolated project, see test_stack_cli.py)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMOPS_") and k != "JWT_SECRET"}
    env["PYTHONPATH"] = str(REPO)
    env["LLMOPS_STACK"] = "off"
    env.update(extra or {})
    return env


def run_cli(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `llmops ARGS` as a user would, in `cwd`."""
    return subprocess.run(
        [sys.executable, "-m", "llmops_cli", *args],
        cwd=cwd,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


class Gateway:
    """A real `llmops serve` process on 127.0.0.1 with its own data directory."""

    def __init__(
        self,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        secret: str | None = TEST_SECRET,
        data_dir: Path | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        """`secret=None`: JWT_SECRET comes from `workdir/.env`; `data_dir` may be shared by gateways."""
        self.workdir = workdir
        self.data_dir = data_dir or workdir / "data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.secret = secret or ""
        self.env = {**({"JWT_SECRET": secret} if secret is not None else {}), **(env or {})}
        self.extra_args = extra_args
        self.log_path = workdir / "gateway.out"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20) -> Gateway:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llmops_cli",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                *self.extra_args,
            ],
            cwd=self.workdir,
            env=cli_env(self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited {self.process.returncode}:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"gateway not ready:\n{self.log_path.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    def token(self, sub: str = "alice", ttl_s: float = 600) -> str:
        return mint_token(self.secret, sub, ttl_s)

    def headers(self, sub: str = "alice", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(sub)}", **extra}

    @property
    def db_path(self) -> Path:
        return self.data_dir / "usage.db"

    def rows(self, where: str = "", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        conn = sqlite3.connect(self.db_path)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(f"SELECT * FROM usage_logs {where} ORDER BY id", params)]
        finally:
            conn.close()

    def wait_rows(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        """All rows, once there are at least `count` (the writer batches off the request path)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.rows()
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.02)

    def row_for(self, request_id: str, timeout: float = 10) -> dict[str, Any]:
        """The row of one request, once the writer has stored it."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.rows("WHERE request_id = ?", (request_id,))
            if rows:
                assert len(rows) == 1, rows
                return rows[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no usage row for request {request_id}")
            time.sleep(0.02)

    def settle(self) -> int:
        """Send one call and wait for its row: every earlier row is written too (the writer is FIFO).

        Returns the row count, this barrier's row included.
        """
        rid = f"barrier-{time.monotonic_ns()}"
        response = httpx.post(
            f"{self.url}/llm",
            json={"prompt": "barrier"},
            headers=self.headers("barrier", **{"x-request-id": rid}),
        )
        assert response.status_code == 200, response.text
        self.row_for(rid)
        return len(self.rows())

    def metrics(
        self, url: str | None = None, headers: Mapping[str, str] | None = None
    ) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample on /metrics (or `url`), keyed by (name, sorted labels)."""
        response = httpx.get(url or f"{self.url}/metrics", headers=headers, timeout=5)
        response.raise_for_status()
        text = response.text
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }


def metric_sum(
    samples: Mapping[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    """Sum of `name`'s samples whose labels include `labels`."""
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and all(dict(sample_labels).get(k) == v for k, v in labels.items())
    )
