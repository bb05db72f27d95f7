"""Errors raised by the stack package.

Every failure the CLI can explain to a user is one of these; each carries an optional ``hint`` that the
CLI prints under the message::

    StackError
     ├── DockerUnavailable      the Docker engine does not answer
     ├── ImageUnavailable       an image is neither present nor pullable
     ├── NameConflict           a container or volume with our name exists without our label
     ├── ComponentNotRunning    logs/shell asked for a component that has no running container
     ├── NotATerminal           shell asked for without an interactive terminal
     └── ComponentUnhealthy     a container did not become healthy in time; carries its last log lines
"""

from __future__ import annotations


class StackError(Exception):
    """Base class of every error the stack package raises."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class DockerUnavailable(StackError):
    """The Docker engine did not answer."""


class ImageUnavailable(StackError):
    """An image is not present locally and could not be pulled."""


class NameConflict(StackError):
    """A Docker object with one of our names exists but does not carry our label, so we leave it alone."""


class ComponentNotRunning(StackError):
    """The component asked for has no running container."""


class NotATerminal(StackError):
    """An interactive shell needs stdin and stdout on a terminal."""


class ComponentUnhealthy(StackError):
    """A container did not become healthy; ``logs`` holds its last log lines."""

    def __init__(self, component: str, reason: str, logs: str) -> None:
        message = f"{component} did not become healthy: {reason}"
        if logs.strip():
            message += f"\n--- last log lines of {component} ---\n{logs.rstrip()}"
        super().__init__(message, hint=f"`llmops logs {component}` shows its whole log")
        self.component = component
        self.reason = reason
        self.logs = logs
