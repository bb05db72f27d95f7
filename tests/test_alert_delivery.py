"""Alertmanager routing: the rendered alertmanager.yml, and alerts travelling from a real gateway's
metrics through a real Prometheus and a real Alertmanager to the gateway's own webhook
(`llmops alerts`) and to a user's webhook (Alertmanager's standard webhook JSON, version 4)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
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
from tests.harness import Gateway, run_cli
from tests.local_monitoring import (
    binary,
    free_port,
    run_alertmanager,
    run_prometheus,
    run_webhook_recorder,
    wait_until,
)

GATEWAY_WEBHOOK = "http://127.0.0.1:8000/alerts/webhook"


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


# --- with the real gateway ---------------------------------------------------------------------

WEBHOOK_TOKEN = "alerts-webhook-token-" + "t" * 40
BROKEN_MODELS = {
    "default_model": "echo",
    "models": [
        {"name": "echo", "latency_ms": 5},
        {"name": "echo-broken", "latency_ms": 5, "failure_rate": 1.0, "retries": 0},
    ],
}


def short_rules(**overrides: Any) -> str:
    """The shipped rules with test-sized windows: 1 s scrapes make a 10 s window hold 10 samples."""
    values: dict[str, Any] = {"rate_window": "10s", "min_request_rate": 0.1, **overrides}
    return render_rules(AlertRuleSettings(_env_file=None, **values))  # type: ignore[call-arg]


def listed_alerts(gateway: Gateway, cwd: Path) -> list[dict[str, Any]]:
    """What `llmops alerts --json` shows for this gateway's data directory."""
    result = run_cli("alerts", "--json", "--data-dir", str(gateway.data_dir), cwd=cwd)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def test_error_ratio_alert_goes_from_the_gateway_to_llmops_alerts_and_resolves(tmp_path: Path) -> None:
    """Failures on the real gateway -> Prometheus rule -> Alertmanager -> the gateway's own
    webhook -> `llmops alerts`; a user webhook receives the same notifications, without our bearer."""
    gateway = Gateway(
        tmp_path / "gateway",
        env={"LLMOPS_MODELS": json.dumps(BROKEN_MODELS), "LLMOPS_ALERTS_WEBHOOK_TOKEN": WEBHOOK_TOKEN},
    ).start()

    def alerts_with(status: str) -> list[dict[str, Any]]:
        return [
            a
            for a in listed_alerts(gateway, tmp_path)
            if a["name"] == "LLMOpsHighErrorRatio" and a["status"] == status
        ]

    try:
        with run_webhook_recorder("/hook") as user_webhook:
            settings = receivers(webhook_url=user_webhook.url, group_wait="1s", group_interval="1s")
            am_config = render_alertmanager_config(
                settings, f"{gateway.url}/alerts/webhook", gateway_webhook_token=WEBHOOK_TOKEN
            )
            with (
                run_alertmanager(tmp_path / "alertmanager", am_config) as alertmanager,
                run_prometheus(
                    tmp_path / "prometheus",
                    [f"127.0.0.1:{gateway.port}"],
                    rules=short_rules(error_ratio_for="2s"),
                    alertmanager=alertmanager.address,
                ) as prometheus,
            ):
                wait_until(lambda: prometheus.query('up{job="llmops"} == 1'), 30, what="a first scrape")
                assert listed_alerts(gateway, tmp_path) == []
                for i in range(20):
                    response = httpx.post(
                        f"{gateway.url}/llm",
                        json={"prompt": f"burst {i}", "model": "echo-broken"},
                        headers=gateway.headers("burst"),
                        timeout=10,
                    )
                    assert response.status_code >= 500, response.text
                    time.sleep(0.1)

                firing = wait_until(lambda: alerts_with("firing"), 60, what="LLMOpsHighErrorRatio firing")
                status = run_cli("status", "--data-dir", str(gateway.data_dir), cwd=tmp_path)
                assert "1 alert(s) firing" in status.stdout, status.stdout + status.stderr
                # No more traffic: the window empties, the ratio is 0/0 and the alert resolves.
                resolved = wait_until(
                    lambda: alerts_with("resolved"), 90, what="LLMOpsHighErrorRatio resolved"
                )
                wait_until(
                    lambda: any(a["status"] == "resolved" for a in user_webhook.alerts()),
                    30,
                    what="the resolved notice at the user's webhook",
                )
    finally:
        gateway.stop()
    alert = firing[0]
    assert alert["labels"] == {
        "alertname": "LLMOpsHighErrorRatio",
        "model": "echo-broken",
        "severity": "warning",
        "service": "llmops",
    }
    assert alert["severity"] == "warning"
    assert alert["summary"] == "llmops: requests for model echo-broken are failing"
    assert alert["annotations"]["description"].startswith("100% of requests for echo-broken failed over 10s")
    assert resolved[0]["fingerprint"] == alert["fingerprint"]
    assert resolved[0]["ends_at"] > resolved[0]["starts_at"]
    # Only the broken model alerted (echo is healthy, the gateway stayed up), at both receivers.
    assert [a["name"] for a in listed_alerts(gateway, tmp_path)] == ["LLMOpsHighErrorRatio"]
    assert {(a["labels"]["alertname"], a["labels"]["model"]) for a in user_webhook.alerts()} == {
        ("LLMOpsHighErrorRatio", "echo-broken")
    }
    assert {a["status"] for a in user_webhook.alerts()} == {"firing", "resolved"}
    # The gateway's bearer goes to the gateway only.
    assert set(user_webhook.authorizations) == {None}


