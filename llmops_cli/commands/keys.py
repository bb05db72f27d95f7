"""`llmops keys`: long-lived API keys for applications (create, list, revoke)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from llmops_cli.console import fail, note, out
from llmops_cli.options import DataDir

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

app = typer.Typer(
    help="API keys: opaque bearers for applications, revocable at once. Only their hash is stored.",
    no_args_is_help=True,
    add_completion=False,
)

AsJson = Annotated[bool, typer.Option("--json", help="JSON instead of text.")]


def _open(data_dir: Path | None) -> sqlite3.Connection:
    from llmops_cli.config import load_settings
    from server.auth.auth_db import open_auth_db

    return open_auth_db(load_settings(data_dir).auth_db_path)


@app.command()
def create(
    user: Annotated[str, typer.Option("--user", help="The principal calls with this key are attributed to.")],
    name: Annotated[str | None, typer.Option("--name", help="What the key is for, e.g. ci-bot.")] = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="Lifetime, e.g. 90d; never expires when absent.")
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Add the llmops:admin scope.")] = False,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """Create a key and print it once (stdout holds only the key, unless --json)."""
    import json
    import time

    from llmops_cli.durations import parse_duration
    from server.auth import ADMIN_SCOPE
    from server.auth.auth_db import create_api_key

    if not user.strip():
        fail("--user must not be empty")
    ttl_s = None
    if expires is not None:
        try:
            ttl_s = parse_duration(expires)
        except ValueError as exc:
            fail(str(exc))
        if ttl_s <= 0:
            fail("--expires must be positive")
    conn = _open(data_dir)
    try:
        key, secret = create_api_key(
            conn, user, name, ttl_s, frozenset({ADMIN_SCOPE}) if admin else frozenset()
        )
    finally:
        conn.close()
    if as_json:
        typer.echo(json.dumps({**key.as_dict(time.time()), "key": secret}, indent=2))
        return
    typer.echo(secret)
    note(
        f"created API key {key.id} for {key.user}"
        + (f" ({key.name})" if key.name else "")
        + (f", expires {key.expires_at}" if key.expires_at else ", no expiry")
        + ". It is shown only this once."
    )


@app.command("list")
def list_keys(as_json: AsJson = False, data_dir: DataDir = None) -> None:
    """Every key with its status (no secrets: they are not stored)."""
    import json
    import time

    from server.auth.auth_db import list_api_keys

    conn = _open(data_dir)
    try:
        keys = list_api_keys(conn)
    finally:
        conn.close()
    now = time.time()
    if as_json:
        typer.echo(json.dumps([key.as_dict(now) for key in keys], indent=2))
        return
    if not keys:
        note("no API keys yet: `llmops keys create --user NAME`")
        return
    from rich.table import Table

    table = Table("id", "user", "name", "key", "created (UTC)", "expires (UTC)", "status")
    for column in table.columns:
        column.no_wrap = True
    for key in keys:
        status = key.status(now)
        style = {"active": "green", "expired": "yellow", "revoked": "red"}[status]
        table.add_row(
            key.id,
            key.user,
            key.name or "-",
            key.prefix + "…",
            key.created_at[:19].replace("T", " "),
            (key.expires_at or "never")[:19].replace("T", " "),
            f"[{style}]{status}[/]" + (" (admin)" if key.scopes else ""),
        )
    out.print(table)


@app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's id (see `llmops keys list`).")],
    data_dir: DataDir = None,
) -> None:
    """Revoke a key: every gateway on this data directory refuses it from the next request."""
    from server.auth.auth_db import revoke_api_key
    from server.errors import UnknownCredential

    conn = _open(data_dir)
    try:
        key = revoke_api_key(conn, key_id)
    except UnknownCredential as exc:
        fail(exc.message, hint="`llmops keys list` shows the ids")
    finally:
        conn.close()
    note(f"API key {key.id} ({key.user}) revoked at {key.revoked_at}")
