"""Who is calling, and the seam through which every service asks whether they may.

Services never decide access on their own: they call ``store.authorize(scope,
resource=...)`` before acting, and the :class:`Authorizer` in force answers.
Until governance installs its own (roles, per-model bindings, tokens), the
:class:`ScopeAuthorizer` grants exactly the scopes the principal carries; the
embedded local identity carries ``admin``.

Scopes are strings such as ``models:read``, ``models:promote``,
``features:read:pii`` or ``predict:fraud-api``. A granted scope ending in ``:*``
covers every scope below it (``predict:*`` covers ``predict:fraud-api``), and
``admin`` covers everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from steward.core._errors import PermissionDeniedError

__all__ = [
    "ADMIN_SCOPE",
    "Authorizer",
    "Principal",
    "PrincipalKind",
    "ScopeAuthorizer",
    "scope_covers",
]

ADMIN_SCOPE = "admin"

PrincipalKind = Literal["local", "user", "service"]


def scope_covers(granted: str, wanted: str) -> bool:
    """Return whether a granted scope covers the wanted one.

    Example:
        >>> scope_covers("predict:*", "predict:fraud-api")
        True
        >>> scope_covers("features:read", "features:read:pii")
        False
    """
    if granted in (ADMIN_SCOPE, wanted):
        return True
    if granted.endswith(":*"):
        return wanted.startswith(granted[:-1])
    return False


@dataclass(frozen=True)
class Principal:
    """An identity acting on steward: a person, a service account, or the local user.

    ``scopes`` are the effective scopes already resolved from roles; ``roles`` are
    kept for decisions that need them (approvals, separation of duties).
    """

    name: str
    kind: PrincipalKind = "user"
    roles: frozenset[str] = field(default_factory=frozenset)
    scopes: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def local(cls, name: str) -> Principal:
        """The embedded-mode identity: the operating-system user, with every scope."""
        return cls(name=name, kind="local", roles=frozenset({"admin"}), scopes=frozenset({"admin"}))

    @classmethod
    def of(
        cls,
        name: str,
        *,
        scopes: Iterable[str] = (),
        roles: Iterable[str] = (),
        kind: PrincipalKind = "user",
    ) -> Principal:
        """Build a principal from any iterables of scopes and roles."""
        return cls(name=name, kind=kind, roles=frozenset(roles), scopes=frozenset(scopes))

    def allows(self, scope: str) -> bool:
        """Return whether one of this principal's scopes covers ``scope``."""
        return any(scope_covers(granted, scope) for granted in self.scopes)


@runtime_checkable
class Authorizer(Protocol):
    """Decides whether a principal may use a scope, optionally on one resource.

    ``resource`` names the object acted on as ``type:name`` (``model:fraud``,
    ``feature_view:customer_stats``, ``deployment:fraud-api``) so an authorizer
    can honour bindings scoped to one model or team.
    """

    def check(self, principal: Principal, scope: str, *, resource: str | None = None) -> None:
        """Return if allowed; raise :class:`PermissionDeniedError` naming the scope if not."""
        ...


class ScopeAuthorizer:
    """Grants exactly the scopes the principal carries, on every resource."""

    def check(self, principal: Principal, scope: str, *, resource: str | None = None) -> None:
        """Raise :class:`PermissionDeniedError` unless the principal holds ``scope``."""
        if not principal.allows(scope):
            target = f" on {resource}" if resource else ""
            raise PermissionDeniedError(
                f"{principal.name!r} lacks the scope {scope!r}{target}; "
                "ask an administrator to grant it"
            )
