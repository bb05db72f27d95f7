"""Bring the stack up, stop it, report on it, wipe Prometheus, remove everything it made.

Every function finds its objects by the project label (see stack.engine) and leaves any object without
it alone.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from stack.config import COMPONENTS, StackConfig
from stack.engine import (
    SPEC_HASH_LABEL,
    connect,
    create_labelled,
    ensure_network,
    ensure_volume,
    find_container,
    find_containers,
    find_networks,
    find_volumes,
)
from stack.errors import ComponentUnhealthy, StackError
from stack.files import remove_config_files, write_config_files
from stack.health import probe, wait_until_healthy
from stack.specs import ContainerSpec, build_specs, ensure_image

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

logger = logging.getLogger(__name__)

Action = Literal["created", "recreated", "started", "unchanged"]

_STOP_TIMEOUT_SECONDS = 20


@dataclass(frozen=True)
class ComponentChange:
    """What `up` did to one component's container."""

    component: str
    action: Action
    url: str
    container_id: str


@dataclass(frozen=True)
class ComponentStatus:
    """One row of `status`: the container's state and whether the component answers."""

    component: str
    state: str
    """Docker's container state (running, exited, restarting, ...) or "absent"."""
    healthy: bool | None
    """None when there is no running container to ask."""
    url: str


def up(config: StackConfig, components: Iterable[str] = COMPONENTS) -> list[ComponentChange]:
    """Create or update the containers so they match ``config``, then wait until each one is healthy.

    Idempotent: a container whose spec hash matches is left running ("unchanged"), a stopped one is
    started, one whose spec or mounted files changed is recreated. Data volumes are kept.
    """
    selected = _known(components)
    client = connect()
    files = write_config_files(config)
    network = ensure_network(client, config) if config.network_mode == "bridge" else None
    specs = build_specs(config, files, network, selected)
    changes: list[ComponentChange] = []
    containers: dict[str, Container] = {}
    # Create everything first and wait afterwards, so the components start in parallel.
    for component in selected:
        action, containers[component] = _converge(client, config, specs[component])
        logger.info("%s: %s", component, action)
        changes.append(ComponentChange(component, action, config.url(component), containers[component].id))
    for component in selected:
        container = containers[component]
        try:
            wait_until_healthy(component, container, config.health_url(component), config.health_timeout)
        except ComponentUnhealthy:
            # Stopped rather than left crash-looping under its restart policy; its log stays readable.
            container.stop(timeout=_STOP_TIMEOUT_SECONDS)
            raise
    return changes


def _converge(client: DockerClient, config: StackConfig, spec: ContainerSpec) -> tuple[Action, Container]:
    """Bring one component's container in line with its spec."""
    image_id = ensure_image(client, spec.image)
    for volume in spec.volumes:
        ensure_volume(client, config, spec.component, volume)
    digest = spec.digest(image_id)
    container = find_container(client, config, spec.component)
    if container is not None and container.labels.get(SPEC_HASH_LABEL) != digest:
        container.stop(timeout=_STOP_TIMEOUT_SECONDS)
        container.remove()
        return "recreated", _create(client, config, spec, digest)
    if container is None:
        return "created", _create(client, config, spec, digest)
    if container.status != "running":
        container.start()
        return "started", container
    return "unchanged", container


def _create(client: DockerClient, config: StackConfig, spec: ContainerSpec, digest: str) -> Container:
    container = create_labelled(
        client,
        "containers",
        config,
        spec.component,
        extra_labels={SPEC_HASH_LABEL: digest},
        **spec.create_kwargs(),
    )
    container.start()
    return container


def down(config: StackConfig) -> list[str]:
    """Stop every running container of the stack, keeping containers and volumes; return the stopped ones."""
    client = connect()
    stopped = []
    for container in find_containers(client, config):
        if container.status in ("running", "restarting"):
            container.stop(timeout=_STOP_TIMEOUT_SECONDS)
            stopped.append(container.name)
    return stopped


def status(config: StackConfig) -> list[ComponentStatus]:
    """State, health and URL of every component."""
    client = connect()
    rows = []
    for component in COMPONENTS:
        found = find_containers(client, config, component)
        state = found[0].status if found else "absent"
        healthy = probe(config.health_url(component)) if state == "running" else None
        rows.append(ComponentStatus(component, state, healthy, config.url(component)))
    return rows


def reset_prometheus(config: StackConfig) -> ComponentChange | None:
    """Wipe Prometheus's TSDB volume; start Prometheus again on an empty TSDB if it was running.

    Returns what `up` did to Prometheus, or None when it was not running (the data is wiped all the same).
    """
    client = connect()
    container = find_container(client, config, "prometheus")
    was_running = container is not None and container.status == "running"
    if container is not None:
        container.stop(timeout=_STOP_TIMEOUT_SECONDS)
        container.remove()
    for volume in find_volumes(client, config, "prometheus"):
        volume.remove()
        logger.info("removed volume %s", volume.name)
    if not was_running:
        return None
    return up(config, ["prometheus"])[0]


def owned_objects(config: StackConfig) -> list[str]:
    """What `nuke` would remove: every labelled container, volume and network, and the generated files."""
    return [description for description, _ in _owned(connect(), config)]


def nuke(config: StackConfig) -> list[str]:
    """Remove every container, volume and network carrying this stack's label, and the config files `up`
    generated; return what was removed."""
    removed = []
    for description, remove in _owned(connect(), config):
        remove()
        removed.append(description)
    return removed


def _owned(client: DockerClient, config: StackConfig) -> list[tuple[str, Callable[[], object]]]:
    """Each object of this stack with the call that removes it; containers first, since they hold the rest."""
    owned: list[tuple[str, Callable[[], object]]] = [
        (f"container {c.name}", functools.partial(c.remove, force=True))
        for c in find_containers(client, config)
    ]
    owned += [(f"volume {v.name}", v.remove) for v in find_volumes(client, config)]
    owned += [(f"network {n.name}", n.remove) for n in find_networks(client, config)]
    if config.files_dir.exists():
        owned.append((f"files {config.files_dir}", functools.partial(remove_config_files, config)))
    return owned


def _known(components: Iterable[str]) -> list[str]:
    selected = list(components)
    unknown = sorted(set(selected) - set(COMPONENTS))
    if unknown:
        raise StackError(
            f"unknown component(s): {', '.join(unknown)}", hint=f"choose from {', '.join(COMPONENTS)}"
        )
    return selected
