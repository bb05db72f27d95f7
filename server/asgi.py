"""Entry point for ASGI servers that build the app themselves (uvicorn --factory, several workers)."""

from __future__ import annotations

from starlette.types import ASGIApp

from server.app import create_app
from server.settings import Settings


def app_from_environment() -> ASGIApp:
    """The gateway app from the environment and `.env`."""
    return create_app(Settings())
