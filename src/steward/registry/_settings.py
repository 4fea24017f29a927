"""Settings of the registry context (``STEWARD_*``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from steward.core import BaseStewardSettings

__all__ = ["RegistrySettings"]


class RegistrySettings(BaseStewardSettings):
    """How models are loaded.

    Example:
        >>> RegistrySettings(trusted_types="mylib.Winsorizer, mylib.Clipper").trusted_types
        ['mylib.Winsorizer', 'mylib.Clipper']
    """

    allow_unsafe_flavors: bool = Field(
        default=False,
        description=(
            "Allow loading versions of unsafe flavors (python: pickled code) "
            "(STEWARD_ALLOW_UNSAFE_FLAVORS)."
        ),
    )
    trusted_types: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Extra fully qualified type names a skops file may contain, comma-separated "
            "(STEWARD_TRUSTED_TYPES), e.g. a custom transformer 'mylib.features.Winsorizer'."
        ),
    )
    example_rows: int = Field(
        default=100,
        ge=0,
        le=10_000,
        description=(
            "Rows of the sample input kept with a version as its input example, used to "
            "verify compilations (STEWARD_EXAMPLE_ROWS; 0 keeps none)."
        ),
    )

    @field_validator("trusted_types", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
