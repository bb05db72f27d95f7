"""Turn one bench/run.sh output folder into results.tsv and summary.md.

Reads what run.sh wrote (meta.env, runs.tsv: every measured wrk run; ttft.tsv; facts.tsv: single
figures such as start-up time and memory; profile-*.txt: py-spy raw stacks) and writes
    results.tsv   figure, target, mode, conc, value, unit: one figure per line, medians over rounds
    summary.md    the tables, the ratios to each peer, the issue's targets and the profile's top costs
Standard library only.  Usage: report.py OUT_DIR
"""

import csv
import re
import statistics
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path

SUBJECT = "llmops"  # the gateway the targets are about; peers are every other target
MIB = 1024

MODE_TITLES = {"json": "plain JSON", "stream": "streamed (SSE, latency to the last byte)"}


def read_kv_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def read_runs(out: Path) -> list[dict[str, str]]:
    with (out / "runs.tsv").open() as f:
        return list(csv.DictReader(f, delimiter="\t"))


def read_facts(out: Path) -> dict[tuple[str, str], str]:
    facts = {}
    path = out / "facts.tsv"
    if path.exists():
        for line in path.read_text().splitlines():
            target, key, value = line.split("\t", 2)
            facts[target, key] = value
    return facts


def read_ttft(out: Path) -> dict[str, dict[str, list[float]]]:
    """ttft.tsv lines: round, target, key=value ... -> target -> key -> one value per round."""
    by_target: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    path = out / "ttft.tsv"
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) < 3 or not parts[2]:
                continue
            for pair in parts[2].split():
                key, value = pair.split("=", 1)
                by_target[parts[1]][key].append(float(value))
    return by_target


def conc_order(label: str) -> tuple[int, str]:
    return int(label.rstrip("s")), label


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


class Summary:
    """Medians per (mode, conc, target) over the rounds, and the figures derived from them."""

    def __init__(self, runs: list[dict[str, str]], targets: list[str]) -> None:
        self.targets = targets
        self.points: dict[tuple[str, str, str], list[dict[str, str]]] = defaultdict(list)
        for run in runs:
            self.points[run["mode"], run["conc"], run["target"]].append(run)
        self.modes = [m for m in MODE_TITLES if any(k[0] == m for k in self.points)]
        self.concs = sorted({k[1] for k in self.points}, key=conc_order)

    def median(self, mode: str, conc: str, target: str, field: str) -> float | None:
        runs = self.points.get((mode, conc, target))
        if not runs or runs[0].get(field) is None:
            return None
        return statistics.median(float(r[field]) for r in runs)

    def total(self, mode: str, conc: str, target: str, *fields: str) -> int:
        return sum(int(r[f]) for r in self.points.get((mode, conc, target), []) for f in fields)

    def added_ms(self, mode: str, conc: str, target: str, field: str) -> float | None:
        gateway = self.median(mode, conc, target, field)
        direct = self.median(mode, conc, "direct", field)
        return None if gateway is None or direct is None else (gateway - direct) / 1000

    def ratio(self, mode: str, conc: str, target: str, peer: str) -> float | None:
        mine = self.median(mode, conc, target, "rps")
        theirs = self.median(mode, conc, peer, "rps")
        return mine / theirs if mine and theirs else None

    def rss_under_load_kb(self, target: str) -> float | None:
        values = [float(r["rss_kb"]) for k, runs in self.points.items() if k[2] == target for r in runs]
        return max(values) if values else None


