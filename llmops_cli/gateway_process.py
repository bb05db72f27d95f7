"""The gateway as a background process: start, find, stop, through a pid file in the data directory."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

PID_FILE = "gateway.pid"
LOG_FILE = "gateway.log"


class GatewayProcessError(Exception):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass
class GatewayState:
    pid: int | None
    url: str | None
    running: bool
    ready: bool


def url_for(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def _is_our_gateway(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (ProcessLookupError, PermissionError, FileNotFoundError):
        return False
    return b"llmops_cli" in cmdline and b"serve" in cmdline


def probe_ready(url: str, timeout_s: float = 1.0) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def read_state(data_dir: Path) -> GatewayState:
    """What the pid file says, checked against the live process and its /readyz."""
    pid_path = data_dir / PID_FILE
    try:
        record = json.loads(pid_path.read_text())
        pid, url = int(record["pid"]), str(record["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return GatewayState(None, None, False, False)
    if not _is_our_gateway(pid):
        return GatewayState(pid, url, False, False)
    return GatewayState(pid, url, True, probe_ready(url))


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start(data_dir: Path, host: str, port: int, timeout_s: float = 30.0) -> GatewayState:
    """Start `llmops serve` detached, logging to the data directory; wait until /readyz answers."""
    url = url_for(host, port)
    if port_in_use(host, port):
        raise GatewayProcessError(
            f"port {port} on {host} is already in use by another program",
            hint="stop it, or pick another port with --port",
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / LOG_FILE
    command = [
        sys.executable,
        "-m",
        "llmops_cli",
        "serve",
        "--host",
        host,
        "--port",
        str(port),
        "--data-dir",
        str(data_dir.resolve()),
    ]
    with os.fdopen(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log_file:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (data_dir / PID_FILE).write_text(json.dumps({"pid": process.pid, "url": url}))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            (data_dir / PID_FILE).unlink(missing_ok=True)
            raise GatewayProcessError(
                f"the gateway exited with code {process.returncode} during start-up:\n{tail(log_path)}",
                hint=f"see {log_path}",
            )
        if probe_ready(url, timeout_s=0.5):
            return GatewayState(process.pid, url, True, True)
        time.sleep(0.1)
    raise GatewayProcessError(
        f"the gateway did not become ready within {timeout_s:.0f}s:\n{tail(log_path)}",
        hint=f"see {log_path}; `llmops down` stops it",
    )


def stop(data_dir: Path, timeout_s: float = 30.0) -> int | None:
    """SIGTERM the gateway (in-flight calls finish, the usage log is flushed); SIGKILL after the timeout.

    Returns the pid stopped, or None when nothing was running.
    """
    state = read_state(data_dir)
    pid_path = data_dir / PID_FILE
    if not state.running or state.pid is None:
        pid_path.unlink(missing_ok=True)
        return None
    os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _is_our_gateway(state.pid):
        time.sleep(0.05)
    if _is_our_gateway(state.pid):
        os.kill(state.pid, signal.SIGKILL)
    pid_path.unlink(missing_ok=True)
    return state.pid
