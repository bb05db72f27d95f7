"""Alertmanager routing: the rendered alertmanager.yml, and alerts travelling from a real
Prometheus through a real Alertmanager to the webhook (Alertmanager's standard webhook JSON)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from stack.alerting import (
    ALERTMANAGER_RECEIVER,
    AlertReceiverSettings,
    AlertRuleSettings,
    render_alertmanager_config,
    render_rules,
)
from tests.local_monitoring import (
    binary,
    free_port,
    run_alertmanager,
    run_prometheus,
    run_webhook_recorder,
    wait_until,
)

GATEWAY_WEBHOOK = "http://127.0.0.1:8000/alerts/webhook"


@pytest.fixture(autouse=True)
def _no_alert_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("LLMOPS_ALERT_"):
            monkeypatch.delenv(name)


def receivers(**values: Any) -> AlertReceiverSettings:
    return AlertReceiverSettings(_env_file=None, **values)  # type: ignore[call-arg]


def amtool_check(tmp_path: Path, config: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "alertmanager.yml"
    path.write_text(config)
    return subprocess.run(
        [binary("amtool"), "check-config", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def test_default_config_sends_everything_to_the_gateway_only(tmp_path: Path) -> None:
    text = render_alertmanager_config(receivers(), GATEWAY_WEBHOOK)
    result = amtool_check(tmp_path, text)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(text)
    assert config["route"]["receiver"] == ALERTMANAGER_RECEIVER
    assert config["receivers"] == [
        {
            "name": ALERTMANAGER_RECEIVER,
            "webhook_configs": [{"url": GATEWAY_WEBHOOK, "send_resolved": True}],
        }
    ]


def test_every_receiver_kind_renders_to_a_config_amtool_accepts(tmp_path: Path) -> None:
    settings = receivers(
        webhook_url="http://127.0.0.1:9999/hook",
        slack_webhook_url="https://hooks.slack.invalid/services/T0/B0/x",
        slack_channel="#llmops",
        email_to="oncall@example.invalid",
        smtp_smarthost="smtp.example.invalid:587",
        smtp_from="llmops@example.invalid",
        smtp_username="llmops",
        smtp_password="smtp-secret",
        group_wait="5s",
        group_interval="1m",
        repeat_interval="12h",
    )
    text = render_alertmanager_config(settings, GATEWAY_WEBHOOK, gateway_webhook_token="gw-token")
    result = amtool_check(tmp_path, text)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(text)
    assert (config["route"]["group_wait"], config["route"]["group_interval"]) == ("5s", "1m")
    assert config["route"]["repeat_interval"] == "12h"
    (receiver,) = config["receivers"]
    gateway, user_webhook = receiver["webhook_configs"]
    assert gateway["url"] == GATEWAY_WEBHOOK
    assert gateway["http_config"]["authorization"] == {"type": "Bearer", "credentials": "gw-token"}
    assert user_webhook == {"url": "http://127.0.0.1:9999/hook", "send_resolved": True}
    (slack,) = receiver["slack_configs"]
    assert slack["api_url"] == "https://hooks.slack.invalid/services/T0/B0/x"
    assert slack["channel"] == "#llmops"
    (email,) = receiver["email_configs"]
    assert email["to"] == "oncall@example.invalid"
    assert email["smarthost"] == "smtp.example.invalid:587"
    assert email["auth_password"] == "smtp-secret"
    assert email["require_tls"] is True


def test_secrets_stay_out_of_the_settings_repr() -> None:
    settings = receivers(slack_webhook_url="https://hooks.slack.invalid/secret-path", smtp_password="pw-123")
    assert "secret-path" not in repr(settings)
    assert "pw-123" not in repr(settings)


def test_email_without_an_smtp_server_is_refused() -> None:
    with pytest.raises(ValidationError, match="SMTP_SMARTHOST"):
        receivers(email_to="oncall@example.invalid")


def test_gateway_down_alert_goes_from_prometheus_through_alertmanager_to_the_webhook(tmp_path: Path) -> None:
    """Nothing listens on the scrape target: up == 0, LLMOpsGatewayDown fires and is delivered."""
    rules = render_rules(AlertRuleSettings(_env_file=None, gateway_down_for="2s"))  # type: ignore[call-arg]
    closed_port = free_port()
    with run_webhook_recorder() as recorder:
        am_config = render_alertmanager_config(
            receivers(group_wait="1s", group_interval="1s"), recorder.url, gateway_webhook_token="test-token"
        )
        with (
            run_alertmanager(tmp_path / "alertmanager", am_config) as alertmanager,
            run_prometheus(
                tmp_path / "prometheus",
                [f"127.0.0.1:{closed_port}"],
                rules=rules,
                alertmanager=alertmanager.address,
            ),
        ):
            alerts = wait_until(
                lambda: [a for a in recorder.alerts() if a["labels"]["alertname"] == "LLMOpsGatewayDown"],
                timeout=60,
                what="LLMOpsGatewayDown at the webhook",
            )
    (alert,) = alerts[:1]
    assert alert["status"] == "firing"
    assert alert["labels"]["job"] == "llmops"
    assert alert["labels"]["instance"] == f"127.0.0.1:{closed_port}"
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["summary"] == "llmops gateway is down"
    assert alert["fingerprint"]
    assert alert["startsAt"]
    payload = recorder.received[0]
    assert payload["version"] == "4"
    assert payload["receiver"] == ALERTMANAGER_RECEIVER
    assert payload["status"] == "firing"
    assert recorder.authorizations[0] == "Bearer test-token"
