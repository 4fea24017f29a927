"""A short-lived, per-process cache of token rows, so a request's authentication is cheap.

An entry holds what verification needs (the hash, the owner, expiry and revocation,
the owner's global roles) for ``STEWARD_AUTH_CACHE_SECONDS``. Every change made in
this process to tokens, identities or bindings bumps the access generation and
empties the cache at once; a change made by another process is seen within the TTL.
Expiry is always checked against the clock, never cached.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime

from steward.governance._rows import access_generation
from steward.store import Database

__all__ = ["TokenCache", "TokenRecord", "cache_for"]

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


class TokenCache:
    """Token records of one database keyed by token id, each with its last-used time."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, int, TokenRecord]] = {}
        self._last_used: dict[str, datetime | None] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> TokenRecord | None:
        """Return a fresh record, or None when absent, expired or invalidated."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= time.monotonic() or entry[1] != access_generation():
            return None
        return entry[2]

    def put(self, key: str, record: TokenRecord, last_used: datetime | None, ttl: float) -> None:
        """Keep ``record`` for ``ttl`` seconds (not at all when ``ttl`` is 0)."""
        with self._lock:
            if max(len(self._entries), len(self._last_used)) >= _MAX_ENTRIES:
                self._entries.clear()
                self._last_used.clear()
            if ttl > 0:
                self._entries[key] = (time.monotonic() + ttl, access_generation(), record)
            self._last_used[key] = last_used

    def last_used(self, key: str) -> datetime | None:
        """Return the last-used time this process knows of."""
        return self._last_used.get(key)

    def set_last_used(self, key: str, when: datetime) -> None:
        """Remember that the token's last use was written as ``when``."""
        with self._lock:
            self._last_used[key] = when


_caches: weakref.WeakKeyDictionary[Database, TokenCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def cache_for(database: Database) -> TokenCache:
    """Return the token cache of ``database`` (one per open database in this process)."""
    found = _caches.get(database)
    if found is None:
        with _caches_lock:
            found = _caches.setdefault(database, TokenCache())
    return found
