"""The gateway application: `create_app(settings)` wires one of everything."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from server.auth import build_authenticator
from server.auth.auth_db import open_auth_db
from server.errors import GatewayError
from server.fast_path import FastPath
from server.gateway import Gateway, request_log_writer
from server.http import RequestIdMiddleware, error_response, json_response
from server.limits import Limits, build_limiter
from server.metrics import Metrics, multiprocess_metrics_dir
from server.metrics_server import metrics_server_for
from server.models_config import load_registry
from server.providers.base import Provider
from server.providers.echo import EchoProvider
from server.providers.ollama import OllamaProvider
from server.providers.openai import OpenAIProvider
from server.routes import admin, alerts, health, llm, openai
from server.settings import Settings, get_settings
from server.upstream import UpstreamClient
from server.usage.store import SqliteUsageStore, open_usage_db

log = logging.getLogger(__name__)


def build_gateway(settings: Settings, metrics_registry: CollectorRegistry) -> Gateway:
    """Everything the routes need; raises ConfigError or StorageError before anything listens."""
    registry = load_registry(settings.models_file, settings.models, settings.default_model)
    upstream = UpstreamClient()
    providers: dict[str, Provider] = {
        "echo": EchoProvider(),
        "openai": OpenAIProvider(upstream),
        "ollama": OllamaProvider(upstream),
    }
    metrics = Metrics(metrics_registry, registry, max_users=settings.metrics_max_users)
    store = SqliteUsageStore(
        settings.usage_db_path,
        batch_size=settings.usage_batch_size,
        flush_interval_s=settings.usage_flush_interval_s,
        on_written=request_log_writer(sys.stdout, settings.request_log_prompts)
        if settings.request_log
        else None,
        on_write_error=lambda _exc: metrics.usage_write_errors.inc(),
    )
    limiter = build_limiter(
        Limits(
            rpm=settings.limit_rpm,
            tpm=settings.limit_tpm,
            daily_tokens=settings.budget_daily_tokens,
            daily_usd=settings.budget_daily_usd,
        ),
        settings.limits_file,
        settings.data_dir,
        settings.usage_db_path,
    )
    return Gateway(
        settings,
        registry,
        providers,
        store,
        metrics,
        build_authenticator(settings),
        upstream,
        limiter=limiter,
    )


def preflight(settings: Settings) -> None:
    """Check what would stop the gateway from starting (secret, model config, usage log), without starting."""
    settings.require_jwt_secret()
    load_registry(settings.models_file, settings.models, settings.default_model)
    open_usage_db(settings.usage_db_path).close()
    settings.previous_jwt_secret()
    open_auth_db(settings.auth_db_path).close()  # migrated once here, not raced by the workers


def create_app(settings: Settings | None = None) -> ASGIApp:
    """The gateway for `settings` (the process's settings when None): the FastAPI app behind the fast path."""
    settings = settings or get_settings()
    metrics_registry = CollectorRegistry(auto_describe=True)
    gateway = build_gateway(settings, metrics_registry)
    # With several workers the `serve` parent process runs the one /metrics listener.
    metrics_server = (
        None
        if multiprocess_metrics_dir()
        else metrics_server_for(
            settings, metrics_registry, gateway.metrics.auth_failures.labels("metrics_token").inc
        )
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gateway.usage_store.start()
        await gateway.upstream.start()
        if gateway.limiter is not None:
            gateway.limiter.start()
        if metrics_server is not None:
            metrics_server.start()
        try:
            yield
        finally:
            # In-flight calls have finished by now (uvicorn drains them first): flush every row.
            if gateway.limiter is not None:
                gateway.limiter.close()
            await gateway.upstream.close()
            gateway.usage_store.close()
            if metrics_server is not None:
                metrics_server.close()
            await gateway.authenticator.aclose()
            if multiprocess_metrics_dir():
                from prometheus_client import multiprocess

                multiprocess.mark_process_dead(os.getpid())

    app = FastAPI(
        title="llmops gateway",
        version="0.1.0",
        description="Authenticated, logged and measured access to LLMs.",
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    app.state.metrics_registry = metrics_registry
    app.include_router(llm.router)
    app.include_router(openai.router)
    app.include_router(health.router)
    app.include_router(alerts.router)
    app.include_router(admin.router)

    @app.exception_handler(GatewayError)
    async def gateway_error(_request: Request, error: GatewayError) -> Response:
        return error_response(error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        kind = "not_found" if exc.status_code == 404 else "http_error"
        return json_response(
            {"error": {"type": kind, "message": str(exc.detail)}}, exc.status_code, exc.headers
        )

    hot_routes = {("POST", "/llm"): llm.llm, ("POST", "/v1/chat/completions"): openai.chat_completions}
    return RequestIdMiddleware(FastPath(app, hot_routes))
