"""A component container's log, read through the Docker API."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

from stack.config import COMPONENTS, StackConfig
from stack.engine import connect, find_containers
from stack.errors import ComponentNotRunning, StackError

if TYPE_CHECKING:
    from docker.models.containers import Container


def component_container(config: StackConfig, component: str, *, running: bool = False) -> Container:
    """The container of ``component``; raise ComponentNotRunning when there is none (or it is not running)."""
    if component not in COMPONENTS:
        raise StackError(f"unknown component {component!r}", hint=f"choose from {', '.join(COMPONENTS)}")
    found = find_containers(connect(), config, component)
    if not found or (running and found[0].status != "running"):
        raise ComponentNotRunning(
            f"{component} is not running" if found else f"{component} has no container",
            hint="start the stack with `llmops up`",
        )
    return found[0]


def read_logs(
    config: StackConfig, component: str, follow: bool = False, tail: int | None = None
) -> Generator[str, None, None]:
    """Lines of a component's stdout and stderr, oldest first; with ``follow``, keep yielding new lines."""
    container = component_container(config, component)
    lines: int | str = "all" if tail is None else tail
    if not follow:
        yield from container.logs(tail=lines).decode("utf-8", errors="replace").splitlines()
        return
    pending = b""
    stream = container.logs(stream=True, follow=True, tail=lines)
    try:
        # The stream yields chunks as Docker receives them; a chunk may end inside a line.
        for chunk in stream:
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.decode("utf-8", errors="replace")
    finally:
        stream.close()
    if pending:
        yield pending.decode("utf-8", errors="replace")
