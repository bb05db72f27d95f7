"""Alert rules and Alertmanager routing, rendered from settings.

Two files come out of here; the caller hands them to the stack (``StackConfig.rendered_files``) in
place of the raw templates, whose ``@{...}`` placeholders Prometheus would refuse:

* ``render_rules(AlertRuleSettings)`` fills the thresholds and ``for:`` durations into
  ``config/rules/llmops_alerts.yml`` -> ``prometheus/rules/llmops_alerts.yml``.
* ``render_alertmanager_config(AlertReceiverSettings, gateway_webhook_url, token)`` fills the
  receivers into ``config/alertmanager/alertmanager.yml`` -> ``alertmanager/alertmanager.yml``.
  The gateway's own webhook is always a receiver, so ``llmops alerts`` works whether or not
  Slack, e-mail or another webhook is configured.

Settings come from the environment (and ``.env``) with the prefix ``LLMOPS_ALERT_``, e.g.
``LLMOPS_ALERT_ERROR_RATIO=0.1`` or ``LLMOPS_ALERT_ERROR_RATIO_FOR=10m``.

This module is pure: it reads templates shipped in the package and returns text. It never
touches Docker or the network.
"""

from __future__ import annotations

import re
import string
from importlib import resources
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Prometheus' duration syntax (model.ParseDuration): units from largest to smallest, e.g. "1h30m".
_DURATION = re.compile(r"^(?:\d+y)?(?:\d+w)?(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?(?:\d+ms)?$")

ALERTMANAGER_RECEIVER = "llmops"


def _prometheus_duration(value: str) -> str:
    if not value or not _DURATION.match(value):
        raise ValueError(f"{value!r} is not a Prometheus duration such as 30s, 5m or 1h30m")
    return value


Duration = Annotated[str, AfterValidator(_prometheus_duration)]
Ratio = Annotated[float, Field(gt=0, le=1)]
PositiveFloat = Annotated[float, Field(gt=0)]


class AlertRuleSettings(BaseSettings):
    """Thresholds and ``for:`` durations of the shipped alert rules (env prefix ``LLMOPS_ALERT_``)."""

    model_config = SettingsConfigDict(env_prefix="LLMOPS_ALERT_", env_file=".env", extra="ignore")

    rate_window: Duration = "5m"
    # Ratio and latency alerts stay quiet below this many requests per second (per model), so an
    # idle or nearly idle gateway never pages on one unlucky request.
    min_request_rate: float = Field(default=0.02, ge=0)

    error_ratio: Ratio = 0.05
    error_ratio_for: Duration = "5m"
    fallback_ratio: Ratio = 0.25
    fallback_ratio_for: Duration = "10m"
    latency_p95_seconds: PositiveFloat = 30.0
    latency_p95_for: Duration = "10m"
    gateway_down_for: Duration = "1m"
    tokens_per_second: PositiveFloat = 2000.0
    token_burn_for: Duration = "15m"
    cost_usd_per_hour: PositiveFloat = 5.0
    cost_burn_for: Duration = "15m"
    usage_write_errors_for: Duration = "0s"


class AlertReceiverSettings(BaseSettings):
    """Where Alertmanager sends notifications besides the gateway (env prefix ``LLMOPS_ALERT_``)."""

    model_config = SettingsConfigDict(env_prefix="LLMOPS_ALERT_", env_file=".env", extra="ignore")

    webhook_url: str | None = None
    slack_webhook_url: SecretStr | None = None
    slack_channel: str | None = None
    email_to: str | None = None
    smtp_smarthost: str | None = None
    smtp_from: str | None = None
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_require_tls: bool = True

    group_wait: Duration = "30s"
    group_interval: Duration = "5m"
    repeat_interval: Duration = "4h"

    @model_validator(mode="after")
    def _email_needs_a_server(self) -> AlertReceiverSettings:
        if self.email_to and not (self.smtp_smarthost and self.smtp_from):
            raise ValueError(
                "LLMOPS_ALERT_EMAIL_TO needs LLMOPS_ALERT_SMTP_SMARTHOST (host:port)"
                " and LLMOPS_ALERT_SMTP_FROM"
            )
        return self


# `@{name}` is a setting, `@@` a literal `@`; any other `@` is an error rather than a silent typo.
_PLACEHOLDER = r"""
    @(?:
      (?P<escaped>@) |
      \{(?P<braced>[a-z_][a-z0-9_]*)\} |
      (?P<named>(?!)) |
      (?P<invalid>)
    )
"""


