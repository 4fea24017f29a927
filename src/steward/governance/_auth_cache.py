"""Short-lived, per-process caches that make a request's authentication cheap.

Per database: token records (what verifying a token needs: the hash, the owner,
expiry and revocation, the owner's global roles) and identities looked up for
JWT subjects, each kept for ``STEWARD_AUTH_CACHE_SECONDS``. Every change made in
this process to tokens, identities or bindings bumps the access generation and
empties them at once; a change made by another process is seen within the TTL.
Expiry is always checked against the clock, never cached.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from steward.governance._models import Identity
from steward.governance._rows import access_generation
from steward.store import Database

__all__ = ["AuthCache", "TokenRecord", "cache_for"]

_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What verifying a token needs to know, read in one go."""

    secret_hash: str
    name: str
    principal: str
    principal_kind: str
    principal_disabled: bool
    scopes: frozenset[str]
    roles: frozenset[str]
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None


class _Fresh:
    """Values kept until a deadline or the next access-generation bump."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, int, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bool, Any]:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= time.monotonic() or entry[1] != access_generation():
            return False, None
        return True, entry[2]

    def put(self, key: str, value: Any, ttl: float) -> None:
        if ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + ttl, access_generation(), value)


class AuthCache:
    """One database's token records (with last-used times) and identities by name."""

    def __init__(self) -> None:
        self._tokens = _Fresh()
        self._identities = _Fresh()
        self._last_used: dict[str, datetime | None] = {}
        self._lock = threading.Lock()

    def get(self, token_id: str) -> TokenRecord | None:
        """Return a fresh token record, or None when absent, expired or invalidated."""
        found, record = self._tokens.get(token_id)
        return record if found else None

    def put(
        self, token_id: str, record: TokenRecord, last_used: datetime | None, ttl: float
    ) -> None:
        """Keep ``record`` for ``ttl`` seconds (not at all when ``ttl`` is 0)."""
        self._tokens.put(token_id, record, ttl)
        with self._lock:
            if len(self._last_used) >= _MAX_ENTRIES:
                self._last_used.clear()
            self._last_used[token_id] = last_used

    def identity(self, name: str) -> tuple[bool, Identity | None]:
        """Return ``(cached, identity)``: a fresh lookup of ``name``, possibly "not registered"."""
        found, value = self._identities.get(name)
        return found, value

    def put_identity(self, name: str, identity: Identity | None, ttl: float) -> None:
        """Keep the lookup of ``name`` (None: not registered) for ``ttl`` seconds."""
        self._identities.put(name, identity, ttl)

    def last_used(self, token_id: str) -> datetime | None:
        """Return the token's last-used time this process knows of."""
        return self._last_used.get(token_id)

    def set_last_used(self, token_id: str, when: datetime) -> None:
        """Remember that the token's last use was written as ``when``."""
        with self._lock:
            self._last_used[token_id] = when


_caches: weakref.WeakKeyDictionary[Database, AuthCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def cache_for(database: Database) -> AuthCache:
    """Return the cache of ``database`` (one per open database in this process)."""
    found = _caches.get(database)
    if found is None:
        with _caches_lock:
            found = _caches.setdefault(database, AuthCache())
    return found
