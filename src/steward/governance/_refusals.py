"""Refused credentials in the audit chain, without letting a flood of garbage fill it.

Every refusal is recorded as ``auth.refused`` (actor ``anonymous``) with its
reason, the method (``token``, ``jwt``, ``unknown``) and a short fingerprint
that names no secret: a token's id (or its first 8 characters when the id is
unknown), a JWT's ``kid`` and ``iss``. A credential's bytes are never written.

Anyone can send garbage, so each process writes at most one event per reason
and fingerprint per window (a minute), and at most :data:`PER_REASON` events per
reason per window, whatever the fingerprints. Refusals left out are counted;
the next event of that reason carries the count as ``suppressed``, so the chain
still shows how many there were. Windows follow the store's clock.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from steward.store import Database, Store

__all__ = ["ANONYMOUS", "PER_REASON", "WINDOW", "RefusalLimiter", "record_refusal"]

# Whoever fails to authenticate is not known; refusals are recorded under this actor.
ANONYMOUS = "anonymous"
WINDOW = timedelta(minutes=1)
PER_REASON = 20
_MAX_KEYS = 10_000


class RefusalLimiter:
    """Decides which refusals are written: one per reason and fingerprint per window.

    Example:
        >>> limiter = RefusalLimiter()
        >>> now = datetime(2026, 1, 1)
        >>> limiter.admit("expired", "token:ab12", now), limiter.admit("expired", "token:ab12", now)
        (0, None)
        >>> limiter.admit("expired", "token:ab12", now + WINDOW)  # the one left out is counted
        1
    """

    def __init__(self, *, window: timedelta = WINDOW, per_reason: int = PER_REASON) -> None:
        self._window = window
        self._per_reason = per_reason
        self._last: dict[tuple[str, str], datetime] = {}
        self._reasons: dict[str, tuple[datetime, int]] = {}
        self._suppressed: Counter[str] = Counter()
        self._lock = threading.Lock()

    def admit(self, reason: str, fingerprint: str, now: datetime) -> int | None:
        """Return the count left out since ``reason``'s last event; None leaves this one out."""
        with self._lock:
            start, count = self._reasons.get(reason, (now, 0))
            if now - start >= self._window:
                start, count = now, 0
            last = self._last.get((reason, fingerprint))
            if (last is not None and now - last < self._window) or count >= self._per_reason:
                self._reasons[reason] = (start, count)
                self._suppressed[reason] += 1
                return None
            if len(self._last) >= _MAX_KEYS:
                self._last.clear()
            self._last[(reason, fingerprint)] = now
            self._reasons[reason] = (start, count + 1)
            return self._suppressed.pop(reason, 0)


_limiters: weakref.WeakKeyDictionary[Database, RefusalLimiter] = weakref.WeakKeyDictionary()
_limiters_lock = threading.Lock()


def _limiter_for(database: Database) -> RefusalLimiter:
    with _limiters_lock:
        return _limiters.setdefault(database, RefusalLimiter())


def record_refusal(
    store: Store,
    *,
    reason: str,
    method: str,
    object_type: str,
    object_id: str,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Audit ``auth.refused`` for a refused credential, unless the limiter leaves it out.

    ``object_type``/``object_id`` are the fingerprint (``token``/``<id>``,
    ``jwt``/``<iss>``); ``details`` adds other fields that name no secret.
    """
    key = f"{object_type}:{object_id}"
    suppressed = _limiter_for(store.database).admit(reason, key, store.clock.now())
    if suppressed is None:
        return
    body: dict[str, Any] = {"reason": reason, "method": method, **(details or {})}
    if suppressed:
        body["suppressed"] = suppressed
    with store.unit_of_work(actor=ANONYMOUS) as uow:
        uow.audit("auth.refused", object_type, object_id, body)
