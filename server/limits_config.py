"""Which limits apply to whom: defaults from settings, overridden per principal by a limits file.

A limits file (LLMOPS_LIMITS_FILE, JSON or TOML) has an optional `default` section and one section per
principal (the token's `sub`); a field a section leaves out is inherited, 0 means unlimited:

    [default]
    rpm = 60

    [principals.alice]
    rpm = 600
    daily_usd = 5.0

    [principals."batch-job"]
    tpm = 0
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from server.errors import ConfigError

LIMIT_NAMES = ("rpm", "tpm", "daily_tokens", "daily_usd")


class Limits(BaseModel):
    """The limits of one principal; None means unlimited (0 in settings or a file means the same)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)
    daily_tokens: int | None = Field(default=None, ge=0)
    daily_usd: float | None = Field(default=None, ge=0)

    def normalised(self) -> Limits:
        """0 turned into None, so "unlimited" has one spelling."""
        return Limits(**{name: (getattr(self, name) or None) for name in LIMIT_NAMES})

    def over(self, other: Limits) -> Limits:
        """These limits, with the fields this one does not set taken from `other`."""
        return other.model_copy(update=self.model_dump(exclude_unset=True)).normalised()

    @property
    def unlimited(self) -> bool:
        return all(getattr(self, name) is None for name in LIMIT_NAMES)


class LimitsFile(BaseModel):
    """A limits file: optional `default` limits, and limits per principal (the token's `sub`)."""

    model_config = ConfigDict(extra="forbid")

    default: Limits = Field(default_factory=Limits)
    principals: dict[str, Limits] = Field(default_factory=dict)


class LimitsPolicy:
    """Which limits apply to whom: defaults, overridden per principal."""

    def __init__(self, default: Limits, principals: dict[str, Limits] | None = None) -> None:
        self.default = default.normalised()
        self.principals = {name: limits.over(self.default) for name, limits in (principals or {}).items()}

    def for_principal(self, principal: str) -> Limits:
        return self.principals.get(principal, self.default)

    @property
    def unlimited(self) -> bool:
        return self.default.unlimited and all(limits.unlimited for limits in self.principals.values())


def load_policy(defaults: Limits, limits_file: Path | None) -> LimitsPolicy:
    """Defaults from settings, overridden by the file's `default` section, then per principal."""
    if limits_file is None:
        return LimitsPolicy(defaults)
    try:
        raw = limits_file.read_bytes()
        data = tomllib.loads(raw.decode()) if limits_file.suffix == ".toml" else json.loads(raw)
        parsed = LimitsFile.model_validate(data)
    except OSError as exc:
        raise ConfigError(f"cannot read limits file {limits_file}: {exc.strerror}") from exc
    except (ValueError, ValidationError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"invalid limits file {limits_file}: {exc}") from exc
    return LimitsPolicy(parsed.default.over(defaults), parsed.principals)