@dataclass
class Profile:
    """py-spy raw stacks, folded to functions (line numbers dropped) and to packages."""

    samples: int = 0
    own: Counter[str] = field(default_factory=Counter)
    own_by_package: Counter[str] = field(default_factory=Counter)
    project_inclusive: Counter[str] = field(default_factory=Counter)

    @classmethod
    def read(cls, path: Path) -> "Profile":
        profile = cls()
        for line in path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            frames = [short_frame(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
            if not frames:
                continue
            count = int(count_text)
            profile.samples += count
            function, file = frames[-1]
            profile.own[f"{function} ({file})"] += count
            profile.own_by_package[package_of(file)] += count
            for function, file in set(frames):
                if file.startswith("server/"):
                    profile.project_inclusive[f"{function} ({file})"] += count
        return profile


def short_frame(frame: str) -> tuple[str, str]:
    """'handle (/venv/lib/python3.11/site-packages/x/y.py:12)' -> ('handle', 'x/y.py')."""
    match = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
    if not match:
        return frame, ""
    function, path = match.groups()
    path = re.sub(r".*/(site-packages|lib/python3\.\d+)/", "", path)
    path = re.sub(r".*/(server|llmops_cli|bench)/", r"\1/", path)
    return function, path


def package_of(file: str) -> str:
    """'aiohttp/client.py' -> 'aiohttp', 'uuid.py' -> 'uuid'."""
    return file.split("/", 1)[0].removesuffix(".py") or "?"


def import_times(path: Path, top: int = 12) -> tuple[int, list[tuple[str, int, int]]]:
    """`python -X importtime` output -> (total us, top-level imports as (module, cumulative, own) by cost)."""
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not line.startswith("import time:") or not parts[1].strip().isdigit():
            continue
        own = int(parts[0].removeprefix("import time:").strip())
        cumulative = int(parts[1].strip())
        name = parts[2][1:]
        if not name.startswith(" "):  # nested imports are indented under the one that caused them
            rows.append((name, cumulative, own))
    rows.sort(key=lambda row: row[1], reverse=True)
    return sum(row[1] for row in rows), rows[:top]


def main() -> int:
    out = Path(sys.argv[1])
    meta = read_kv_file(out / "meta.env")
    targets = meta.get("targets", "").split()
    summary = Summary(read_runs(out), targets)
    facts = read_facts(out)
    ttft = read_ttft(out)
    subject = SUBJECT if SUBJECT in targets else next((t for t in targets if t != "direct"), "direct")
    results: list[tuple[str, str, str, str, str, str]] = []
    duration_ms = float(meta.get("duration", "10")) * 1000

    def result(figure: str, target: str, mode: str, conc: str, value: float | str | None, unit: str) -> None:
        if value is None:
            return
        text = f"{value:.4f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
        results.append((figure, target, mode, conc, text, unit))

    md: list[str] = []
    w = md.append
    w(f"# bench run {meta.get('date', '')} (commit {meta.get('commit', '?')})\n")
    w(
        f"- machine: {meta.get('cpus')} CPUs `{meta.get('cpu_model')}` "
        f"({meta.get('hypervisor') or 'no hypervisor'}), {meta.get('memory')}, kernel {meta.get('kernel')}"
    )
    w(
        f"- {meta.get('python')}, CPU speed `timeit sum(range(1000))`: {meta.get('python_speed')}; "
        f"{meta.get('wrk')}"
    )
    w(f"- llmops venv: {meta.get('llmops_venv')}")
    if meta.get("litellm_venv"):
        w(f"- LiteLLM venv: {meta.get('litellm_venv')}")
    w(f"- layout: {meta.get('layout')}")
    w(
        f"- each point: {meta.get('warmup')} s warm-up, then {meta.get('duration')} s measured; "
        f"{meta.get('rounds')} interleaved round(s); medians over rounds; "
        "wrk -t1 at concurrency 1, -t2 above\n"
    )

    for mode in summary.modes:
        for conc in summary.concs:
            if not any((mode, conc, t) in summary.points for t in targets):
                continue
            where = ", gateway on the upstream's core" if conc.endswith("s") else ""
            w(f"## {MODE_TITLES[mode]}, concurrency {conc.rstrip('s')}{where}\n")
            w(
                "| target | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms | CPU ms/req | errors "
                "| CPU used by other processes, % of a core |"
            )
            w("|---|---|---|---|---|---|---|---|---|")
            for t in targets:
                rps = summary.median(mode, conc, t, "rps")
                if rps is None:
                    continue
                p50 = summary.median(mode, conc, t, "p50_us") or 0
                p99 = summary.median(mode, conc, t, "p99_us") or 0
                a50 = summary.added_ms(mode, conc, t, "p50_us") if t != "direct" else None
                a99 = summary.added_ms(mode, conc, t, "p99_us") if t != "direct" else None
                cpu = summary.median(mode, conc, t, "cpu_ms_per_req")
                errors = summary.total(mode, conc, t, "non200", "socket_errors")
                foreign = summary.median(mode, conc, t, "foreign_cpu_ms")
                foreign_pct = None if foreign is None else max(0.0, foreign / duration_ms * 100)
                w(
                    f"| {t} | {fmt(rps, 0)} | {fmt(p50 / 1000)} | {fmt(p99 / 1000)} | "
                    f"{fmt(a50)} | {fmt(a99)} | {fmt(cpu)} | {errors} | {fmt(foreign_pct, 0)} |"
                )
                for figure, value, unit in [
                    ("rps", rps, "1/s"),
                    ("p50", p50 / 1000, "ms"),
                    ("p99", p99 / 1000, "ms"),
                    ("added_p50", a50, "ms"),
                    ("added_p99", a99, "ms"),
                    ("cpu_per_request", cpu, "ms"),
                    ("errors", float(errors), "count"),
                ]:
                    result(figure, t, mode, conc, value, unit)
                for peer in targets:
                    if peer != t:
                        result(f"rps_ratio_to_{peer}", t, mode, conc, summary.ratio(mode, conc, t, peer), "x")
            w("")

    if subject != "direct":
        others = [t for t in targets if t != subject]
        w(f"## Ratios: {subject} req/s ÷ each peer's (same run)\n")
        w("| mode | concurrency | " + " | ".join(f"÷ {p}" for p in others) + " |")
        w("|---|---|" + "---|" * len(others))
        for mode in summary.modes:
            for conc in summary.concs:
                if (mode, conc, subject) not in summary.points:
                    continue
                cells = [fmt(summary.ratio(mode, conc, subject, p), 3) for p in others]
                w(f"| {mode} | {conc} | " + " | ".join(cells) + " |")
        w("")
        w(
            f"Requests per CPU-second of the gateway's own processes, {subject} ÷ each peer's: the same "
            "comparison with the machine's other load taken out (a gateway that shares its core with "
            "something else serves fewer requests/s, but each costs the same CPU).\n"
        )
        gateways = [t for t in others if t != "direct"]
        w("| mode | concurrency | " + " | ".join(f"÷ {p}" for p in gateways) + " |")
        w("|---|---|" + "---|" * len(gateways))
        for mode in summary.modes:
            for conc in summary.concs:
                mine = summary.median(mode, conc, subject, "cpu_ms_per_req")
                if not mine:
                    continue
                cells = []
                for peer in gateways:
                    theirs = summary.median(mode, conc, peer, "cpu_ms_per_req")
                    ratio = theirs / mine if theirs else None
                    cells.append(fmt(ratio, 3))
                    result(f"cpu_efficiency_ratio_to_{peer}", subject, mode, conc, ratio, "x")
                w(f"| {mode} | {conc} | " + " | ".join(cells) + " |")
        w("")

    if ttft:
        w("## Time to first token (sequential streams, gateway on the upstream's core)\n")
        w("| target | TTFT p50 ms | TTFT p99 ms | added p50 ms | added p99 ms | last byte p50 ms |")
        w("|---|---|---|---|---|---|")
        direct = ttft.get("direct", {})
        for t in targets:
            if t not in ttft:
                continue
            values = {k: statistics.median(v) / 1000 for k, v in ttft[t].items()}
            base = {k: statistics.median(v) / 1000 for k, v in direct.items()}
            a50 = values["ttft_p50_us"] - base["ttft_p50_us"] if base and t != "direct" else None
            a99 = values["ttft_p99_us"] - base["ttft_p99_us"] if base and t != "direct" else None
            w(
                f"| {t} | {fmt(values['ttft_p50_us'], 3)} | {fmt(values['ttft_p99_us'], 3)} | "
                f"{fmt(a50, 3)} | {fmt(a99, 3)} | {fmt(values['last_byte_p50_us'], 3)} |"
            )
            result("ttft_p50", t, "stream", "1s", values["ttft_p50_us"], "ms")
            result("ttft_p99", t, "stream", "1s", values["ttft_p99_us"], "ms")
            result("ttft_added_p50", t, "stream", "1s", a50, "ms")
            result("ttft_added_p99", t, "stream", "1s", a99, "ms")
        w("")

    w("## Processes\n")
    w("| target | start to first 200 s | RSS idle MiB | RSS under load MiB (max) | peak RSS MiB | threads |")
    w("|---|---|---|---|---|---|")
    for t in targets:
        start = facts.get((t, "first_200_s"))
        idle = facts.get((t, "rss_idle_kb"))
        peak = facts.get((t, "rss_peak_kb"))
        load = summary.rss_under_load_kb(t)
        w(
            f"| {t} | {start or '-'} | {fmt(float(idle) / MIB, 1) if idle else '-'} | "
            f"{fmt(load / MIB, 1) if load else '-'} | {fmt(float(peak) / MIB, 1) if peak else '-'} | "
            f"{facts.get((t, 'threads'), '-')} |"
        )
        result("first_200", t, "", "", float(start) if start else None, "s")
        result("rss_idle", t, "", "", float(idle) / MIB if idle else None, "MiB")
        result("rss_under_load", t, "", "", load / MIB if load else None, "MiB")
        result("rss_peak", t, "", "", float(peak) / MIB if peak else None, "MiB")
    w("")

    if (SUBJECT, "burst_responses") in facts:
        w("## llmops: usage log, metrics and CLI\n")
        keys = [
            ("burst_responses", "200s in an exact burst of 2,000 calls (c50, half streamed)", "count"),
            ("burst_usage_rows", "usage rows the burst added", "count"),
            ("usage_rows_all", "usage rows after the burst, any status", "count"),
            ("metrics_requests_all", "llmops_requests_total after the burst, any status", "count"),
            ("usage_rows_ok", 'usage rows after the burst, status "ok"', "count"),
            ("metrics_requests_ok", 'llmops_requests_total{status="ok"} after the burst', "count"),
            (
                "run_responses_counted",
                "200s counted by the clients over the run (wrk stops with calls in flight: "
                "answered and logged, never counted)",
                "count",
            ),
            ("help_s", "`llmops --help`, median wall time", "s"),
            ("usage_last5_s", "`llmops usage --last 5`, median wall time", "s"),
            ("usage_rows_in_log", "rows in that usage log", "count"),
        ]
        w("| figure | value |")
        w("|---|---|")
        for key, label, unit in keys:
            fact_text = facts.get((SUBJECT, key))
            if fact_text is not None:
                w(f"| {label} | {fact_text} |")
                result(key, SUBJECT, "", "", float(fact_text), unit)
        w("")

    if SUBJECT in targets:
        md.extend(targets_section(summary, facts))

    for mode in ("json", "stream"):
        path = out / f"profile-{mode}.txt"
        if not path.exists() or not path.stat().st_size:
            continue
        profile = Profile.read(path)
        n = profile.samples or 1
        w(f"## py-spy profile of llmops, concurrency 50, {mode} ({profile.samples} samples)\n")
        w(
            "Samples of the thread holding the GIL (`py-spy --gil`). Own time: the function on top of "
            "the stack (C code it calls is counted to it).\n"
        )
        w("| own % | function | | own % | package | | inclusive % | project function |")
        w("|---|---|---|---|---|---|---|---|")
        rows = zip_longest(
            profile.own.most_common(15),
            profile.own_by_package.most_common(10),
            profile.project_inclusive.most_common(15),
            fillvalue=None,
        )
        for own_row, package_row, project_row in rows:
            cells = [
                f"{100 * c / n:.1f} | `{name}`" if name else " | "
                for name, c in (own_row or ("", 0), package_row or ("", 0), project_row or ("", 0))
            ]
            w("| " + " | | ".join(cells) + " |")
        w("")

    for name, command in (("help", "llmops --help"), ("usage", "llmops usage --last 5")):
        path = out / f"importtime-{name}.txt"
        if path.exists() and path.stat().st_size:
            total, imports = import_times(path)
            w(f"## Imports of `{command}` (python -X importtime, {total / 1000:.0f} ms in all)\n")
            w("| cumulative ms | own ms | module (imported at top level) |")
            w("|---|---|---|")
            for module, cumulative_us, own_us in imports:
                w(f"| {cumulative_us / 1000:.1f} | {own_us / 1000:.1f} | `{module}` |")
            w("")

    with (out / "results.tsv").open("w") as f:
        f.write("figure\ttarget\tmode\tconc\tvalue\tunit\n")
        f.writelines("\t".join(row) + "\n" for row in results)
    (out / "summary.md").write_text("\n".join(md) + "\n")
    return 0


def targets_section(summary: Summary, facts: dict[tuple[str, str], str]) -> list[str]:
    """The issue's targets for llmops, each with its measured value and whether it holds."""
    rows: list[tuple[str, float | None, str, bool | None]] = []

    def check(label: str, value: float | None, limit: str, holds: bool | None) -> None:
        rows.append((label, value, limit, holds))

    def fact(key: str) -> float | None:
        value = facts.get((SUBJECT, key))
        return float(value) if value is not None else None

    conc1 = "1s" if "1s" in summary.concs else "1"
    a50 = summary.added_ms("json", conc1, SUBJECT, "p50_us")
    a99 = summary.added_ms("json", conc1, SUBJECT, "p99_us")
    check(f"added p50 latency, plain, c{conc1} (ms)", a50, "≤ 0.6", None if a50 is None else a50 <= 0.6)
    check(f"added p99 latency, plain, c{conc1} (ms)", a99, "≤ 3", None if a99 is None else a99 <= 3)
    for mode, peer, floor in [
        ("json", "aiohttp", 0.8),
        ("json", "litellm", 20.0),
        ("stream", "litellm", 10.0),
    ]:
        r = summary.ratio(mode, "50", SUBJECT, peer)
        check(f"req/s at c50, {mode}, ÷ {peer}", r, f"≥ {floor:g}", None if r is None else r >= floor)
    errors = sum(
        summary.total(m, c, SUBJECT, "non200", "socket_errors") for m in summary.modes for c in summary.concs
    )
    check("errors over every llmops run", float(errors), "0", errors == 0)
    burst, rows_added = fact("burst_responses"), fact("burst_usage_rows")
    check(
        "usage rows added - 200s in the exact burst",
        None if burst is None or rows_added is None else rows_added - burst,
        "0",
        None if burst is None or rows_added is None else rows_added == burst,
    )
    load = summary.rss_under_load_kb(SUBJECT)
    check(
        "RSS under load (MiB)", load / MIB if load else None, "≤ 80", None if not load else load / MIB <= 80
    )
    for key, label, ceiling in [
        ("first_200_s", "start to first 200 (s)", 1.5),
        ("help_s", "`llmops --help` (s)", 0.3),
        ("usage_last5_s", "`llmops usage --last 5` on the big log (s)", 0.3),
    ]:
        value = fact(key)
        check(label, value, f"≤ {ceiling:g}", None if value is None else value <= ceiling)
    lines = [
        "## llmops against the issue's targets\n",
        "| target | measured | limit | holds |",
        "|---|---|---|---|",
    ]
    for label, value, limit, holds in rows:
        verdict = "n/a" if holds is None else ("yes" if holds else "**no**")
        lines.append(f"| {label} | {fmt(value, 3)} | {limit} | {verdict} |")
    lines.append("")
    return lines


if __name__ == "__main__":
    sys.exit(main())
