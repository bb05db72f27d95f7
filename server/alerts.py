"""Alerts that Alertmanager sends to the gateway's own webhook, kept so `llmops alerts` can list them.

One row per alert (Alertmanager's fingerprint), updated as it fires and resolves.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from server.errors import RequestError
from server.usage.row import utc_now_iso
from server.usage.store import connect

ALERT_COLUMNS = [
    "fingerprint",
    "name",
    "status",
    "severity",
    "summary",
    "labels",
    "annotations",
    "starts_at",
    "ends_at",
    "received_at",
]


def parse_webhook(payload: object) -> list[tuple[str, ...]]:
    """Rows from an Alertmanager webhook payload (version 4)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise RequestError("not an Alertmanager webhook payload: `alerts` must be an array")
    rows = []
    received = utc_now_iso()
    for alert in payload["alerts"]:
        if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
            raise RequestError("every alert needs a `labels` object")
        labels: dict[str, Any] = alert["labels"]
        annotations: dict[str, Any] = alert.get("annotations") or {}
        fingerprint = str(alert.get("fingerprint") or json.dumps(labels, sort_keys=True))
        status = "resolved" if alert.get("status") == "resolved" else "firing"
        rows.append(
            (
                fingerprint,
                str(labels.get("alertname", "unnamed")),
                status,
                labels.get("severity"),
                annotations.get("summary"),
                json.dumps(labels, sort_keys=True),
                json.dumps(annotations, sort_keys=True),
                alert.get("startsAt"),
                alert.get("endsAt") if status == "resolved" else None,
                received,
            )
        )
    return rows


def record_alerts(db_path: Path, rows: list[tuple[str, ...]]) -> None:
    """Insert or update alerts; called off the event loop (it is a small synchronous write)."""
    conn = connect(db_path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            f"INSERT INTO alerts ({', '.join(ALERT_COLUMNS)}) VALUES ({', '.join('?' * len(ALERT_COLUMNS))}) "
            "ON CONFLICT(fingerprint) DO UPDATE SET status=excluded.status, ends_at=excluded.ends_at, "
            "summary=excluded.summary, annotations=excluded.annotations, received_at=excluded.received_at, "
            "starts_at=excluded.starts_at",
            rows,
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def list_alerts(conn: sqlite3.Connection, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Alerts, firing first, newest first."""
    where, params = ("WHERE status = ?", [status]) if status else ("", [])
    sql = (
        f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts {where} "
        "ORDER BY status = 'firing' DESC, received_at DESC LIMIT ?"
    )
    rows = [dict(zip(ALERT_COLUMNS, r, strict=True)) for r in conn.execute(sql, [*params, limit])]
    for row in rows:
        row["labels"] = json.loads(row["labels"])
        row["annotations"] = json.loads(row["annotations"])
    return rows


def firing_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM alerts WHERE status = 'firing'").fetchone()[0])
