"""The container spec of each component: image, command, environment, mounts, network, health path.

A spec's digest (stored in the ``io.llmops.spec-hash`` label) covers the spec itself, the image it runs and
the content of every directory it mounts, so `up` recreates a container exactly when one of those changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stack.config import COMPONENTS, StackConfig
from stack.errors import ImageUnavailable, StackError
from stack.files import StackFiles, directory_digest

if TYPE_CHECKING:
    from docker import DockerClient

logger = logging.getLogger(__name__)

_RESTART_POLICY = {"Name": "unless-stopped"}


@dataclass(frozen=True)
class ContainerSpec:
    """Everything Docker needs to create one component's container."""

    component: str
    name: str
    image: str
    command: tuple[str, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, str] = field(default_factory=dict)
    """Named volume -> path in the container (read-write: the component's data)."""
    binds: dict[Path, str] = field(default_factory=dict)
    """Host directory -> path in the container (read-only: generated config files)."""
    network_mode: str = "host"
    network: str | None = None
    ports: dict[str, tuple[str, int]] = field(default_factory=dict)
    extra_hosts: dict[str, str] = field(default_factory=dict)

    def digest(self, image_id: str) -> str:
        """A sha256 of this spec, the image it resolves to, and the content of the directories it mounts."""
        described = asdict(self)
        described["binds"] = {
            f"{host}:{path}": directory_digest(host) for host, path in sorted(self.binds.items())
        }
        described["image_id"] = image_id
        canonical = json.dumps(described, sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``client.containers.create``."""
        mounts = {name: {"bind": path, "mode": "rw"} for name, path in self.volumes.items()}
        mounts.update({str(host): {"bind": path, "mode": "ro"} for host, path in self.binds.items()})
        kwargs: dict[str, Any] = {
            "image": self.image,
            "name": self.name,
            "command": list(self.command) or None,
            "environment": self.environment,
            "volumes": mounts,
            "restart_policy": _RESTART_POLICY,
        }
        if self.network_mode == "host":
            kwargs["network_mode"] = "host"
        else:
            kwargs["network"] = self.network
            kwargs["ports"] = self.ports
            kwargs["extra_hosts"] = self.extra_hosts
        return kwargs


def build_specs(
    config: StackConfig, files: StackFiles, network: str | None, components: Iterable[str] = COMPONENTS
) -> dict[str, ContainerSpec]:
    """The spec of each of ``components``, keyed by component name."""
    builders: dict[str, Callable[[StackConfig, StackFiles, str | None], ContainerSpec]] = {
        "prometheus": prometheus_spec,
        "alertmanager": alertmanager_spec,
        "grafana": grafana_spec,
    }
    return {component: builders[component](config, files, network) for component in components}


def prometheus_spec(config: StackConfig, files: StackFiles, network: str | None) -> ContainerSpec:
    """Prometheus: TSDB in a named volume, config and rules from the generated directory."""
    # No --web.console.* flags: Prometheus 3.x removed them and the image default paths suffice on 2.x.
    command = (
        "--config.file=/etc/prometheus/prometheus.yml",
        "--storage.tsdb.path=/prometheus",
        f"--web.listen-address={_listen_address(config, 'prometheus')}",
    )
    return _spec(
        config,
        "prometheus",
        network,
        image=config.prometheus_image,
        command=command,
        volumes={config.object_name("prometheus-data"): "/prometheus"},
        binds={files.prometheus: "/etc/prometheus"},
    )


def alertmanager_spec(config: StackConfig, files: StackFiles, network: str | None) -> ContainerSpec:
    """Alertmanager: silences and notification log in a named volume; clustering off."""
    command = (
        "--config.file=/etc/alertmanager/alertmanager.yml",
        "--storage.path=/alertmanager",
        f"--web.listen-address={_listen_address(config, 'alertmanager')}",
        # An empty cluster address disables the HA gossip listener, which would bind 0.0.0.0:9094.
        "--cluster.listen-address=",
    )
    return _spec(
        config,
        "alertmanager",
        network,
        image=config.alertmanager_image,
        command=command,
        volumes={config.object_name("alertmanager-data"): "/alertmanager"},
        binds={files.alertmanager: "/etc/alertmanager"},
    )


def grafana_spec(config: StackConfig, files: StackFiles, network: str | None) -> ContainerSpec:
    """Grafana: provisioned datasource and dashboards, admin password from the settings, no phoning home."""
    password = config.grafana_admin_password
    if not password or password == "admin":
        raise StackError(
            "the Grafana admin password is not set (or is 'admin')",
            hint="set GRAFANA_ADMIN_PASSWORD in .env; `llmops up` generates one when it is missing",
        )
    environment = {
        "GF_SERVER_HTTP_ADDR": config.bind_address if config.network_mode == "host" else "0.0.0.0",
        "GF_SERVER_HTTP_PORT": str(config.listen_port("grafana")),
        "GF_SECURITY_ADMIN_USER": config.grafana_admin_user,
        "GF_SECURITY_ADMIN_PASSWORD": password,
        "GF_USERS_ALLOW_SIGN_UP": "false",
        "GF_ANALYTICS_REPORTING_ENABLED": "false",
        "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
        "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES": "false",
        "GF_NEWS_NEWS_FEED_ENABLED": "false",
        # Read by the provisioned datasources, so one provisioning file serves both network modes.
        "LLMOPS_PROMETHEUS_URL": f"http://{config.internal_address('prometheus')}",
        "LLMOPS_ALERTMANAGER_URL": f"http://{config.internal_address('alertmanager')}",
        # For the datasource's timeInterval, which must match the scrape interval for $__rate_interval.
        "LLMOPS_SCRAPE_INTERVAL": config.scrape_interval,
    }
    return _spec(
        config,
        "grafana",
        network,
        image=config.grafana_image,
        environment=environment,
        volumes={config.object_name("grafana-data"): "/var/lib/grafana"},
        binds={
            files.grafana_provisioning: "/etc/grafana/provisioning",
            files.grafana_dashboards: "/var/lib/grafana/dashboards",
        },
    )


def _spec(config: StackConfig, component: str, network: str | None, **fields: Any) -> ContainerSpec:
    """Fill in what every component shares: name, network mode, published port, host.docker.internal."""
    if config.network_mode == "host":
        return ContainerSpec(component=component, name=config.object_name(component), **fields)
    return ContainerSpec(
        component=component,
        name=config.object_name(component),
        network_mode="bridge",
        network=network,
        ports={f"{config.listen_port(component)}/tcp": (config.bind_address, config.host_port(component))},
        extra_hosts={"host.docker.internal": "host-gateway"},
        **fields,
    )


def _listen_address(config: StackConfig, component: str) -> str:
    """``--web.listen-address`` value: the bind address on the host network, every address in a bridge."""
    host = config.bind_address if config.network_mode == "host" else "0.0.0.0"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{config.listen_port(component)}"


def ensure_image(client: DockerClient, reference: str) -> str:
    """The id of image ``reference``, pulling it when it is not present."""
    import docker

    try:
        return client.images.get(reference).id
    except docker.errors.ImageNotFound:
        pass
    logger.info("pulling %s", reference)
    try:
        return client.images.pull(reference).id
    except docker.errors.DockerException as exc:
        raise ImageUnavailable(
            f"image {reference} is not present and could not be pulled: {exc}",
            hint="check the network or the registry, or point LLMOPS_PROMETHEUS_IMAGE, "
            "LLMOPS_ALERTMANAGER_IMAGE or LLMOPS_GRAFANA_IMAGE at an image present locally",
        ) from exc
