"""An opt-in response cache for deterministic models: canonical input hash, TTL, LRU bound.

A deployment turns it on for models whose output depends only on their input.
The key is the SHA-256 of the canonical JSON (``steward.core.canonical_json``)
of a namespace (deployment, revision, variant: a new revision never reads the
old one's answers) and the inputs, so key order and spacing in the request do
not matter.  Entries expire ``ttl_s`` seconds after they were stored, and the
least recently used entry goes first when ``max_entries`` is reached.

Inputs that canonical JSON cannot spell (NaN, infinities) are simply not
cached: :meth:`ResponseCache.key` returns None for them.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from steward.core import InvalidInputError, canonical_json, sha256_hex

__all__ = ["CacheStats", "ResponseCache"]

V = TypeVar("V")


@dataclass(frozen=True)
class CacheStats:
    """The cache's counters.

    Attributes:
        hits / misses: lookups that found a live entry / did not.
        expirations: entries dropped because their TTL passed.
        evictions: entries dropped to stay within ``max_entries``.
        uncacheable: inputs that could not be keyed (NaN, infinities).
        entries: entries held now.
    """

    hits: int
    misses: int
    expirations: int
    evictions: int
    uncacheable: int
    entries: int

    @property
    def hit_rate(self) -> float | None:
        """Hits per lookup, or None before the first lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else None


class ResponseCache(Generic[V]):
    """Cache model outputs by a canonical hash of their inputs, with a TTL and an LRU bound.

    Thread-safe.  Values are returned as stored: store immutable values (or
    copies) if callers may change them.

    Example:
        >>> cache: ResponseCache[float] = ResponseCache(max_entries=1_000, ttl_s=60)
        >>> key = cache.key({"amount": 12.5, "country": "FR"}, namespace="fraud:r3:champion")
        >>> cache.get(key) is None
        True
        >>> cache.put(key, 0.07)
        >>> cache.get(cache.key({"country": "FR", "amount": 12.5}, namespace="fraud:r3:champion"))
        0.07

    Args:
        max_entries: the most entries held.
        ttl_s: seconds an entry stays valid after it was stored.
        clock: a monotonic clock in seconds (inject one in tests).

    Raises:
        InvalidInputError: a setting out of range.
    """

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        ttl_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise InvalidInputError(
                f"cache max_entries must be an integer >= 1, got {max_entries!r}"
            )
        if not (isinstance(ttl_s, int | float) and math.isfinite(ttl_s) and ttl_s > 0):
            raise InvalidInputError(f"cache ttl_s must be a positive number, got {ttl_s!r}")
        self.max_entries = max_entries
        self.ttl_s = float(ttl_s)
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._expirations = 0
        self._evictions = 0
        self._uncacheable = 0

    def key(self, inputs: Any, *, namespace: str) -> str | None:
        """Return the cache key of ``inputs`` under ``namespace``, or None if uncacheable.

        ``{"b": 1, "a": 2}`` and ``{"a": 2, "b": 1}`` give the same key; ``1``
        and ``1.0`` do not (a model may treat them differently).
        """
        try:
            text = canonical_json({"namespace": namespace, "inputs": inputs})
        except InvalidInputError:
            with self._lock:
                self._uncacheable += 1
            return None
        return sha256_hex(text)

    def get(self, key: str | None) -> V | None:
        """Return the live value under ``key`` (refreshing its recency), or None."""
        if key is None:
            return None
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self._misses += 1
                return None
            stored_at, value = entry
            if now - stored_at >= self.ttl_s:
                del self._entries[key]
                self._expirations += 1
                self._misses += 1
                return None
            self._entries.move_to_end(key)
            self._hits += 1
            return value

    def put(self, key: str | None, value: V) -> None:
        """Store ``value`` under ``key`` (a None key is ignored), evicting the LRU entry if full."""
        if key is None:
            return
        now = self._clock()
        with self._lock:
            self._entries[key] = (now, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
                self._evictions += 1

    def clear(self) -> None:
        """Drop every entry (counters are kept)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def stats(self) -> CacheStats:
        """Return the counters."""
        with self._lock:
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                expirations=self._expirations,
                evictions=self._evictions,
                uncacheable=self._uncacheable,
                entries=len(self._entries),
            )
