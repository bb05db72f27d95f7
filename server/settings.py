"""Gateway settings, read from the environment and `.env` in the working directory."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.errors import ConfigError

# The value shipped in .env.example; refused so nobody runs with a published secret.
PLACEHOLDER_JWT_SECRET = "change-me-llmops-generates-a-real-secret"
MIN_SECRET_LENGTH = 32


class Settings(BaseSettings):
    """Every setting of the gateway; environment variables are `LLMOPS_<NAME>` except JWT_SECRET."""

    model_config = SettingsConfigDict(env_prefix="LLMOPS_", env_file=".env", extra="ignore")

    jwt_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("JWT_SECRET", "LLMOPS_JWT_SECRET")
    )
    jwt_leeway_s: float = 5.0

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

    @property
    def usage_db_path(self) -> Path:
        return self.data_dir / "usage.db"

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
