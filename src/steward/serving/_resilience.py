"""Resilience on the hot path: the errors that say "retry later", circuit breakers, timeouts.

The error tree of this module (they extend the shared leaves of
:mod:`steward.core`, so adapters map them by kind)::

    BackendUnavailableError
    ├── RetryLaterError           the request was refused now; ``retry_after_s`` says when
    │   ├── OverloadedError       the admission gate is full (HTTP 503 + Retry-After)
    │   ├── CircuitOpenError      the variant's circuit breaker is open (HTTP 503 + Retry-After)
    │   ├── RateLimitedError      the caller's token bucket is empty (HTTP 429 + Retry-After)
    │   └── EarlyRetryError       a connection came back before its Retry-After (HTTP 429)
    └── ModelTimeoutError         the model did not answer within its timeout (HTTP 504)

Rate limiting and admission live in ``_limits``; fallbacks in ``_fallback``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from steward.core import BackendUnavailableError, InvalidInputError

__all__ = [
    "BreakerState",
    "CircuitBreaker",
    "CircuitBreakerSnapshot",
    "CircuitOpenError",
    "EarlyRetryError",
    "ModelTimeoutError",
    "OverloadedError",
    "RateLimitedError",
    "RetryLaterError",
    "timeout_error",
]

BreakerState = Literal["closed", "open", "half_open"]


class RetryLaterError(BackendUnavailableError):
    """The request was refused for now; try again after ``retry_after_s`` seconds."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = max(retry_after_s, 0.0)

    @property
    def retry_after_header(self) -> str:
        """The ``Retry-After`` header value: whole seconds, at least 1."""
        return str(max(1, math.ceil(self.retry_after_s)))

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), str(self), self.retry_after_s))


def _rebuild(cls: type[RetryLaterError], message: str, retry_after_s: float) -> RetryLaterError:
    return cls(message, retry_after_s=retry_after_s)


class OverloadedError(RetryLaterError):
    """Too many requests are in flight and queued; the request was shed at once."""


class CircuitOpenError(RetryLaterError):
    """The variant's circuit breaker is open after repeated failures."""


class RateLimitedError(RetryLaterError):
    """The caller used up its request budget (token bucket)."""


class EarlyRetryError(RetryLaterError):
    """A connection sent a request before the ``Retry-After`` it was given had passed.

    The request was held until that time and refused; the connection may retry at
    once (``Retry-After: 0``).
    """

    @property
    def retry_after_header(self) -> str:
        """``0``: the wait it was asked for is over."""
        return "0"


class ModelTimeoutError(BackendUnavailableError):
    """A model call did not finish within its timeout."""


def timeout_error(what: str, timeout_s: float) -> ModelTimeoutError:
    """The error of a call to ``what`` that passed its ``timeout_s`` (HTTP 504)."""
    return ModelTimeoutError(
        f"{what} did not answer within {timeout_s:g} s; raise the variant's timeout or "
        "declare a fallback"
    )


@dataclass(frozen=True)
class CircuitBreakerSnapshot:
    """A breaker's state for status pages and metrics."""

    state: BreakerState
    recent_failures: int
    half_open_successes: int
    retry_after_s: float
    opened_count: int


