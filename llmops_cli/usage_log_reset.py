"""Emptying the usage log safely: through the running gateway's writer, or directly when none runs.

A running gateway keeps a connection and a queue of rows; deleting the file under it would send
rows to a deleted file. So while it runs, the gateway itself empties the log, in its writer's order.
"""

from __future__ import annotations

from pathlib import Path

import httpx


class UsageLogResetError(Exception):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def empty_usage_log(data_dir: Path, secret: str) -> tuple[int, str]:
    """Delete every usage row; returns (rows deleted, how)."""
    from llmops_cli.gateway_process import read_state
    from server.auth import ADMIN_SCOPE, mint_token
    from server.usage.store import connect

    state = read_state(data_dir)
    if state.running and state.url:
        token = mint_token(secret, "llmops-cli", 60, scopes=[ADMIN_SCOPE])
        try:
            response = httpx.post(
                f"{state.url}/admin/usage/clear", headers={"Authorization": f"Bearer {token}"}, timeout=60
            )
        except httpx.HTTPError as exc:
            raise UsageLogResetError(
                f"the gateway (pid {state.pid}) runs but did not answer: {type(exc).__name__}",
                hint="`llmops down` first, then run this again",
            ) from exc
        if response.status_code != 200:
            raise UsageLogResetError(
                f"the gateway refused to empty the usage log (HTTP {response.status_code}): "
                f"{response.text[:200]}",
                hint="`llmops down` first, then run this again",
            )
        return int(response.json()["deleted"]), f"through the running gateway (pid {state.pid})"
    db_path = data_dir / "usage.db"
    if not db_path.exists():
        return 0, "no usage log yet"
    conn = connect(db_path)
    try:
        deleted = conn.execute("DELETE FROM usage_logs").rowcount
        conn.execute("VACUUM")
    finally:
        conn.close()
    return deleted, "directly (the gateway is not running)"
