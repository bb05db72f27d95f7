"""Gateway settings, read from the environment and `.env` in the working directory."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from server.errors import ConfigError

# The value shipped in .env.example; refused so nobody runs with a published secret.
PLACEHOLDER_JWT_SECRET = "change-me-llmops-generates-a-real-secret"
MIN_SECRET_LENGTH = 32
MIN_METRICS_TOKEN_LENGTH = 16
# Asymmetric only: an OIDC issuer's keys are public, so an HMAC algorithm would accept forgeries.
OIDC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class Settings(BaseSettings):
    """Every setting of the gateway; environment variables are `LLMOPS_<NAME>` except JWT_SECRET."""

    model_config = SettingsConfigDict(env_prefix="LLMOPS_", env_file=".env", extra="ignore")

    jwt_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("JWT_SECRET", "LLMOPS_JWT_SECRET")
    )
    jwt_leeway_s: float = 5.0
    # Secret rotation: tokens signed with the previous secret are accepted until `..._until`.
    jwt_previous_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("JWT_PREVIOUS_SECRET", "LLMOPS_JWT_PREVIOUS_SECRET")
    )
    jwt_previous_secret_until: datetime | None = None

    # OIDC: tokens whose `iss` is this issuer are verified against its JWKS (RS256/ES256 ...).
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_algorithms: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["RS256", "ES256"])
    oidc_jwks_cache_ttl_s: float = Field(default=3600.0, gt=0)
    # At most one JWKS fetch per this many seconds, however many unknown key ids arrive.
    oidc_jwks_min_refresh_interval_s: float = Field(default=30.0, ge=0)

    # /metrics: a bearer of its own, and/or a listener of its own (then the main port has no /metrics).
    metrics_token: SecretStr | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=1, le=65535)

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")

    # Model config: a JSON or TOML file, or the same JSON inline; the built-in echo models otherwise.
    models_file: Path | None = None
    models: str | None = None
    default_model: str | None = None

    # Usage log: rows are written by a background thread in batches.
    usage_batch_size: int = Field(default=500, ge=1)
    usage_flush_interval_s: float = Field(default=0.05, gt=0)
    store_prompts: Literal["full", "hash", "none"] = "full"
    # Per-request JSON log lines on stdout (the gateway log under `llmops up`).
    request_log: bool = True
    request_log_prompts: bool = False

    # Bearer Alertmanager sends to /alerts/webhook; the webhook is off without it.
    alerts_webhook_token: SecretStr | None = None

    metrics_max_users: int = Field(default=50, ge=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)

    # Per-principal limits and daily budgets (0 or unset: unlimited); a limits file overrides them per
    # principal. See server/limits.py.
    limit_rpm: int | None = Field(default=None, ge=0)
    limit_tpm: int | None = Field(default=None, ge=0)
    budget_daily_tokens: int | None = Field(default=None, ge=0)
    budget_daily_usd: float | None = Field(default=None, ge=0)
    limits_file: Path | None = None

    @field_validator("oidc_algorithms", mode="before")
    @classmethod
    def _split_algorithms(cls, value: object) -> object:
        # LLMOPS_OIDC_ALGORITHMS=RS256,ES256 or a JSON list.
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _check_auth_settings(self) -> Settings:
        if self.oidc_issuer is not None:
            if not self.oidc_audience or not self.oidc_jwks_url:
                raise ValueError("LLMOPS_OIDC_ISSUER needs LLMOPS_OIDC_AUDIENCE and LLMOPS_OIDC_JWKS_URL")
            refused = [a for a in self.oidc_algorithms if a not in OIDC_ALGORITHMS]
            if refused or not self.oidc_algorithms:
                raise ValueError(
                    f"LLMOPS_OIDC_ALGORITHMS must be some of {', '.join(OIDC_ALGORITHMS)}; "
                    f"refused: {refused or 'an empty list'}"
                )
        if (
            self.metrics_token is not None
            and len(self.metrics_token.get_secret_value()) < MIN_METRICS_TOKEN_LENGTH
        ):
            raise ValueError(f"LLMOPS_METRICS_TOKEN is shorter than {MIN_METRICS_TOKEN_LENGTH} characters")
        return self

    @property
    def usage_db_path(self) -> Path:
        return self.data_dir / "usage.db"

    @property
    def auth_db_path(self) -> Path:
        """API keys (hashes) and revoked token ids."""
        return self.data_dir / "auth.db"

    def previous_jwt_secret(self) -> tuple[str, datetime] | None:
        """The secret being rotated out and when it stops being accepted, or None."""
        if self.jwt_previous_secret is None or not self.jwt_previous_secret.get_secret_value():
            return None
        if self.jwt_previous_secret_until is None:
            raise ConfigError(
                "JWT_PREVIOUS_SECRET needs LLMOPS_JWT_PREVIOUS_SECRET_UNTIL (an ISO-8601 time): "
                "a rotated-out secret must stop working at some point"
            )
        until = self.jwt_previous_secret_until
        if until.tzinfo is None:
            until = until.replace(tzinfo=UTC)
        return self.jwt_previous_secret.get_secret_value(), until

    def require_jwt_secret(self) -> str:
        """The HS256 secret, or a ConfigError that says how to get a proper one."""
        if self.jwt_secret is None or not self.jwt_secret.get_secret_value():
            raise ConfigError("JWT_SECRET is not set (run `llmops serve` or `llmops token` to generate one)")
        secret = self.jwt_secret.get_secret_value()
        if secret == PLACEHOLDER_JWT_SECRET:
            raise ConfigError(
                "JWT_SECRET is still the placeholder from .env.example; delete that line and "
                "llmops will generate a real secret into .env"
            )
        if len(secret) < MIN_SECRET_LENGTH:
            raise ConfigError(f"JWT_SECRET is shorter than {MIN_SECRET_LENGTH} characters")
        return secret


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, built on first use (never at import time)."""
    return Settings()
