"""Reading back the checklist `llmops smoke-test` and `llmops doctor` print."""

from __future__ import annotations

import re

MARKS = {"✔": "ok", "✘": "fail", "!": "warn", "-": "skip"}
_LINE = re.compile(r"^ (✔|✘|!|-) (.+?)  +(.*)$")


def checklist(output: str) -> dict[str, tuple[str, str, str | None]]:
    """name -> (status, detail, fix) from a printed checklist."""
    found: dict[str, tuple[str, str, str | None]] = {}
    last = None
    for line in output.splitlines():
        match = _LINE.match(line)
        if match:
            last = match.group(2).strip()
            found[last] = (MARKS[match.group(1)], match.group(3).strip(), None)
        elif line.strip().startswith("fix:") and last is not None:
            status, detail, _ = found[last]
            found[last] = (status, detail, line.strip().removeprefix("fix:").strip())
    return found
