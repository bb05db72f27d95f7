"""The SIGKILL loss window: acknowledged calls whose usage rows were not yet written when the gateway died.

Shared by the test that bounds it and by bench/sigkill_loss.py, which measures it for several settings.
"""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

from tests.harness import Gateway
from tests.load_client import fast_models, load_result, start_load


def measure_sigkill_loss(
    tmp_path: Path, flush_interval_s: float, kill_after_s: float = 3.0
) -> dict[str, float]:
    """SIGKILL a gateway under load; count acknowledged calls without a row, and how long before the kill."""
    gw = Gateway(
        tmp_path / "gw", env={**fast_models(tmp_path), "LLMOPS_USAGE_FLUSH_INTERVAL_S": str(flush_interval_s)}
    ).start()
    out = tmp_path / "kill.json"
    assert gw.process is not None
    load = start_load(
        gw,
        out,
        "--concurrency",
        "50",
        "--kill-pid",
        str(gw.process.pid),
        "--kill-after",
        str(kill_after_s),
        count=1_000_000,
    )
    result = load_result(load, out)
    assert gw.stop() == -signal.SIGKILL
    kill_time = float(result["kill_time"])
    acknowledged = {rid: t for rid, status, t in result["results"] if status == 200}
    rows = {r["request_id"] for r in gw.rows()}
    lost = {rid: t for rid, t in acknowledged.items() if rid not in rows}
    assert rows <= {rid for rid, _, _ in result["results"]}  # no row for a call never sent
    conn = sqlite3.connect(gw.db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    recent = [t for t in acknowledged.values() if kill_time - 1.0 <= t <= kill_time]
    return {
        "acknowledged": len(acknowledged),
        "rows": len(rows),
        "lost": len(lost),
        "rate_per_s": len(recent) / 1.0,
        "window_s": kill_time - min(lost.values()) if lost else 0.0,
    }
