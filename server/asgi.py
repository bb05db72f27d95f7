"""Entry point for ASGI servers that build the app themselves (uvicorn --factory, several workers)."""

from __future__ import annotations

from fastapi import FastAPI

from server.app import create_app
from server.settings import Settings


def app_from_environment() -> FastAPI:
    """The gateway app from the environment and `.env`."""
    return create_app(Settings())
