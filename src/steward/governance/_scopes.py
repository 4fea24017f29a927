"""Scopes, resources and roles: the vocabulary of access decisions.

A *scope* names an action (``models:promote``, ``predict:fraud-api``,
``feedback:fraud-api``); a *role* is
a named bundle of scopes; a *binding* gives a principal a role, either globally or
on one *resource* (``model:fraud``, ``team:risk``, ``deployment:fraud-api``,
``feature_view:customer_stats``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from steward.core import ADMIN_SCOPE, InvalidInputError, scope_covers

__all__ = [
    "BUILTIN_ROLES",
    "GLOBAL",
    "RESOURCE_TYPES",
    "SCOPES",
    "Role",
    "RoleCatalog",
    "cap_scopes",
    "check_resource",
    "check_role_name",
    "check_scope",
]

# The fixed scopes; ``predict:<deployment>`` and ``feedback:<deployment>`` take a free suffix.
SCOPES = (
    "models:read",
    "models:write",
    "models:promote",
    "deployments:write",
    "predict:<deployment>",
    "feedback:<deployment>",
    "features:read",
    "features:read:pii",
    "audit:read",
    ADMIN_SCOPE,
)
_FIXED = frozenset(s for s in SCOPES if "<" not in s)
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}"
_PER_DEPLOYMENT = re.compile(rf"^(predict|feedback):{_NAME}$")
_ROLE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_RESOURCE = re.compile(rf"^([a-z_]+):({_NAME})$")

RESOURCE_TYPES = ("model", "team", "deployment", "feature_view")
GLOBAL = "*"  # the resource of a binding that applies everywhere


@dataclass(frozen=True, slots=True)
class Role:
    """A named bundle of scopes."""

    name: str
    scopes: frozenset[str]
    description: str
    builtin: bool = True
    approver: bool = False

    def as_dict(self) -> dict[str, object]:
        """Return a JSON-friendly view."""
        return {
            "name": self.name,
            "scopes": sorted(self.scopes),
            "description": self.description,
            "builtin": self.builtin,
            "approver": self.approver,
        }


_APPROVER_SCOPES = frozenset({"models:read", "features:read", "audit:read"})

BUILTIN_ROLES: tuple[Role, ...] = (
    Role("viewer", frozenset({"models:read", "features:read"}), "reads models and features"),
    Role(
        "data-scientist",
        frozenset({"models:read", "models:write", "features:read"}),
        "registers and edits models; reads features",
    ),
    Role(
        "ml-engineer",
        frozenset(
            {
                "models:read",
                "models:write",
                "models:promote",
                "deployments:write",
                "predict:*",
                "feedback:*",
                "features:read",
            }
        ),
        "requests promotions, deploys, calls every deployment and sends it feedback",
    ),
    Role(
        "approver",
        _APPROVER_SCOPES,
        "reviews models and their evidence; signs off promotions",
        approver=True,
    ),
    Role("admin", frozenset({ADMIN_SCOPE}), "everything, including identities and tokens"),
)


def check_scope(scope: str) -> str:
    """Return ``scope`` if it is one steward knows, else raise naming the valid ones.

    Valid: the fixed scopes, ``predict:<deployment>``, ``feedback:<deployment>``,
    and ``:*`` wildcards that cover at least one of them (``models:*``, ``predict:*``).

    Raises:
        InvalidInputError: the scope is unknown or malformed.
    """
    if not isinstance(scope, str):
        raise InvalidInputError(f"scope {scope!r} is not a string")
    if scope in _FIXED or _PER_DEPLOYMENT.match(scope):
        return scope
    families = (*_FIXED, "predict:x", "feedback:x")
    if scope.endswith(":*") and any(s.startswith(scope[:-1]) for s in families):
        return scope
    raise InvalidInputError(
        f"unknown scope {scope!r}; valid: {', '.join(SCOPES)}, or a wildcard such as models:*"
    )


def check_role_name(name: str) -> str:
    """Return a well-formed role name (lowercase letters, digits and dashes).

    Raises:
        InvalidInputError: the name is malformed.
    """
    if not isinstance(name, str) or not _ROLE_NAME.match(name):
        raise InvalidInputError(
            f"role name {name!r} is malformed; use lowercase letters, digits and dashes, "
            "starting with a letter (e.g. model-risk)"
        )
    return name


def check_resource(resource: str | None) -> str:
    """Normalise a binding's resource: ``None``/``*`` for global, else ``type:name``.

    Example:
        >>> check_resource("model:fraud")
        'model:fraud'
        >>> check_resource(None)
        '*'

    Raises:
        InvalidInputError: unknown resource type or malformed name.
    """
    if resource is None or resource == GLOBAL:
        return GLOBAL
    match = _RESOURCE.match(resource) if isinstance(resource, str) else None
    if match is None or match.group(1) not in RESOURCE_TYPES:
        raise InvalidInputError(
            f"resource {resource!r} is not understood; write TYPE:NAME with TYPE one of "
            f"{', '.join(RESOURCE_TYPES)} (e.g. model:fraud, team:risk)"
        )
    return resource


def cap_scopes(scopes: Iterable[str], cap: Iterable[str]) -> frozenset[str]:
    """Return the scopes both sets grant: each scope of one covered by the other.

    Example:
        >>> sorted(cap_scopes({"models:*"}, {"models:read", "audit:read"}))
        ['models:read']
        >>> sorted(cap_scopes({"predict:fraud-api"}, {"predict:*"}))
        ['predict:fraud-api']
    """
    return _cap(frozenset(scopes), frozenset(cap))


@functools.lru_cache(maxsize=4096)
def _cap(scopes: frozenset[str], cap: frozenset[str]) -> frozenset[str]:
    # Memoized: a token's scopes meet the same few role bundles on every request.
    kept = {s for s in scopes if any(scope_covers(c, s) for c in cap)}
    kept |= {c for c in cap if any(scope_covers(s, c) for s in scopes)}
    return frozenset(kept)


class RoleCatalog:
    """The roles in force: built in, configured approver roles, and custom roles.

    Example:
        >>> catalog = RoleCatalog(approver_roles=["model-risk"])
        >>> sorted(catalog.scopes_of(["model-risk"]))
        ['audit:read', 'features:read', 'models:read']
    """

    def __init__(
        self,
        *,
        approver_roles: Iterable[str] = ("model-risk", "compliance", "legal"),
        custom_roles: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        roles = {role.name: role for role in BUILTIN_ROLES}
        for name in approver_roles:
            check_role_name(name)
            if name in roles:
                raise InvalidInputError(
                    f"approver role {name!r} clashes with the built-in role of that name; "
                    "choose another name in STEWARD_APPROVER_ROLES"
                )
            roles[name] = Role(
                name, _APPROVER_SCOPES, "approver role (configured)", builtin=False, approver=True
            )
        for name, scopes in (custom_roles or {}).items():
            check_role_name(name)
            if name in roles:
                raise InvalidInputError(
                    f"custom role {name!r} clashes with an existing role; choose another name "
                    "in STEWARD_CUSTOM_ROLES"
                )
            granted = frozenset(check_scope(s) for s in scopes)
            roles[name] = Role(name, granted, "custom role (configured)", builtin=False)
        self._roles = roles

    @property
    def roles(self) -> list[Role]:
        """Every role, built-in first."""
        return list(self._roles.values())

    def get(self, name: str) -> Role:
        """Return a role by name.

        Raises:
            InvalidInputError: no such role; the message lists the valid ones.
        """
        role = self._roles.get(name)
        if role is None:
            raise InvalidInputError(
                f"unknown role {name!r}; valid: {', '.join(self._roles)} "
                "(approver and custom roles come from STEWARD_APPROVER_ROLES, STEWARD_CUSTOM_ROLES)"
            )
        return role

    def scopes_of(self, roles: Iterable[str]) -> frozenset[str]:
        """Return the union of the scopes of ``roles``; unknown names carry none."""
        found: set[str] = set()
        for name in roles:
            role = self._roles.get(name)
            if role is not None:
                found |= role.scopes
        return frozenset(found)

    def known(self, roles: Iterable[str]) -> frozenset[str]:
        """Return the names among ``roles`` that are roles of this catalog."""
        return frozenset(r for r in roles if r in self._roles)

    def carrying(self, scope: str) -> list[str]:
        """Return the names of roles (other than admin) whose scopes cover ``scope``."""
        return [
            role.name
            for role in self._roles.values()
            if role.name != "admin" and any(scope_covers(s, scope) for s in role.scopes)
        ]

    def is_approver(self, name: str) -> bool:
        """Return whether ``name`` is an approver role."""
        role = self._roles.get(name)
        return role is not None and role.approver
