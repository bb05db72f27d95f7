"""Measure the SIGKILL loss window for several LLMOPS_USAGE_FLUSH_INTERVAL_S values.

    python -m bench.sigkill_loss [--repeats 3] [--intervals 0.02,0.05,0.25,1.0]

Each run: a real gateway (zero-latency echo), 50 concurrent clients, SIGKILL after 3 s. It counts the
calls the clients got a 200 for whose usage rows are not in usage.db ("lost"), and how long before the
kill the oldest of them was acknowledged ("window").
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from tests.sigkill_loss import measure_sigkill_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--intervals", default="0.02,0.05,0.25,1.0")
    parser.add_argument("--out", type=Path, default=Path("bench/out/sigkill-loss.json"))
    args = parser.parse_args()
    runs = []
    for interval in (float(x) for x in args.intervals.split(",")):
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                figures = measure_sigkill_loss(Path(tmp), interval)
            runs.append({"flush_interval_s": interval, **figures})
            print(json.dumps(runs[-1]), flush=True)
    print(f"\n{'interval s':>10} {'rate/s':>8} {'acked':>7} {'lost':>14} {'window ms':>16}")
    for interval in sorted({r["flush_interval_s"] for r in runs}):
        these = [r for r in runs if r["flush_interval_s"] == interval]
        lost = [int(r["lost"]) for r in these]
        window = [r["window_s"] * 1000 for r in these]
        print(
            f"{interval:>10} {statistics.mean(r['rate_per_s'] for r in these):>8.0f} "
            f"{statistics.mean(r['acknowledged'] for r in these):>7.0f} "
            f"{min(lost):>4}-{max(lost):<4} (med {statistics.median(lost):>4.0f}) "
            f"{min(window):>6.1f}-{max(window):<6.1f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
