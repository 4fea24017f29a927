"""Acting as a registered identity the way adapters do: a token, then an authenticated store."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from steward.governance import (
    GovernanceSettings,
    ResourceTeams,
    TokenService,
    authenticated_store,
)
from steward.store import Store

_labels = itertools.count(1)


def token_for(
    store: Store, name: str, *, scopes: Iterable[str] = ("admin",), label: str | None = None
) -> str:
    """Create (as the local operator) a token owned by ``name``; return its secret."""
    tokens = TokenService(store, settings=GovernanceSettings(user="root"))
    _, secret = tokens.create_token(
        name, name=label or f"t-{name}-{next(_labels)}", scopes=list(scopes)
    )
    return secret


def acting_as(
    store: Store,
    name: str,
    *,
    scopes: Iterable[str] = ("admin",),
    settings: GovernanceSettings | None = None,
    resource_teams: ResourceTeams | None = None,
) -> Store:
    """Return ``store`` bound to ``name`` through a fresh token with ``scopes``."""
    secret = token_for(store, name, scopes=scopes)
    return authenticated_store(
        store,
        secret,
        settings=settings or GovernanceSettings(user="root"),
        resource_teams=resource_teams,
    )
