"""What governance hands back: plain, immutable records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from steward.core import Principal

__all__ = ["AuthMethod", "AuthenticatedPrincipal", "Identity", "RoleBinding", "TokenInfo"]

AuthMethod = Literal["local", "token", "jwt"]
IdentityKind = Literal["user", "service"]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class AuthenticatedPrincipal(Principal):
    """A :class:`~steward.core.Principal` with how it proved who it is.

    ``token_scopes`` caps what per-resource role bindings may add for a caller
    that presented a steward token: a token made for ``models:read`` stays
    read-only on a model where its owner is an ``ml-engineer``. ``None`` means
    no cap (JWTs and the local identity).
    """

    method: AuthMethod = "local"
    token_id: str | None = None
    token_name: str | None = None
    token_scopes: frozenset[str] | None = None
    expires_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view (what ``steward whoami`` prints)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "method": self.method,
            "roles": sorted(self.roles),
            "scopes": sorted(self.scopes),
            "token_id": self.token_id,
            "token_name": self.token_name,
            "expires_at": _iso(self.expires_at),
        }


@dataclass(frozen=True, slots=True)
class RoleBinding:
    """A role held by a principal, globally (resource ``*``) or on one resource."""

    id: str
    principal: str
    role: str
    resource: str
    created_at: datetime
    created_by: str

    @property
    def is_global(self) -> bool:
        """True when the binding applies to every resource."""
        return self.resource == "*"

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        return {
            "id": self.id,
            "principal": self.principal,
            "role": self.role,
            "resource": self.resource,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


@dataclass(frozen=True, slots=True)
class Identity:
    """A registered user or service account, with its role bindings."""

    id: str
    name: str
    kind: IdentityKind
    email: str | None
    description: str
    created_at: datetime
    created_by: str
    disabled_at: datetime | None = None
    bindings: tuple[RoleBinding, ...] = field(default_factory=tuple)

    @property
    def disabled(self) -> bool:
        """True when the identity may no longer authenticate."""
        return self.disabled_at is not None

    @property
    def global_roles(self) -> frozenset[str]:
        """Roles bound everywhere."""
        return frozenset(b.role for b in self.bindings if b.is_global)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "email": self.email,
            "description": self.description,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "disabled": self.disabled,
            "disabled_at": _iso(self.disabled_at),
            "bindings": [{"role": b.role, "resource": b.resource} for b in self.bindings],
        }


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What is known about a token; never its secret."""

    id: str
    name: str
    principal: str
    scopes: tuple[str, ...]
    created_at: datetime
    created_by: str
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    last_used_at: datetime | None = None

    def state(self, now: datetime) -> Literal["active", "expired", "revoked"]:
        """Return whether the token is active, expired or revoked at ``now``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "active"

    def as_dict(self, now: datetime | None = None) -> dict[str, Any]:
        """Return a JSON-friendly view; with ``now``, include the state."""
        view: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "principal": self.principal,
            "scopes": list(self.scopes),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "expires_at": self.expires_at.isoformat(),
            "revoked_at": _iso(self.revoked_at),
            "revoked_by": self.revoked_by,
            "last_used_at": _iso(self.last_used_at),
        }
        if now is not None:
            view["state"] = self.state(now)
        return view
