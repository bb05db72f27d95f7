"""The gateway's own Alertmanager webhook and `llmops alerts`."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.harness import Gateway, run_cli

WEBHOOK_TOKEN = "webhook-token-" + "w" * 40


def payload(status: str) -> dict[str, object]:
    """An Alertmanager webhook body (version 4), as Alertmanager sends it."""
    alert = {
        "status": status,
        "labels": {"alertname": "LLMOpsHighErrorRatio", "severity": "critical", "job": "llmops"},
        "annotations": {"summary": "error ratio above 5% for 1m"},
        "startsAt": "2026-12-03T10:00:00Z",
        "endsAt": "2026-12-03T10:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph",
        "fingerprint": "abc123",
    }
    return {
        "version": "4",
        "groupKey": "{}:{}",
        "status": status,
        "receiver": "llmops-gateway",
        "groupLabels": {},
        "commonLabels": alert["labels"],
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [alert],
        "truncatedAlerts": 0,
    }


def test_webhook_records_firing_then_resolved(tmp_path: Path) -> None:
    gw = Gateway(tmp_path / "gw", env={"LLMOPS_ALERTS_WEBHOOK_TOKEN": WEBHOOK_TOKEN}).start()
    try:
        url = f"{gw.url}/alerts/webhook"
        before = gw.settle()
        assert httpx.post(url, json=payload("firing")).status_code == 401
        assert (
            httpx.post(url, json=payload("firing"), headers={"Authorization": "Bearer nope"}).status_code
            == 401
        )
        auth = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
        assert httpx.post(url, json={"alerts": "no"}, headers=auth).status_code == 400
        response = httpx.post(url, json=payload("firing"), headers=auth)
        assert response.status_code == 200 and response.json() == {"received": 1}

        cli = {"cwd": tmp_path, "env": {"JWT_SECRET": gw.secret}}
        listed = json.loads(run_cli("alerts", "--json", "--data-dir", str(gw.data_dir), **cli).stdout)
        assert [(a["name"], a["status"], a["severity"]) for a in listed] == [
            ("LLMOpsHighErrorRatio", "firing", "critical")
        ]
        assert "1 alert(s) firing" in run_cli("status", "--data-dir", str(gw.data_dir), **cli).stdout

        httpx.post(url, json=payload("resolved"), headers=auth)
        listed = json.loads(run_cli("alerts", "--json", "--data-dir", str(gw.data_dir), **cli).stdout)
        assert [(a["status"], a["ends_at"]) for a in listed] == [("resolved", "2026-12-03T10:05:00Z")]
        assert run_cli("alerts", "--firing", "--data-dir", str(gw.data_dir), **cli).stderr.startswith(
            "no alerts received firing"
        )
        table = run_cli("alerts", "--data-dir", str(gw.data_dir), **cli).stdout
        assert "LLMOpsHighErrorRatio" in table and "resolved" in table
        assert gw.settle() == before + 1  # webhook calls leave no usage rows
    finally:
        gw.stop()


def test_webhook_is_off_without_its_token(gateway: Gateway) -> None:
    response = httpx.post(f"{gateway.url}/alerts/webhook", json=payload("firing"))
    assert response.status_code == 404
    assert "LLMOPS_ALERTS_WEBHOOK_TOKEN" in response.json()["error"]["message"]
