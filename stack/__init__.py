"""The Docker side of llmops: Prometheus, Alertmanager and Grafana containers, created with the Docker SDK.

    config.py          StackConfig: ports, images, network mode, names and labels of one stack
    files.py           the config files the containers mount, generated into <data dir>/stack/
    specs.py           each component's container spec and the hash that decides when to recreate it
    engine.py          the Docker client, creation of labelled objects, lookup by label
    health.py          health probes from the host, the wait with a timeout
    lifecycle.py       up / down / status / reset_prometheus / owned_objects / nuke
    container_logs.py  a component's log
    shell.py           an interactive shell in a component's container
    errors.py          the exceptions (StackError and its subclasses)

Imports of docker and httpx happen inside functions, so importing this package stays cheap.
"""

from stack.config import COMPONENTS, StackConfig
from stack.container_logs import read_logs
from stack.errors import ComponentUnhealthy, DockerUnavailable, StackError
from stack.files import remove_config_files
from stack.lifecycle import (
    ComponentChange,
    ComponentStatus,
    down,
    nuke,
    owned_objects,
    reset_prometheus,
    status,
    up,
)
from stack.shell import open_shell

__all__ = [
    "COMPONENTS",
    "ComponentChange",
    "ComponentStatus",
    "ComponentUnhealthy",
    "DockerUnavailable",
    "StackConfig",
    "StackError",
    "down",
    "nuke",
    "open_shell",
    "owned_objects",
    "read_logs",
    "remove_config_files",
    "reset_prometheus",
    "status",
    "up",
]
