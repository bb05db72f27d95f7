"""Whether a component answers: its HTTP health endpoint, probed from the host at 127.0.0.1."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from stack.errors import ComponentUnhealthy

if TYPE_CHECKING:
    from docker.models.containers import Container

LOG_LINES_ON_FAILURE = 40
_POLL_SECONDS = 0.25


def probe(url: str, timeout: float = 2.0) -> bool:
    """True when ``url`` answers 200."""
    import httpx

    try:
        # trust_env=False: a proxy configured for the outside world must not intercept loopback probes.
        response = httpx.get(url, timeout=timeout, trust_env=False)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def wait_until_healthy(component: str, container: Container, url: str, timeout: float) -> None:
    """Return once ``url`` answers 200; raise ComponentUnhealthy with the container's last log lines when it
    exits, restarts, or stays silent for ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    container.reload()
    restarts_before = container.attrs.get("RestartCount", 0)
    while True:
        container.reload()
        state = container.attrs["State"]
        if state["Status"] in ("exited", "dead") or state.get("Restarting"):
            reason = f"its container stopped (exit code {state.get('ExitCode')})"
            raise ComponentUnhealthy(component, reason, last_log_lines(container))
        if container.attrs.get("RestartCount", 0) > restarts_before:
            raise ComponentUnhealthy(
                component, "its container crashed and restarted", last_log_lines(container)
            )
        if probe(url):
            return
        if time.monotonic() > deadline:
            reason = f"no answer from {url} within {timeout:g} s"
            raise ComponentUnhealthy(component, reason, last_log_lines(container))
        time.sleep(_POLL_SECONDS)


def last_log_lines(container: Container, lines: int = LOG_LINES_ON_FAILURE) -> str:
    """The container's last ``lines`` lines of stdout and stderr."""
    return container.logs(tail=lines).decode("utf-8", errors="replace")
