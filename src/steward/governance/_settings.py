"""Settings of the governance context: how callers authenticate, and which roles exist.

Every field reads a ``STEWARD_*`` variable (or ``steward.toml``). Lists accept a
comma-separated string (``STEWARD_JWT_ALGORITHMS=RS256,ES256``); durations accept
``90s``, ``15m``, ``12h``, ``30d`` or ``2w``.
"""

from __future__ import annotations

import functools
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from steward.core import CoreSettings, InvalidInputError
from steward.governance._scopes import RoleCatalog

__all__ = ["ASYMMETRIC_ALGORITHMS", "GovernanceSettings", "parse_duration"]

# Signature algorithms verified with a public key. Symmetric ones (HS*) are never
# accepted: with a public key configured, an HS256 token "signed" with the public
# key's bytes would otherwise verify (the algorithm-confusion attack).
ASYMMETRIC_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)

_DURATION = re.compile(r"^\s*(\d{1,9})\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """Parse ``90s``, ``15m``, ``12h``, ``30d`` or ``2w`` (or seconds as a number).

    Example:
        >>> parse_duration("30d")
        datetime.timedelta(days=30)

    Raises:
        InvalidInputError: the text is not a positive duration in one of those units.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise InvalidInputError(
                f"duration {value!r} is not understood; write a number and a unit: "
                "90s, 15m, 12h, 30d or 2w"
            )
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise InvalidInputError(f"duration {value!r} must be longer than zero")
    return timedelta(seconds=seconds)


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [part for part in re.split(r"[,\s]+", value) if part]
    return value


@functools.lru_cache(maxsize=64)
def _catalog(
    approver_roles: tuple[str, ...], custom_roles: tuple[tuple[str, tuple[str, ...]], ...]
) -> RoleCatalog:
    # Built once per configuration: services and authentication ask for it on every call.
    return RoleCatalog(approver_roles=approver_roles, custom_roles=dict(custom_roles))


CommaList = Annotated[list[str], NoDecode]


class GovernanceSettings(CoreSettings):
    """How callers prove who they are, and the roles steward knows.

    ``STEWARD_AUTH=local`` (the default, embedded mode) lets a call without a
    token act as the local identity (``STEWARD_USER``, every scope);
    ``STEWARD_AUTH=required`` makes every call present a steward token or a JWT.
    """

    auth: Literal["local", "required"] = Field(
        default="local",
        description=(
            "local: calls without a token act as STEWARD_USER with every scope; "
            "required: every call needs a token (STEWARD_AUTH)."
        ),
    )
    token: SecretStr | None = Field(
        default=None,
        description="A steward token (stw_...) or a JWT to present (STEWARD_TOKEN).",
    )
    jwt_issuer: str | None = Field(
        default=None, description="Expected `iss` of identity-provider JWTs (STEWARD_JWT_ISSUER)."
    )
    jwt_audience: str | None = Field(
        default=None,
        description="Expected `aud` of identity-provider JWTs (STEWARD_JWT_AUDIENCE).",
    )
    jwt_jwks_url: str | None = Field(
        default=None,
        description="The identity provider's JWKS endpoint, https:// (STEWARD_JWT_JWKS_URL).",
    )
    jwt_jwks_file: Path | None = Field(
        default=None, description="A local JWKS file (STEWARD_JWT_JWKS_FILE)."
    )
    jwt_public_key_file: Path | None = Field(
        default=None,
        description="A PEM public key or certificate (STEWARD_JWT_PUBLIC_KEY_FILE).",
    )
    jwt_algorithms: CommaList = Field(
        default_factory=lambda: list(ASYMMETRIC_ALGORITHMS),
        description="Signature algorithms accepted, e.g. RS256,ES256 (STEWARD_JWT_ALGORITHMS).",
    )
    jwt_leeway: float = Field(
        default=30.0,
        ge=0,
        le=300,
        description="Seconds of clock skew tolerated on exp and nbf (STEWARD_JWT_LEEWAY).",
    )
    jwt_subject_claim: str = Field(
        default="sub",
        min_length=1,
        description="Claim naming the principal, e.g. email (STEWARD_JWT_SUBJECT_CLAIM).",
    )
    jwt_scope_claim: str = Field(
        default="scope",
        min_length=1,
        description="Claim with scopes, a string or a list, e.g. scp (STEWARD_JWT_SCOPE_CLAIM).",
    )
    jwt_roles_claim: str = Field(
        default="roles",
        min_length=1,
        description="Claim with role names, e.g. groups (STEWARD_JWT_ROLES_CLAIM).",
    )
    jwt_jwks_cache_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How long a fetched JWKS is reused (STEWARD_JWT_JWKS_CACHE_SECONDS).",
    )
    approver_roles: CommaList = Field(
        default_factory=lambda: ["model-risk", "compliance", "legal"],
        description="Names of approver roles besides `approver` (STEWARD_APPROVER_ROLES).",
    )
    custom_roles: dict[str, list[str]] = Field(
        default_factory=dict,
        description=(
            'Extra roles as JSON, name to scopes, e.g. {"pii-reader": ["features:read:pii"]} '
            "(STEWARD_CUSTOM_ROLES)."
        ),
    )
    token_default_expiry: timedelta = Field(
        default=timedelta(days=30),
        description="Lifetime of a token created without --expires (STEWARD_TOKEN_DEFAULT_EXPIRY).",
    )
    token_max_expiry: timedelta = Field(
        default=timedelta(days=365),
        description="Longest lifetime a token may be given (STEWARD_TOKEN_MAX_EXPIRY).",
    )
    auth_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description=(
            "How long role bindings are cached per process before re-reading "
            "(STEWARD_AUTH_CACHE_SECONDS); changes made in this process apply at once."
        ),
    )

    @field_validator("jwt_algorithms", "approver_roles", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("token_default_expiry", "token_max_expiry", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        try:
            return parse_duration(value)
        except InvalidInputError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("jwt_algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        refused = [alg for alg in value if alg not in ASYMMETRIC_ALGORITHMS]
        if refused:
            raise ValueError(
                f"algorithms {refused} are not accepted (never 'none', never HS*: a public key "
                f"must not double as an HMAC secret); choose from {list(ASYMMETRIC_ALGORITHMS)}"
            )
        if not value:
            raise ValueError("at least one algorithm is needed, e.g. RS256")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> GovernanceSettings:
        if self.token_default_expiry > self.token_max_expiry:
            raise ValueError(
                f"token_default_expiry ({self.token_default_expiry}) is longer than "
                f"token_max_expiry ({self.token_max_expiry})"
            )
        sources = [
            s for s in (self.jwt_jwks_url, self.jwt_jwks_file, self.jwt_public_key_file) if s
        ]
        if len(sources) > 1:
            raise ValueError(
                "set only one of STEWARD_JWT_JWKS_URL, STEWARD_JWT_JWKS_FILE and "
                "STEWARD_JWT_PUBLIC_KEY_FILE"
            )
        if sources and not (self.jwt_issuer and self.jwt_audience):
            raise ValueError(
                "JWT verification needs both STEWARD_JWT_ISSUER and STEWARD_JWT_AUDIENCE, so "
                "tokens issued for another application or by another provider are refused"
            )
        try:
            self.role_catalog()
        except InvalidInputError as exc:
            raise ValueError(str(exc)) from None
        return self

    def role_catalog(self) -> RoleCatalog:
        """Return the roles in force: built in, plus the configured approver and custom roles."""
        custom = tuple((name, tuple(scopes)) for name, scopes in sorted(self.custom_roles.items()))
        return _catalog(tuple(self.approver_roles), custom)

    @property
    def jwt_enabled(self) -> bool:
        """True when a key source for identity-provider JWTs is configured."""
        return bool(self.jwt_jwks_url or self.jwt_jwks_file or self.jwt_public_key_file)
