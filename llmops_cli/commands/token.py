"""`llmops token`: mint a bearer token; `revoke` denies one; `rotate-secret` replaces JWT_SECRET."""

from __future__ import annotations

from typing import Annotated

import typer

from llmops_cli.console import fail, note
from llmops_cli.options import DataDir

MIN_TTL_S = 1
MAX_TTL_S = 366 * 86400
MAX_SUBJECT_LENGTH = 256

app = typer.Typer(
    help="Mint a bearer token (prints only the token, so `$(llmops token)` works), or manage tokens.",
    no_args_is_help=False,
    add_completion=False,
)


@app.callback(invoke_without_command=True)
def token(
    ctx: typer.Context,
    sub: Annotated[
        str, typer.Option("--sub", help="Subject: the principal calls are attributed to.")
    ] = "demo-user",
    ttl: Annotated[str, typer.Option("--ttl", help="Lifetime, e.g. 15m, 2h, 7d.")] = "15m",
    admin: Annotated[
        bool, typer.Option("--admin", help="Add the llmops:admin scope (read every principal's usage).")
    ] = False,
) -> None:
    """Print a signed HS256 token (only the token, so `$(llmops token)` works)."""
    if ctx.invoked_subcommand is not None:
        return
    import uuid

    from llmops_cli.config import ensure_secret, load_settings
    from llmops_cli.durations import parse_duration
    from server.auth import ADMIN_SCOPE, mint_token

    try:
        ttl_s = parse_duration(ttl)
    except ValueError as exc:
        fail(str(exc), hint="e.g. --ttl 15m")
    if not MIN_TTL_S <= ttl_s <= MAX_TTL_S:
        fail("--ttl must be between 1s and 366d", hint="for a long-lived credential, `llmops keys create`")
    if not sub.strip() or len(sub) > MAX_SUBJECT_LENGTH:
        fail(f"--sub must be 1 to {MAX_SUBJECT_LENGTH} characters", hint="e.g. --sub alice")
    ensure_secret("JWT_SECRET")
    secret = load_settings().require_jwt_secret()
    scopes = [ADMIN_SCOPE] if admin else []
    typer.echo(mint_token(secret, sub, ttl_s, jti=uuid.uuid4().hex, scopes=scopes))


@app.command()
def revoke(
    jti: Annotated[str, typer.Argument(metavar="JTI", help="The token's `jti` claim, or the whole token.")],
    data_dir: DataDir = None,
) -> None:
    """Deny a token before it expires, in every gateway on this data directory, from the next request."""
    from llmops_cli.config import load_settings
    from server.auth.auth_db import open_auth_db, revoke_token

    expires_at = None
    if jti.count(".") == 2:  # a whole token: read its jti and exp (no need to verify what we deny)
        import jwt

        try:
            claims = jwt.decode(jti, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            fail(f"not a JWT: {exc}", hint="pass the token's jti or the whole token")
        if not isinstance(claims.get("jti"), str) or not claims["jti"]:
            fail(
                "this token has no jti, so it cannot be revoked on its own", hint="rotate JWT_SECRET instead"
            )
        jti = claims["jti"]
        expires_at = float(claims["exp"]) if isinstance(claims.get("exp"), int | float) else None
    if not jti.strip():
        fail("JTI must not be empty")
    conn = open_auth_db(load_settings(data_dir).auth_db_path)
    try:
        added = revoke_token(conn, jti, expires_at)
    finally:
        conn.close()
    note(f"token {jti} revoked" if added else f"token {jti} was already revoked")


@app.command("rotate-secret")
def rotate_secret(
    grace: Annotated[
        str, typer.Option("--grace", help="How long tokens signed with the old secret keep working.")
    ] = "15m",
) -> None:
    """Put a new JWT_SECRET into .env; the old one verifies tokens for the grace period (restart to apply)."""
    import os
    import secrets
    from datetime import UTC, datetime, timedelta

    from llmops_cli.config import ENV_FILE, load_settings, set_env_values
    from llmops_cli.durations import parse_duration

    try:
        grace_s = parse_duration(grace)
    except ValueError as exc:
        fail(str(exc))
    if os.environ.get("JWT_SECRET"):
        fail(
            "JWT_SECRET comes from the environment, not .env",
            hint="set JWT_PREVIOUS_SECRET (the old value), LLMOPS_JWT_PREVIOUS_SECRET_UNTIL and a new "
            "JWT_SECRET where you set it now",
        )
    old = load_settings().require_jwt_secret()
    until = (datetime.now(UTC) + timedelta(seconds=grace_s)).isoformat(timespec="seconds")
    set_env_values(
        ENV_FILE,
        {
            "JWT_SECRET": secrets.token_urlsafe(48),
            "JWT_PREVIOUS_SECRET": old,
            "LLMOPS_JWT_PREVIOUS_SECRET_UNTIL": until,
        },
    )
    note(
        f"new JWT_SECRET in {ENV_FILE.resolve()}; tokens signed with the old one are accepted until {until}. "
        "Restart the gateway to apply (`llmops down && llmops up`)."
    )
