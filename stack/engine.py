"""The Docker engine as the stack sees it: one client, objects created with our labels, lookup by label.

Every container, volume and network the stack creates goes through `create_labelled`, so every one of
them carries ``io.llmops.project``; everything the stack later finds, stops or removes is found by that
label. An object without it is never touched.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

from stack.errors import DockerUnavailable, NameConflict

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container
    from docker.models.networks import Network
    from docker.models.volumes import Volume

    from stack.config import StackConfig

logger = logging.getLogger(__name__)

PROJECT_LABEL = "io.llmops.project"
COMPONENT_LABEL = "io.llmops.component"
SPEC_HASH_LABEL = "io.llmops.spec-hash"

Collection = Literal["containers", "volumes", "networks"]


def connect(timeout: float = 60) -> DockerClient:
    """A client of the local Docker engine (``DOCKER_HOST`` or the default socket) that answered a ping."""
    import docker
    import requests

    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise DockerUnavailable(
            f"the Docker engine does not answer ({exc.__class__.__name__})",
            hint="start Docker (e.g. `sudo systemctl start docker`) or set DOCKER_HOST, then run this again",
        ) from exc
    return client


def labels_for(config: StackConfig, component: str, **extra: str) -> dict[str, str]:
    """The labels every object of ``component`` carries."""
    return {PROJECT_LABEL: config.project, COMPONENT_LABEL: component, **extra}


def create_labelled(
    client: DockerClient,
    collection: Collection,
    config: StackConfig,
    component: str,
    extra_labels: dict[str, str] | None = None,
    **kwargs: Any,
) -> Any:
    """Create a container, volume or network carrying our labels; the only way the stack creates objects."""
    labels = labels_for(config, component, **(extra_labels or {}))
    created = getattr(client, collection).create(labels=labels, **kwargs)
    logger.debug("created %s %s", collection[:-1], kwargs.get("name"))
    return created


def label_filter(config: StackConfig, component: str | None = None) -> dict[str, list[str]]:
    """A Docker API filter matching this stack's objects (of one component when given)."""
    labels = [f"{PROJECT_LABEL}={config.project}"]
    if component is not None:
        labels.append(f"{COMPONENT_LABEL}={component}")
    return {"label": labels}


def find_containers(
    client: DockerClient, config: StackConfig, component: str | None = None
) -> list[Container]:
    """This stack's containers, running or not."""
    return client.containers.list(all=True, filters=label_filter(config, component))


def find_volumes(client: DockerClient, config: StackConfig, component: str | None = None) -> list[Volume]:
    """This stack's named volumes."""
    return client.volumes.list(filters=label_filter(config, component))


def find_networks(client: DockerClient, config: StackConfig) -> list[Network]:
    """This stack's networks."""
    return client.networks.list(filters=label_filter(config))


def find_container(client: DockerClient, config: StackConfig, component: str) -> Container | None:
    """The one container of ``component``, or None.

    Raises NameConflict when a container holds the component's name without our label.
    """
    found = find_containers(client, config, component)
    if found:
        return found[0]
    _refuse_unlabelled(client.containers, config, config.object_name(component), "container")
    return None


def ensure_volume(client: DockerClient, config: StackConfig, component: str, name: str) -> None:
    """Create the named volume ``name`` for ``component`` unless it exists with our label."""
    if any(volume.name == name for volume in find_volumes(client, config, component)):
        return
    _refuse_unlabelled(client.volumes, config, name, "volume")
    create_labelled(client, "volumes", config, component, name=name)


def ensure_network(client: DockerClient, config: StackConfig) -> str:
    """Create the stack's bridge network unless it exists with our label; return its name."""
    name = config.object_name("net")
    if any(network.name == name for network in find_networks(client, config)):
        return name
    _refuse_unlabelled(client.networks, config, name, "network")
    create_labelled(client, "networks", config, "network", name=name, driver="bridge")
    return name


def _refuse_unlabelled(collection: Any, config: StackConfig, name: str, kind: str) -> None:
    """Raise NameConflict when an object called ``name`` exists without our project label."""
    import docker

    try:
        existing = collection.get(name)
    except docker.errors.NotFound:
        return
    labels = existing.attrs.get("Labels") or existing.attrs.get("Config", {}).get("Labels") or {}
    if labels.get(PROJECT_LABEL) != config.project:
        raise NameConflict(
            f"a {kind} named {name!r} exists but is not part of this llmops stack",
            hint=f"remove or rename it yourself (`docker {kind} rm {name}`), or set another name prefix",
        )
