"""Reading governance rows into records; the queries shared by services and the authorizer."""

from __future__ import annotations

import itertools
import json
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from steward.core import NotFoundError
from steward.governance._models import Identity, RoleBinding, TokenInfo
from steward.governance._tables import principals, role_bindings

__all__ = [
    "access_generation",
    "bindings_of",
    "bump_generation",
    "find_identity",
    "get_identity",
    "list_identities",
    "resource_roles",
    "to_token",
]

# Bumped after every committed change to identities, bindings or tokens in this
# process, so cached access decisions here see the change at once (other processes
# within the cache TTL).
_generation = itertools.count(1)
_current = 0
_lock = threading.Lock()


def bump_generation() -> None:
    """Invalidate every binding and token cache of this process."""
    global _current
    with _lock:
        _current = next(_generation)


def access_generation() -> int:
    """Return the current access generation of this process (cache entries carry it)."""
    return _current


def _binding(row: Row[Any], principal: str) -> RoleBinding:
    return RoleBinding(
        id=row.id,
        principal=principal,
        role=row.role,
        resource=row.resource,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _identity(row: Row[Any], bindings: Sequence[RoleBinding]) -> Identity:
    return Identity(
        id=row.id,
        name=row.name,
        kind=row.kind,
        email=row.email,
        description=row.description,
        created_at=row.created_at,
        created_by=row.created_by,
        disabled_at=row.disabled_at,
        bindings=tuple(bindings),
    )


def bindings_of(conn: Connection, principal_ids: Iterable[str]) -> dict[str, list[Any]]:
    """Return the binding rows of each principal id, ordered by role then resource."""
    ids = list(principal_ids)
    found: dict[str, list[Any]] = defaultdict(list)
    if not ids:
        return found
    rows = conn.execute(
        sa.select(role_bindings)
        .where(role_bindings.c.principal_id.in_(ids))
        .order_by(role_bindings.c.role, role_bindings.c.resource)
    )
    for row in rows:
        found[row.principal_id].append(row)
    return found


def find_identity(conn: Connection, name: str) -> Identity | None:
    """Return the identity called ``name`` with its bindings, or None."""
    row = conn.execute(sa.select(principals).where(principals.c.name == name)).first()
    if row is None:
        return None
    rows = bindings_of(conn, [row.id])[row.id]
    return _identity(row, [_binding(b, row.name) for b in rows])


def get_identity(conn: Connection, name: str) -> Identity:
    """Return the identity called ``name``.

    Raises:
        NotFoundError: no such user or service account.
    """
    found = find_identity(conn, name)
    if found is None:
        raise NotFoundError(
            f"no user or service account {name!r}; create it with `steward users create {name}`"
        )
    return found


def list_identities(
    conn: Connection, *, kind: str | None = None, include_disabled: bool = True
) -> list[Identity]:
    """Return identities by name, with their bindings."""
    query = sa.select(principals).order_by(principals.c.name)
    if kind is not None:
        query = query.where(principals.c.kind == kind)
    if not include_disabled:
        query = query.where(principals.c.disabled_at.is_(None))
    rows = conn.execute(query).all()
    bindings = bindings_of(conn, [r.id for r in rows])
    return [_identity(r, [_binding(b, r.name) for b in bindings[r.id]]) for r in rows]


def resource_roles(conn: Connection, name: str) -> dict[str, frozenset[str]]:
    """Return ``{resource: roles}`` of the enabled principal ``name`` (empty if unknown)."""
    rows = conn.execute(
        sa.select(role_bindings.c.resource, role_bindings.c.role)
        .join(principals, principals.c.id == role_bindings.c.principal_id)
        .where(principals.c.name == name, principals.c.disabled_at.is_(None))
    )
    found: dict[str, set[str]] = defaultdict(set)
    for resource, role in rows:
        found[resource].add(role)
    return {resource: frozenset(roles) for resource, roles in found.items()}


def to_token(row: Row[Any], principal: str) -> TokenInfo:
    """Build a :class:`TokenInfo` from an ``api_tokens`` row."""
    return TokenInfo(
        id=row.id,
        name=row.name,
        principal=principal,
        scopes=tuple(json.loads(row.scopes)),
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        last_used_at=row.last_used_at,
    )
