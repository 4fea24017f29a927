"""Shared foundations: settings, errors, ids, clocks and hashing."""

from steward.core._auth import (
    ADMIN_SCOPE,
    Authorizer,
    Principal,
    PrincipalKind,
    ScopeAuthorizer,
    scope_covers,
)
from steward.core._clock import Clock, FrozenClock, SystemClock, utc_now
from steward.core._errors import (
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    EncryptionKeyError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    SchemaVersionError,
    StewardError,
)
from steward.core._hashing import canonical_json, sha256_file, sha256_hex, sha256_stream
from steward.core._ids import new_id
from steward.core._retention import KeepReason, RetentionGuard
from steward.core._settings import BaseStewardSettings, CoreSettings, config_file, load_settings

__all__ = [
    "ADMIN_SCOPE",
    "Authorizer",
    "BackendUnavailableError",
    "BaseStewardSettings",
    "Clock",
    "ConfigurationError",
    "ConflictError",
    "CoreSettings",
    "EncryptionKeyError",
    "FrozenClock",
    "IntegrityError",
    "InvalidInputError",
    "KeepReason",
    "NotFoundError",
    "PermissionDeniedError",
    "Principal",
    "PrincipalKind",
    "RetentionGuard",
    "SchemaVersionError",
    "ScopeAuthorizer",
    "StewardError",
    "SystemClock",
    "canonical_json",
    "config_file",
    "load_settings",
    "new_id",
    "scope_covers",
    "sha256_file",
    "sha256_hex",
    "sha256_stream",
    "utc_now",
]
