"""The steward error tree.

Every error steward raises on purpose derives from :class:`StewardError`. Each
context adds its own base (``RegistryError``, ...); callers branch on the shared
leaves, which say *what kind* of failure happened, not *where*::

    StewardError
    ├── NotFoundError            the named object does not exist
    ├── ConflictError            the change clashes with what is stored
    ├── PermissionDeniedError    the caller lacks a scope
    ├── InvalidInputError        the caller's input is malformed
    │   └── ConfigurationError   a setting is missing, malformed or unusable
    ├── IntegrityError           stored bytes or records fail verification
    │   └── EncryptionKeyError   the key to decrypt is missing or wrong
    ├── BackendUnavailableError  a database, bucket or cache cannot be reached
    └── SchemaVersionError       the database schema does not match the code

Errors know nothing about HTTP; adapters map classes to status codes in one table.
Messages name what was wrong, the offending value and, where useful, the valid options.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "ConfigurationError",
    "ConflictError",
    "EncryptionKeyError",
    "IntegrityError",
    "InvalidInputError",
    "NotFoundError",
    "PermissionDeniedError",
    "SchemaVersionError",
    "StewardError",
]


class StewardError(Exception):
    """Root of every error steward raises on purpose."""


class NotFoundError(StewardError, LookupError):
    """The named object does not exist."""


class ConflictError(StewardError):
    """The change clashes with what is already stored."""


class PermissionDeniedError(StewardError):
    """The caller lacks the scope the action needs."""


class InvalidInputError(StewardError, ValueError):
    """The caller's input is malformed, missing or out of range."""


class ConfigurationError(InvalidInputError):
    """A setting is missing, malformed or unusable; the message names the setting."""


class IntegrityError(StewardError):
    """Stored bytes or records fail verification (digest, hash chain, authentication tag)."""


class EncryptionKeyError(IntegrityError):
    """The key needed to decrypt is not configured, or is not the key the data was sealed with."""


class BackendUnavailableError(StewardError):
    """An external system (database, object store, cache) cannot be reached."""


class SchemaVersionError(StewardError):
    """The metadata database schema is older or newer than this version of steward."""