class CircuitBreaker:
    """A per-variant circuit breaker: stop calling a failing model, probe it, then resume.

    - ``closed``: calls go through; ``failure_threshold`` failures within
      ``window_s`` seconds open the breaker.
    - ``open``: calls are refused (:class:`CircuitOpenError`, with the seconds
      left of the ``cooldown_s``), so a broken model fails fast and the gateway
      serves the fallback.
    - ``half_open``: after the cool-down, up to ``half_open_probes`` calls at a
      time go through as probes; ``success_threshold`` successes close the
      breaker, one failure opens it again for another cool-down.

    Thread-safe.  Pair every successful :meth:`acquire` with exactly one
    :meth:`record_success` or :meth:`record_failure`.

    Example:
        >>> clock = iter(range(100)).__next__
        >>> breaker = CircuitBreaker("fraud/3", failure_threshold=2, cooldown_s=5, clock=clock)
        >>> for _ in range(2):
        ...     breaker.acquire()
        ...     breaker.record_failure()
        >>> breaker.state
        'open'

    Args:
        name: what is guarded (a variant), for messages.
        failure_threshold: failures within the window that open the breaker.
        window_s: the sliding window over which failures are counted.
        cooldown_s: how long the breaker stays open before probing.
        success_threshold: probe successes that close it again.
        half_open_probes: probes allowed at the same time.
        clock: a monotonic clock in seconds (inject one in tests).
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        window_s: float = 30.0,
        cooldown_s: float = 10.0,
        success_threshold: int = 2,
        half_open_probes: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for label, value in (
            ("failure_threshold", failure_threshold),
            ("success_threshold", success_threshold),
            ("half_open_probes", half_open_probes),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"circuit breaker {label} must be >= 1, got {value!r}")
        for label, seconds in (("window_s", window_s), ("cooldown_s", cooldown_s)):
            if not (math.isfinite(seconds) and seconds > 0):
                raise InvalidInputError(f"circuit breaker {label} must be > 0 s, got {seconds!r}")
        self.name = name
        self.failure_threshold = failure_threshold
        self.window_s = window_s
        self.cooldown_s = cooldown_s
        self.success_threshold = success_threshold
        self.half_open_probes = half_open_probes
        self._clock = clock
        self._lock = threading.Lock()
        self._state: BreakerState = "closed"
        self._failures: deque[float] = deque()
        self._opened_at = 0.0
        self._probes = 0
        self._successes = 0
        self._opened_count = 0

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker past its cool-down reads ``half_open``)."""
        with self._lock:
            self._advance(self._clock())
            return self._state

    def acquire(self) -> None:
        """Ask to make one call.

        Raises:
            CircuitOpenError: the breaker is open, or half-open with every probe
                slot taken; ``retry_after_s`` says when to try again.
        """
        with self._lock:
            now = self._clock()
            self._advance(now)
            if self._state == "closed":
                return
            if self._state == "half_open" and self._probes < self.half_open_probes:
                self._probes += 1
                return
            wait = max(self._opened_at + self.cooldown_s - now, 0.0) or 1.0
            raise CircuitOpenError(
                f"circuit breaker of {self.name} is {self._state.replace('_', '-')} after "
                f"repeated failures; retry in {wait:.1f} s (or the gateway serves the fallback)",
                retry_after_s=wait,
            )

    def record_success(self) -> None:
        """Report that an acquired call succeeded."""
        with self._lock:
            if self._state != "half_open":
                return
            self._probes = max(self._probes - 1, 0)
            self._successes += 1
            if self._successes >= self.success_threshold:
                self._state = "closed"
                self._failures.clear()
                self._successes = 0

    def record_failure(self) -> None:
        """Report that an acquired call failed (raised or timed out)."""
        with self._lock:
            now = self._clock()
            if self._state == "half_open":
                self._open(now)
                return
            if self._state == "open":
                return
            self._failures.append(now)
            self._trim(now)
            if len(self._failures) >= self.failure_threshold:
                self._open(now)

    def snapshot(self) -> CircuitBreakerSnapshot:
        """Return the breaker's state and counters."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            self._trim(now)
            wait = max(self._opened_at + self.cooldown_s - now, 0.0) if self._state == "open" else 0
            return CircuitBreakerSnapshot(
                self._state, len(self._failures), self._successes, wait, self._opened_count
            )

    def _open(self, now: float) -> None:
        self._state = "open"
        self._opened_at = now
        self._opened_count += 1
        self._probes = 0
        self._successes = 0
        self._failures.clear()

    def _advance(self, now: float) -> None:
        if self._state == "open" and now - self._opened_at >= self.cooldown_s:
            self._state = "half_open"
            self._probes = 0
            self._successes = 0

    def _trim(self, now: float) -> None:
        while self._failures and now - self._failures[0] > self.window_s:
            self._failures.popleft()
