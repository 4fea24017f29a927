"""Clocks: services take one so that tests and replays control time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "FrozenClock", "SystemClock", "utc_now"]


def utc_now() -> datetime:
    """Return the current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


class Clock(Protocol):
    """Something that tells the time."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware, in UTC."""
        return utc_now()


class FrozenClock:
    """A clock that moves only when told to: for tests and replays.

    Example:
        >>> clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
        >>> clock.advance(seconds=5).isoformat()
        '2026-01-01T00:00:05+00:00'
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError(f"FrozenClock needs a timezone-aware start, got naive {start!r}")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the frozen time."""
        with self._lock:
            return self._now

    def advance(self, **delta: float) -> datetime:
        """Move the clock forward by ``timedelta(**delta)`` and return the new time."""
        step = timedelta(**delta)
        if step < timedelta(0):
            raise ValueError(f"a clock only moves forward; got {step}")
        with self._lock:
            self._now += step
            return self._now
