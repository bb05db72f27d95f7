"""`llmops token`: mint a bearer token for the gateway."""

from __future__ import annotations

from typing import Annotated

import typer

from llmops_cli.console import fail


def token(
    sub: Annotated[
        str, typer.Option("--sub", help="Subject: the principal calls are attributed to.")
    ] = "demo-user",
    ttl: Annotated[str, typer.Option("--ttl", help="Lifetime, e.g. 15m, 2h, 7d.")] = "15m",
) -> None:
    """Print a signed HS256 token (only the token, so `$(llmops token)` works)."""
    import uuid

    from llmops_cli.config import ensure_secret, load_settings
    from llmops_cli.durations import parse_duration
    from server.auth import mint_token

    try:
        ttl_s = parse_duration(ttl)
    except ValueError as exc:
        fail(str(exc))
    if not sub.strip():
        fail("--sub must not be empty")
    ensure_secret("JWT_SECRET")
    secret = load_settings().require_jwt_secret()
    typer.echo(mint_token(secret, sub, ttl_s, jti=uuid.uuid4().hex))
