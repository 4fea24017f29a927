"""Errors of the governance context.

::

    StewardError
    ├── PermissionDeniedError
    │   └── AuthenticationError        the credential does not prove who is calling
    │       ├── TokenExpiredError      a steward token or JWT is past its expiry
    │       └── TokenRevokedError      a steward token was revoked
    ├── GovernanceError                base of this context's other errors
    └── ConflictError
        └── PromotionFrozenError       a freeze window stops a promotion to its stage

A caller that lacks a scope gets the shared :class:`~steward.core.PermissionDeniedError`
from ``store.authorize``. Authentication failures are a subclass of it, so scripts that
branch on "permission denied" (CLI exit code 5) catch both; an HTTP adapter maps
:class:`AuthenticationError` to 401 and the rest to 403. Bad arguments raise the shared
:class:`~steward.core.InvalidInputError`.
"""

from __future__ import annotations

from steward.core import ConflictError, PermissionDeniedError, StewardError

__all__ = [
    "AuthenticationError",
    "GovernanceError",
    "PromotionFrozenError",
    "TokenExpiredError",
    "TokenRevokedError",
]


class GovernanceError(StewardError):
    """Base of the governance context's own errors."""


class AuthenticationError(PermissionDeniedError):
    """The credential is missing, malformed, unknown, or does not verify.

    ``reason`` is a short, stable label of why (``bad signature``, ``wrong
    audience``, ``unknown token``): what the audit chain records, never the message.
    """

    reason = "refused"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class TokenExpiredError(AuthenticationError):
    """The token was valid once and has expired."""

    reason = "expired"


class TokenRevokedError(AuthenticationError):
    """The token was revoked by its owner or an administrator."""

    reason = "revoked"


class PromotionFrozenError(ConflictError):
    """A freeze window covers the target stage and the request may not pass it."""
