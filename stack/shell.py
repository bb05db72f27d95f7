"""An interactive shell in a component's container: a real TTY through the Docker exec API.

The local terminal goes into raw mode so keystrokes (Ctrl-C, arrows, tab) reach the remote shell as they
are, and the remote TTY follows the local window size.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import termios
import threading
import tty
from collections.abc import Iterator, Sequence
from typing import Any

from stack.config import StackConfig
from stack.container_logs import component_container
from stack.errors import NotATerminal

_CHUNK = 65536


def open_shell(config: StackConfig, component: str, command: Sequence[str] = ("/bin/sh",)) -> int:
    """Run ``command`` interactively in the component's container; return its exit code."""
    stdin_fd, stdout_fd = sys.stdin.fileno(), sys.stdout.fileno()
    if not (os.isatty(stdin_fd) and os.isatty(stdout_fd)):
        raise NotATerminal(
            "an interactive shell needs a terminal on stdin and stdout",
            hint="run it from a terminal, not through a pipe",
        )
    container = component_container(config, component, running=True)
    api = container.client.api
    exec_id = api.exec_create(
        container.id,
        list(command),
        stdin=True,
        tty=True,
        environment={"TERM": os.environ.get("TERM", "xterm")},
    )["Id"]
    connection = api.exec_start(exec_id, tty=True, socket=True)
    # On a unix socket the SDK hands back a SocketIO; select and shutdown need the socket inside it.
    raw_socket: socket.socket = getattr(connection, "_sock", connection)
    raw_socket.settimeout(None)
    try:
        with _raw_mode(stdin_fd), _window_size_followed(api, exec_id, stdout_fd):
            _pump(raw_socket, stdin_fd, stdout_fd)
    finally:
        connection.close()
    exit_code = api.exec_inspect(exec_id).get("ExitCode")
    return int(exit_code or 0)


@contextlib.contextmanager
def _raw_mode(fd: int) -> Iterator[None]:
    saved = termios.tcgetattr(fd)
    # TCSADRAIN rather than setraw's default TCSAFLUSH: keep what was typed before the shell opened.
    tty.setraw(fd, termios.TCSADRAIN)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def _window_size_followed(api: Any, exec_id: str, fd: int) -> Iterator[None]:
    """Size the remote TTY like the local one now, and again whenever the local window changes."""

    def resize(*_: object) -> None:
        size = os.get_terminal_size(fd)
        # Best effort: the exec may already have ended when the window changes.
        with contextlib.suppress(Exception):
            api.exec_resize(exec_id, height=size.lines, width=size.columns)

    resize()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGWINCH, resize)
    try:
        yield
    finally:
        signal.signal(signal.SIGWINCH, previous)


def _pump(remote: socket.socket, stdin_fd: int, stdout_fd: int) -> None:
    """Copy keystrokes to the container and its output to the terminal until the remote side closes."""
    watched: list[Any] = [remote, stdin_fd]
    while True:
        readable, _, _ = select.select(watched, [], [])
        if remote in readable:
            data = remote.recv(_CHUNK)
            if not data:
                return
            _write_all(stdout_fd, data)
        if stdin_fd in readable:
            data = os.read(stdin_fd, _CHUNK)
            if data:
                remote.sendall(data)
            else:
                watched.remove(stdin_fd)
                remote.shutdown(socket.SHUT_WR)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        written = os.write(fd, data)
        data = data[written:]
