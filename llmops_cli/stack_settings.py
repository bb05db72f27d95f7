"""Settings of the Docker stack (Prometheus, Alertmanager, Grafana), from the environment and `.env`.

Unset settings fall through to the defaults of stack.config.StackConfig, which is the one place they live.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from server.settings import Settings
    from stack.config import StackConfig

GRAFANA_PASSWORD_VARIABLE = "GRAFANA_ADMIN_PASSWORD"


class StackSettings(BaseSettings):
    """`LLMOPS_<NAME>` variables of the stack, plus GRAFANA_ADMIN_PASSWORD."""

    model_config = SettingsConfigDict(env_prefix="LLMOPS_", env_file=".env", extra="ignore")

    stack: bool = True
    """False (LLMOPS_STACK=off): up, down and status manage the gateway only."""
    network_mode: Literal["host", "bridge"] | None = None
    bind_address: str | None = None
    prometheus_port: int | None = None
    alertmanager_port: int | None = None
    grafana_port: int | None = None
    prometheus_image: str | None = None
    alertmanager_image: str | None = None
    grafana_image: str | None = None
    scrape_interval: str | None = None
    health_timeout: float | None = Field(default=None, gt=0)
    # For running a second, separate stack next to the usual one (tests do).
    stack_project: str | None = None
    stack_name_prefix: str | None = None
    grafana_admin_password: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(GRAFANA_PASSWORD_VARIABLE, "LLMOPS_GRAFANA_ADMIN_PASSWORD"),
    )

    def to_config(self, gateway: Settings) -> StackConfig:
        """The StackConfig for this gateway: its data directory holds the stack's files, its host and port
        get scraped, and the alert rules and Alertmanager config are rendered from LLMOPS_ALERT_*."""
        from stack.config import StackConfig

        renamed = {"stack_project": "project", "stack_name_prefix": "name_prefix"}
        chosen = {
            renamed.get(name, name): value
            for name, value in self.model_dump(exclude={"stack", "grafana_admin_password"}).items()
            if value is not None
        }
        if self.grafana_admin_password is not None:
            chosen["grafana_admin_password"] = self.grafana_admin_password.get_secret_value()
        chosen["gateway_host"] = gateway.host
        chosen["gateway_port"] = gateway.port
        chosen["gateway_metrics_host"] = gateway.metrics_host
        chosen["gateway_metrics_port"] = gateway.metrics_port
        if gateway.metrics_token is not None:
            chosen["gateway_metrics_token"] = gateway.metrics_token.get_secret_value()
        config = StackConfig(data_dir=gateway.data_dir, **chosen)
        return dataclasses.replace(config, rendered_files=_rendered_alerting_files(config, gateway))


def _rendered_alerting_files(config: StackConfig, gateway: Settings) -> dict[str, str]:
    """Alert rules and alertmanager.yml filled in from the settings, by their path under <data>/stack/.

    Every command that writes the stack's files passes these, so none of them ever puts the raw
    templates in their place.
    """
    from stack.alerting import (
        AlertReceiverSettings,
        AlertRuleSettings,
        render_alertmanager_config,
        render_rules,
    )

    token = gateway.alerts_webhook_token.get_secret_value() if gateway.alerts_webhook_token else None
    webhook = f"{config.gateway_url_from_containers}/alerts/webhook"
    return {
        "prometheus/rules/llmops_alerts.yml": render_rules(AlertRuleSettings()),
        "alertmanager/alertmanager.yml": render_alertmanager_config(AlertReceiverSettings(), webhook, token),
    }


def load_stack_config(data_dir: Path | None = None) -> tuple[StackSettings, StackConfig]:
    """The stack settings and the StackConfig for the gateway settings in effect."""
    from llmops_cli.config import load_settings

    gateway = load_settings(data_dir)
    settings = StackSettings()
    return settings, settings.to_config(gateway)