def test_an_idle_stack_fires_nothing(tmp_path: Path) -> None:
    """Gateway up, no traffic, every `for:` at 0s: several evaluations later nothing fires or pends.

    LLMOpsGatewayDown keeps a grace period: before Prometheus' first scrape `up` is absent, which is
    exactly what that rule reports (promtool's "fresh start" fixture covers it).
    """
    zero = {name: "0s" for name in AlertRuleSettings.model_fields if name.endswith("_for")}
    zero["gateway_down_for"] = "30s"
    gateway = Gateway(tmp_path / "gateway", env={"LLMOPS_ALERTS_WEBHOOK_TOKEN": WEBHOOK_TOKEN}).start()
    try:
        with run_webhook_recorder("/hook") as user_webhook:
            settings = receivers(webhook_url=user_webhook.url, group_wait="1s", group_interval="1s")
            am_config = render_alertmanager_config(
                settings, f"{gateway.url}/alerts/webhook", gateway_webhook_token=WEBHOOK_TOKEN
            )
            with (
                run_alertmanager(tmp_path / "alertmanager", am_config) as alertmanager,
                run_prometheus(
                    tmp_path / "prometheus",
                    [f"127.0.0.1:{gateway.port}"],
                    rules=short_rules(**zero),
                    alertmanager=alertmanager.address,
                ) as prometheus,
            ):
                wait_until(lambda: prometheus.query('up{job="llmops"} == 1'), 30, what="a first scrape")
                start = prometheus.rule_evaluations()
                wait_until(
                    lambda: prometheus.rule_evaluations() >= start + 12, 60, what="12 rule evaluations"
                )
                # The rules were really evaluated against real series, without errors.
                rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
                assert len(rules) == 7
                assert {r["health"] for r in rules} == {"ok"}
                assert prometheus.query('sum(llmops_requests_total{status="error"})')[0]["value"][1] == "0"
                assert prometheus.query("ALERTS") == []
                assert prometheus.api("alerts")["alerts"] == []
                assert alertmanager.alerts() == []
                time.sleep(2)  # group_wait: anything sent would have been delivered by now
                assert user_webhook.received == []
                assert listed_alerts(gateway, tmp_path) == []
    finally:
        gateway.stop()
