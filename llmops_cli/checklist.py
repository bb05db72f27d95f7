"""A checklist of findings, printed the same way by `llmops smoke-test` and `llmops doctor`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["ok", "fail", "warn", "skip"]

_MARKS = {"ok": "[green]✔[/]", "fail": "[bold red]✘[/]", "warn": "[yellow]![/]", "skip": "[dim]-[/]"}


@dataclass
class Check:
    """One finding: what was checked, how it went, what was seen, and how to fix it when it failed."""

    name: str
    status: Status
    detail: str = ""
    fix: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == "fail"


def ok(name: str, detail: str = "") -> Check:
    return Check(name, "ok", detail)


def fail(name: str, detail: str, fix: str | None = None) -> Check:
    return Check(name, "fail", detail, fix)


def skip(name: str, detail: str) -> Check:
    return Check(name, "skip", detail)


def warn(name: str, detail: str, fix: str | None = None) -> Check:
    return Check(name, "warn", detail, fix)


def print_checklist(title: str, checks: list[Check]) -> None:
    """Each check on its line with its mark; fixes under the failed ones; a summary line last."""
    from rich.markup import escape

    from llmops_cli.console import out

    out.print(f"[bold]{escape(title)}[/]")
    width = max((len(c.name) for c in checks), default=0)
    for check in checks:
        line = f" {_MARKS[check.status]} {escape(check.name.ljust(width))}  {escape(check.detail)}"
        out.print(line, soft_wrap=True)
        if check.fix and check.status in ("fail", "warn"):
            out.print(f"   {' ' * width}  [cyan]fix:[/] {escape(check.fix)}", soft_wrap=True)
    failed = sum(c.failed for c in checks)
    passed = sum(c.status == "ok" for c in checks)
    summary = f"{passed} passed, {failed} failed"
    skipped = sum(c.status == "skip" for c in checks)
    if skipped:
        summary += f", {skipped} skipped"
    out.print(f"[bold red]{summary}[/]" if failed else f"[bold green]{summary}[/]")
