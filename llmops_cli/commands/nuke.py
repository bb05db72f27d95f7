"""`llmops nuke`: remove everything llmops made, after confirmation."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from llmops_cli.console import err, note, out
from llmops_cli.options import DataDir

_GATEWAY_FILES = ("usage.db", "usage.db-wal", "usage.db-shm", "gateway.pid", "gateway.log")


def nuke(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    everything: Annotated[
        bool, typer.Option("--all", help="Also delete .env (secrets) and auth.db (API keys, revocations).")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Remove what llmops made: stack containers, volumes, network, usage log, pid, log and generated files.

    Objects without llmops's label are never touched; .env and auth.db stay unless --all.
    """
    from llmops_cli.config import ENV_FILE, load_settings
    from llmops_cli.gateway_process import read_state, stop
    from llmops_cli.stack_settings import load_stack_config
    from stack import DockerUnavailable, owned_objects, remove_config_files
    from stack import nuke as nuke_stack

    settings = load_settings(data_dir)
    stack_settings, config = load_stack_config(data_dir)
    docker_objects: list[str] | None = None
    if stack_settings.stack:
        try:
            docker_objects = owned_objects(config)
        except DockerUnavailable as exc:
            note(f"{exc.message}: Docker containers and volumes are left unchecked")
    files = [settings.data_dir / name for name in _GATEWAY_FILES]
    files += sorted(settings.data_dir.glob("usage-unwritten-*.jsonl"))
    if everything:
        # Credentials like .env: API keys and revoked token ids.
        auth_db = settings.auth_db_path
        files += [auth_db, auth_db.with_name(f"{auth_db.name}-wal"), auth_db.with_name(f"{auth_db.name}-shm")]
        files.append(ENV_FILE)
    files = [path for path in files if path.exists()]
    generated = config.files_dir if docker_objects is None and config.files_dir.exists() else None
    gateway = read_state(settings.data_dir)

    planned = [f"gateway process {gateway.pid}"] if gateway.running else []
    planned += (docker_objects or []) + [f"file {path}" for path in files]
    planned += [f"files {generated}"] if generated else []
    if not planned:
        note("nothing to remove")
        return
    if not yes:
        err.print("This removes:", *(f"  {item}" for item in planned), sep="\n", markup=False)
        typer.confirm("Remove all of this?", abort=True, err=True)

    removed = []
    if gateway.running:
        # Stopped first, so no usage row is written into a file that is about to go.
        stop(settings.data_dir)
        removed.append(f"gateway process {gateway.pid}")
    if docker_objects is not None:
        removed += nuke_stack(config)
    elif generated is not None and remove_config_files(config):
        removed.append(f"files {generated}")
    for path in files:
        path.unlink(missing_ok=True)
        removed.append(f"file {path}")
    _remove_if_empty(settings.data_dir)
    for item in removed:
        out.print(f"removed {item}", markup=False, highlight=False)


def _remove_if_empty(directory: Path) -> None:
    with contextlib.suppress(OSError):
        directory.rmdir()
