"""What the stack is made of: the settings of one Prometheus + Alertmanager + Grafana stack."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

COMPONENTS: tuple[str, ...] = ("prometheus", "alertmanager", "grafana")
"""Every container of the stack, in the order `up` starts them and reports on them."""

NetworkMode = Literal["host", "bridge"]

STANDARD_PORTS = {"prometheus": 9090, "alertmanager": 9093, "grafana": 3000}
"""The port each image listens on by default; used inside containers on a bridge network."""

HEALTH_PATHS = {"prometheus": "/-/ready", "alertmanager": "/-/ready", "grafana": "/api/health"}
"""The HTTP path that answers 200 once a component is ready."""

DEFAULT_PROMETHEUS_IMAGE = "prom/prometheus:v2.55.1"
DEFAULT_ALERTMANAGER_IMAGE = "prom/alertmanager:v0.28.1"
DEFAULT_GRAFANA_IMAGE = "grafana/grafana:11.6.1"

PACKAGED_CONFIG_DIR = Path(__file__).resolve().parent / "config"
"""Templates and config files shipped with the package (rules, alertmanager, grafana, prometheus.yml)."""

_WILDCARD_ADDRESSES = frozenset({"", "0.0.0.0", "::", "[::]"})


def default_network_mode() -> NetworkMode:
    """Host networking on Linux; elsewhere (Docker Desktop: macOS, Windows) a bridge with published ports."""
    return "host" if sys.platform.startswith("linux") else "bridge"


@dataclass(frozen=True)
class StackConfig:
    """Settings of one stack.

    ``project`` is the value of the ``io.llmops.project`` label and ``name_prefix`` starts every object
    name, so a test session can run a stack of its own next to a user's real one without touching it.
    """

    data_dir: Path
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    gateway_metrics_host: str = "127.0.0.1"
    gateway_metrics_port: int | None = None
    """The gateway's separate /metrics listener, when it has one (LLMOPS_METRICS_PORT)."""
    gateway_metrics_token: str = field(default="", repr=False)
    """The bearer the gateway's /metrics wants (LLMOPS_METRICS_TOKEN); empty when it wants none."""
    network_mode: NetworkMode = field(default_factory=default_network_mode)
    bind_address: str = "127.0.0.1"
    prometheus_port: int = 9090
    alertmanager_port: int = 9093
    grafana_port: int = 3000
    prometheus_image: str = DEFAULT_PROMETHEUS_IMAGE
    alertmanager_image: str = DEFAULT_ALERTMANAGER_IMAGE
    grafana_image: str = DEFAULT_GRAFANA_IMAGE
    grafana_admin_user: str = "admin"
    grafana_admin_password: str = field(default="", repr=False)
    scrape_interval: str = "5s"
    name_prefix: str = "llmops-"
    project: str = "llmops"
    health_timeout: float = 90.0
    config_source: Path = PACKAGED_CONFIG_DIR
    rendered_files: dict[str, str] = field(default_factory=dict, repr=False)
    """Files rendered by the caller (e.g. alert rules and alertmanager.yml filled from settings), keyed by
    their path under ``files_dir`` such as ``alertmanager/alertmanager.yml``; they replace the copies of
    the templates at those paths."""

    def __post_init__(self) -> None:
        if self.network_mode not in ("host", "bridge"):
            raise ValueError(f"network_mode must be 'host' or 'bridge', not {self.network_mode!r}")
        # Docker needs absolute bind-mount sources (a relative one reads as a volume name).
        object.__setattr__(self, "data_dir", Path(self.data_dir).absolute())
        object.__setattr__(self, "config_source", Path(self.config_source))

    @property
    def files_dir(self) -> Path:
        """Where `up` writes the config files the containers mount."""
        return self.data_dir / "stack"

    def object_name(self, suffix: str) -> str:
        """The Docker name of one of our objects, e.g. ``llmops-prometheus``."""
        return f"{self.name_prefix}{suffix}"

    def host_port(self, component: str) -> int:
        """The port a component answers on at the host's loopback (or ``bind_address``)."""
        ports = {
            "prometheus": self.prometheus_port,
            "alertmanager": self.alertmanager_port,
            "grafana": self.grafana_port,
        }
        return ports[component]

    def listen_port(self, component: str) -> int:
        """The port a component listens on inside its container.

        With host networking that is the host port itself; on a bridge network each container has its
        own address, so the images' usual ports are used and published on the host port.
        """
        if self.network_mode == "host":
            return self.host_port(component)
        return STANDARD_PORTS[component]

    def internal_address(self, component: str) -> str:
        """``host:port`` at which the other containers of the stack reach a component."""
        if self.network_mode == "host":
            return f"{self.probe_host}:{self.host_port(component)}"
        return f"{self.object_name(component)}:{STANDARD_PORTS[component]}"

    @property
    def probe_host(self) -> str:
        """The host address that reaches the containers from this machine."""
        return "127.0.0.1" if self.bind_address in _WILDCARD_ADDRESSES else self.bind_address

    def url(self, component: str) -> str:
        """The URL a user opens for a component."""
        return f"http://{self.probe_host}:{self.host_port(component)}"

    def health_url(self, component: str) -> str:
        """The URL probed from the host to decide whether a component is ready."""
        return self.url(component) + HEALTH_PATHS[component]

    @property
    def gateway_url_from_containers(self) -> str:
        """Base URL of the gateway as the containers reach it (for Alertmanager's webhook to the gateway)."""
        return f"http://{self._from_containers(self.gateway_host, self.gateway_port)}"

    @property
    def gateway_scrape_target(self) -> str:
        """``host:port`` at which Prometheus, inside its container, reaches the gateway's /metrics."""
        if self.gateway_metrics_port is not None:
            return self._from_containers(self.gateway_metrics_host, self.gateway_metrics_port)
        return self._from_containers(self.gateway_host, self.gateway_port)

    def _from_containers(self, host: str, port: int) -> str:
        """``host:port`` of a listener of the gateway's as seen from inside a container."""
        if self.network_mode == "bridge":
            return f"host.docker.internal:{port}"
        if host in _WILDCARD_ADDRESSES:
            host = "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{host}:{port}"