class _RuleTemplate(string.Template):
    """``@{name}`` placeholders: ``$`` already belongs to Prometheus' ``$labels`` and ``$value``."""

    delimiter = "@"
    # string.Template compiles a str pattern in __init_subclass__; typeshed only knows the result.
    pattern = _PLACEHOLDER  # type: ignore[assignment]


def _config_text(*parts: str) -> str:
    return resources.files("stack").joinpath("config", *parts).read_text(encoding="utf-8")


def _number(value: float) -> str:
    # repr keeps full precision and is a valid PromQL literal (2000, 0.05, 1e-05); "30" reads
    # better than "30.0" in an alert description.
    return repr(float(value)).removesuffix(".0")


def _percent(ratio: float) -> str:
    return f"{ratio * 100:g}%"


def render_rules(settings: AlertRuleSettings) -> str:
    """Return the Prometheus rule file with every threshold and ``for:`` taken from ``settings``."""
    values: dict[str, str] = {
        "rate_window": settings.rate_window,
        "min_request_rate": _number(settings.min_request_rate),
        "error_ratio": _number(settings.error_ratio),
        "error_ratio_percent": _percent(settings.error_ratio),
        "error_ratio_for": settings.error_ratio_for,
        "fallback_ratio": _number(settings.fallback_ratio),
        "fallback_ratio_percent": _percent(settings.fallback_ratio),
        "fallback_ratio_for": settings.fallback_ratio_for,
        "latency_p95_seconds": _number(settings.latency_p95_seconds),
        "latency_p95_for": settings.latency_p95_for,
        "gateway_down_for": settings.gateway_down_for,
        "tokens_per_second": _number(settings.tokens_per_second),
        "token_burn_for": settings.token_burn_for,
        "cost_usd_per_hour": _number(settings.cost_usd_per_hour),
        "cost_burn_for": settings.cost_burn_for,
        "usage_write_errors_for": settings.usage_write_errors_for,
    }
    return _RuleTemplate(_config_text("rules", "llmops_alerts.yml")).substitute(values)


def render_alertmanager_config(
    settings: AlertReceiverSettings,
    gateway_webhook_url: str,
    gateway_webhook_token: str | None = None,
) -> str:
    """Return alertmanager.yml: the gateway webhook plus every receiver ``settings`` configures.

    ``gateway_webhook_token``, when given, is sent as ``Authorization: Bearer`` so the gateway can
    refuse alerts that did not come from our Alertmanager.
    """
    config: dict[str, Any] = yaml.safe_load(_config_text("alertmanager", "alertmanager.yml"))
    route = config["route"]
    route["receiver"] = ALERTMANAGER_RECEIVER
    route["group_wait"] = settings.group_wait
    route["group_interval"] = settings.group_interval
    route["repeat_interval"] = settings.repeat_interval

    gateway_webhook: dict[str, Any] = {"url": gateway_webhook_url, "send_resolved": True}
    if gateway_webhook_token:
        gateway_webhook["http_config"] = {
            "authorization": {"type": "Bearer", "credentials": gateway_webhook_token}
        }
    receiver: dict[str, Any] = {"name": ALERTMANAGER_RECEIVER, "webhook_configs": [gateway_webhook]}
    if settings.webhook_url:
        receiver["webhook_configs"].append({"url": settings.webhook_url, "send_resolved": True})
    if settings.slack_webhook_url:
        slack: dict[str, Any] = {
            "api_url": settings.slack_webhook_url.get_secret_value(),
            "send_resolved": True,
            "title": "{{ .Status | toUpper }}: {{ .CommonLabels.alertname }}",
            "text": (
                "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ .Annotations.description }}\n{{ end }}"
            ),
        }
        if settings.slack_channel:
            slack["channel"] = settings.slack_channel
        receiver["slack_configs"] = [slack]
    if settings.email_to:
        email: dict[str, Any] = {
            "to": settings.email_to,
            "from": settings.smtp_from,
            "smarthost": settings.smtp_smarthost,
            "require_tls": settings.smtp_require_tls,
            "send_resolved": True,
        }
        if settings.smtp_username:
            email["auth_username"] = settings.smtp_username
        if settings.smtp_password:
            email["auth_password"] = settings.smtp_password.get_secret_value()
        receiver["email_configs"] = [email]
    config["receivers"] = [receiver]
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
