"""Typed settings, read from ``STEWARD_*`` environment variables and an optional ``steward.toml``.

Precedence, highest first: keyword arguments, environment variables, the TOML
file (``STEWARD_CONFIG``, else ``./steward.toml`` when present), defaults.  Each
context declares its own settings class on :class:`BaseStewardSettings`; they
share the one flat namespace, so ``STEWARD_HOME`` means the same to all.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from steward.core._errors import ConfigurationError

__all__ = ["BaseStewardSettings", "CoreSettings", "config_file", "load_settings"]

ENV_PREFIX = "STEWARD_"

S = TypeVar("S", bound="BaseStewardSettings")


def config_file() -> Path | None:
    """Return the TOML settings file in force: ``STEWARD_CONFIG``, else ``./steward.toml`` if any.

    Raises:
        ConfigurationError: ``STEWARD_CONFIG`` names a file that does not exist.
    """
    named = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigurationError(
                f"STEWARD_CONFIG={named!r} is not a file; point it at a steward.toml or unset it"
            )
        return path
    local = Path("steward.toml")
    return local if local.is_file() else None


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. an arbitrary uid in a container
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


class BaseStewardSettings(BaseSettings):
    """Base for every context's settings: env prefix ``STEWARD_``, optional TOML file."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, validate_default=True
    )

    home: Path = Field(
        default=Path(".steward"),
        description="Folder of the embedded database, artifacts and logs (STEWARD_HOME).",
    )

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read keyword arguments, then the environment, then the TOML file."""
        path = config_file()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


class CoreSettings(BaseStewardSettings):
    """Settings every context shares."""

    user: str = Field(
        default_factory=_default_user,
        description="Identity recorded as the actor of audited actions (STEWARD_USER).",
    )
    debug: bool = Field(default=False, description="Show tracebacks for errors (STEWARD_DEBUG).")


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build settings of type ``cls``, turning validation errors into one clear message.

    Example:
        >>> load_settings(CoreSettings, user="alice").user
        'alice'

    Raises:
        ConfigurationError: a setting is malformed; the message names the ``STEWARD_*`` variable.
    """
    try:
        return cls(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            problems.append(
                f"{ENV_PREFIX}{name.upper()}: {error['msg']} (got {error.get('input')!r})"
            )
        raise ConfigurationError("invalid settings: " + "; ".join(problems)) from None
