"""Real file-system faults for tests: tmpfs mounts to fill, and read-only bind mounts.

CI runs as root, which ignores permission bits; a mount is the honest way to make a directory
read-only or full. Where mounting is not allowed the tests that need it are skipped.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False)


@pytest.fixture
def mounts() -> Iterator[Callable[..., Path]]:
    """`mounts(path, kind)` mounts a tmpfs ("tmpfs:<size>") or a read-only bind of itself ("ro")."""
    mounted: list[Path] = []

    def mount(path: Path, kind: str) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        if kind == "ro":
            steps = [["mount", "--bind", str(path), str(path)], ["mount", "-o", "remount,bind,ro", str(path)]]
        else:
            size = kind.removeprefix("tmpfs:")
            steps = [["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)]]
        for step in steps:
            result = _run(*step)
            if result.returncode != 0:
                if step is steps[0]:
                    pytest.skip(f"cannot mount here ({result.stderr.strip()}); these tests need root")
                raise AssertionError(result.stderr)
            if step is steps[0]:
                mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        _run("umount", "-l", str(path))


def fill(directory: Path) -> Path:
    """Write a file into `directory` until the file system has no byte left; returns it."""
    filler = directory / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
                handle.flush()
        except OSError as exc:
            assert exc.errno == 28  # ENOSPC
        with contextlib.suppress(OSError):
            handle.close()
    return filler
