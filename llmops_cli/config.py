"""Settings for CLI commands: `.env` in the working directory, the environment, then flags."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmops_cli.console import note

if TYPE_CHECKING:
    from server.settings import Settings

ENV_FILE = Path(".env")


def _env_file_keys(path: Path) -> set[str]:
    if not path.exists():
        return set()
    keys = set()
    for line in path.read_text().splitlines():
        key, sep, _ = line.strip().partition("=")
        if sep and not key.startswith("#"):
            keys.add(key.strip().removeprefix("export ").strip())
    return keys


def ensure_secret(name: str, path: Path = ENV_FILE, nbytes: int = 48) -> bool:
    """Generate `name` into `.env` (mode 0600) unless it is set there or in the environment.

    Returns True when a new secret was written.
    """
    if os.environ.get(name) or name in _env_file_keys(path):
        return False
    value = secrets.token_urlsafe(nbytes)
    existing = path.read_text() if path.exists() else ""
    separator = "" if not existing or existing.endswith("\n") else "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as env_file:
        env_file.write(f"{separator}{name}={value}\n")
    path.chmod(0o600)
    note(f"generated a new {name} into {path.resolve()} (mode 0600)")
    return True


def set_env_values(path: Path, values: dict[str, str]) -> None:
    """Set `values` in the env file at `path` (replacing those lines, appending the rest), mode 0600."""
    lines = path.read_text().splitlines() if path.exists() else []
    pending = dict(values)
    for index, line in enumerate(lines):
        key, sep, _ = line.strip().partition("=")
        key = key.strip().removeprefix("export ").strip()
        if sep and key in pending:
            lines[index] = f"{key}={pending.pop(key)}"
    lines += [f"{key}={value}" for key, value in pending.items()]
    # Written beside and renamed over: a crash never leaves .env half-written.
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as env_file:
        env_file.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def load_settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    """The gateway settings, with command-line flags (those not None) on top."""
    from server.settings import Settings

    values = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return Settings(**values)
