"""Model config: which provider serves a model name, its fallbacks, prices, timeouts.

Read from `LLMOPS_MODELS_FILE` (JSON or TOML) or `LLMOPS_MODELS` (JSON), shaped as
``{"default_model": "echo", "models": [{"name": "echo", "provider": "echo", ...}, ...]}``.
Without either, the built-in echo models below are served.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from server.errors import ConfigError, validation_problems

RetryOn = Literal["connect", "timeout", "5xx", "429", "auth"]


class ModelConfig(BaseModel):
    """One model name clients may ask for."""

    name: str = Field(min_length=1)
    provider: Literal["echo", "openai", "ollama"] = "echo"
    upstream_model: str | None = None  # the name the provider knows; defaults to `name`
    base_url: str | None = None
    api_key_env: str | None = None  # the key itself never sits in config, only the variable's name
    fallbacks: list[str] = Field(default_factory=list)

    # USD per million tokens; None means unknown (cost_usd is NULL, never a silent 0).
    input_price_per_mtok: float | None = Field(default=None, ge=0)
    output_price_per_mtok: float | None = Field(default=None, ge=0)
    cached_input_price_per_mtok: float | None = Field(default=None, ge=0)

    retries: int = Field(default=1, ge=0, le=10)
    retry_backoff_s: float = Field(default=0.2, ge=0)
    retry_on: list[RetryOn] = Field(default_factory=lambda: ["connect", "timeout", "5xx", "429"])
    connect_timeout_s: float = Field(default=5.0, gt=0)
    first_byte_timeout_s: float = Field(default=60.0, gt=0)
    total_timeout_s: float = Field(default=300.0, gt=0)
    max_output_tokens: int = Field(default=32_768, ge=1)

    # echo provider only: simulated latency and failures, seeded so tests know which calls fail.
    latency_ms: float = Field(default=0.0, ge=0)
    latency_jitter_ms: float = Field(default=0.0, ge=0)
    failure_rate: float = Field(default=0.0, ge=0, le=1)
    seed: int = 0
    stream_delay_ms: float = Field(default=0.0, ge=0)

    @property
    def upstream_name(self) -> str:
        return self.upstream_model or self.name

    @property
    def has_price(self) -> bool:
        return self.input_price_per_mtok is not None and self.output_price_per_mtok is not None


class ModelsFile(BaseModel):
    default_model: str | None = None
    models: list[ModelConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_references(self) -> ModelsFile:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError("model names must be unique")
        for model in self.models:
            unknown = [f for f in model.fallbacks if f not in names]
            if unknown:
                raise ValueError(f"model {model.name!r} falls back to unknown model(s) {unknown}")
        if self.default_model is not None and self.default_model not in names:
            raise ValueError(f"default_model {self.default_model!r} is not a configured model")
        return self


BUILTIN_MODELS = ModelsFile(
    default_model="echo",
    models=[
        # Prices for the echo models are simulated, so cost panels have something to show offline.
        ModelConfig(
            name="echo",
            provider="echo",
            latency_ms=15,
            latency_jitter_ms=10,
            input_price_per_mtok=0.5,
            output_price_per_mtok=1.5,
        ),
        ModelConfig(
            name="echo-flaky",
            provider="echo",
            latency_ms=25,
            latency_jitter_ms=20,
            failure_rate=0.3,
            seed=42,
            retries=0,
            fallbacks=["echo"],
            input_price_per_mtok=1.0,
            output_price_per_mtok=3.0,
        ),
        ModelConfig(
            name="echo-slow",
            provider="echo",
            latency_ms=400,
            latency_jitter_ms=300,
            input_price_per_mtok=2.0,
            output_price_per_mtok=6.0,
        ),
    ],
)


class ModelRegistry:
    """The configured models, looked up by name, with each one's ordered chain of fallbacks."""

    def __init__(self, models_file: ModelsFile, default_model: str | None = None) -> None:
        self.models: dict[str, ModelConfig] = {m.name: m for m in models_file.models}
        self.default_model = default_model or models_file.default_model or models_file.models[0].name
        if self.default_model not in self.models:
            raise ConfigError(f"default model {self.default_model!r} is not configured")
        self._chains = {
            name: [m, *(self.models[f] for f in dict.fromkeys(m.fallbacks) if f != name)]
            for name, m in self.models.items()
        }

    def __contains__(self, name: object) -> bool:
        return name in self.models

    def names(self) -> list[str]:
        return list(self.models)

    def chain(self, name: str) -> list[ModelConfig]:
        """The model itself, then its fallbacks in order."""
        return self._chains[name]


def load_registry(
    models_file: Path | None, models_json: str | None, default_model: str | None
) -> ModelRegistry:
    """Build the registry from a file, inline JSON, or the built-in models."""
    try:
        if models_file is not None:
            raw = models_file.read_bytes()
            data = tomllib.loads(raw.decode()) if models_file.suffix == ".toml" else json.loads(raw)
            parsed = ModelsFile.model_validate(data)
        elif models_json:
            parsed = ModelsFile.model_validate_json(models_json)
        else:
            parsed = BUILTIN_MODELS
    except OSError as exc:
        raise ConfigError(f"cannot read models file {models_file}: {exc.strerror}") from exc
    except ValidationError as exc:
        raise ConfigError(f"invalid model config: {validation_problems(exc)}") from exc
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"invalid model config: {exc}") from exc
    return ModelRegistry(parsed, default_model)
