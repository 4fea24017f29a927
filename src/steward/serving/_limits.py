"""Limits that keep latency bounded under overload: per-caller rate limits and an admission gate.

- :class:`TokenBucket` / :class:`RateLimiter`: each caller may spend
  ``capacity`` requests at once and earns ``refill_per_s`` back per second; a
  caller over budget is told how long to wait (HTTP 429 + ``Retry-After``).
- :class:`AdmissionController`: at most ``max_in_flight`` requests run and at
  most ``max_queued`` wait; the next one is refused *at once* with a
  retry-after hint (HTTP 503), rather than queueing without bound and making
  every request slow.
- :class:`EarlyRetryGuard`: a connection that was told to retry later and
  sends again before that time is held until then and refused (HTTP 429,
  ``Retry-After: 0``), so a client that ignores ``Retry-After`` cannot turn
  overload into a stream of refusals.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from steward.core import InvalidInputError
from steward.serving._resilience import EarlyRetryError, OverloadedError, RateLimitedError

__all__ = [
    "AdmissionController",
    "AdmissionSnapshot",
    "EarlyRetryGuard",
    "RateLimiter",
    "TokenBucket",
]


def _finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive(name: str, value: float) -> None:
    if not _finite_number(value) or value <= 0:
        raise InvalidInputError(f"{name} must be a positive number, got {value!r}")


def _integer_at_least(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInputError(f"{name} must be an integer >= {minimum}, got {value!r}")


class TokenBucket:
    """A token bucket: ``capacity`` tokens, refilled at ``refill_per_s`` tokens per second.

    Not thread-safe on its own (:class:`RateLimiter` locks around it).

    Example:
        >>> now = [0.0]
        >>> bucket = TokenBucket(capacity=2, refill_per_s=1, clock=lambda: now[0])
        >>> bucket.try_take(), bucket.try_take(), bucket.try_take()
        (0.0, 0.0, 1.0)
        >>> now[0] = 1.0
        >>> bucket.try_take()
        0.0
    """

    def __init__(
        self, *, capacity: float, refill_per_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        _positive("rate limit capacity", capacity)
        _positive("rate limit refill_per_s", refill_per_s)
        self.capacity = float(capacity)
        self.refill_per_s = float(refill_per_s)
        self._clock = clock
        self._tokens = self.capacity
        self._at = clock()

    @property
    def tokens(self) -> float:
        """Tokens available now."""
        self._refill()
        return self._tokens

    def try_take(self, tokens: float = 1.0) -> float:
        """Take ``tokens`` if the bucket holds them.

        Returns:
            0.0 when taken; otherwise the seconds until enough tokens will be there
            (nothing is taken).

        Raises:
            InvalidInputError: ``tokens`` is not positive or exceeds the capacity
                (it could never be granted).
        """
        _positive("tokens", tokens)
        if tokens > self.capacity:
            raise InvalidInputError(
                f"a request costing {tokens:g} tokens exceeds the bucket's capacity "
                f"{self.capacity:g} and could never pass; raise the capacity"
            )
        self._refill()
        if self._tokens >= tokens:
            self._tokens -= tokens
            return 0.0
        return (tokens - self._tokens) / self.refill_per_s

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(now - self._at, 0.0)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.refill_per_s)
        self._at = now


class RateLimiter:
    """Per-caller token buckets: each caller gets ``capacity`` burst and ``refill_per_s`` rate.

    Thread-safe.  Buckets of the least recently seen callers are dropped beyond
    ``max_callers`` (such a caller starts again with a full bucket), so memory
    stays bounded whatever the number of callers.

    Example:
        >>> limiter = RateLimiter(capacity=1, refill_per_s=0.5, clock=lambda: 0.0)
        >>> limiter.check("alice"), limiter.check("alice"), limiter.check("bob")
        (0.0, 2.0, 0.0)

    Args:
        capacity: the burst each caller may send at once.
        refill_per_s: the sustained requests per second per caller.
        max_callers: how many callers' buckets are kept.
        clock: a monotonic clock in seconds (inject one in tests).
    """

    def __init__(
        self,
        *,
        capacity: float,
        refill_per_s: float,
        max_callers: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _positive("rate limit capacity", capacity)
        _positive("rate limit refill_per_s", refill_per_s)
        _integer_at_least("max_callers", max_callers, 1)
        self.capacity = capacity
        self.refill_per_s = refill_per_s
        self.max_callers = max_callers
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()
        self.limited = 0

    def check(self, caller: str, tokens: float = 1.0) -> float:
        """Spend ``tokens`` of ``caller``'s budget if it has them.

        Returns:
            0.0 when allowed, else the seconds to wait (nothing is spent).
        """
        with self._lock:
            bucket = self._buckets.get(caller)
            if bucket is None:
                bucket = TokenBucket(
                    capacity=self.capacity, refill_per_s=self.refill_per_s, clock=self._clock
                )
                self._buckets[caller] = bucket
                while len(self._buckets) > self.max_callers:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(caller)
            wait = bucket.try_take(tokens)
            if wait > 0:
                self.limited += 1
            return wait

    def acquire(self, caller: str, tokens: float = 1.0) -> None:
        """Spend ``tokens`` of ``caller``'s budget or refuse the request.

        Raises:
            RateLimitedError: the caller is over its budget; ``retry_after_s`` says when.
        """
        wait = self.check(caller, tokens)
        if wait > 0:
            raise RateLimitedError(
                f"caller {caller!r} is over its rate limit of {self.refill_per_s:g} requests/s "
                f"(burst {self.capacity:g}); retry in {wait:.2f} s",
                retry_after_s=wait,
            )


@dataclass(frozen=True)
class AdmissionSnapshot:
    """The gate's counters, for status pages and metrics."""

    in_flight: int
    queued: int
    admitted: int
    rejected: int
    mean_service_s: float | None


class AdmissionController:
    """Bound the requests in flight and waiting; shed the rest at once with a retry hint.

    One per event loop (per gateway worker, or per variant); not thread-safe.
    Waiting requests are admitted first come, first served. With
    ``max_queue_wait_s``, a request whose expected wait (the queue ahead of it
    times the mean time a request holds a slot, over the slots) is longer than
    that is not queued but refused at once, which keeps the queue short for the
    requests that will get in; one that is queued and still gets no slot in
    that time is refused then.  (A client that ignores the retry hint and comes
    straight back is the gateway's :class:`EarlyRetryGuard`'s to hold.)  A
    waiter that is cancelled (its client went away) leaves the queue; a slot
    handed to it as it was cancelled passes to the next waiter.

    Example:
        >>> async def main() -> int:
        ...     gate = AdmissionController(max_in_flight=2, max_queued=10)
        ...     async with gate.admit():
        ...         return gate.snapshot().in_flight
        >>> asyncio.run(main())
        1

    Args:
        max_in_flight: requests running at once.
        max_queued: requests waiting for a slot (0: none wait).
        max_queue_wait_s: the longest a request waits before it is refused
            (None: until a slot frees).
        default_retry_after_s: the hint before any service time was measured.
        clock: a monotonic clock in seconds for service times (inject in tests).
    """

    def __init__(
        self,
        *,
        max_in_flight: int,
        max_queued: int,
        max_queue_wait_s: float | None = None,
        default_retry_after_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _integer_at_least("max_in_flight", max_in_flight, 1)
        _integer_at_least("max_queued", max_queued, 0)
        if max_queue_wait_s is not None:
            _positive("max_queue_wait_s", max_queue_wait_s)
        _positive("default_retry_after_s", default_retry_after_s)
        self.max_in_flight = max_in_flight
        self.max_queued = max_queued
        self.max_queue_wait_s = max_queue_wait_s
        self.default_retry_after_s = default_retry_after_s
        self._clock = clock
        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._admitted = 0
        self._rejected = 0
        self._service_s: float | None = None

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        """Hold a slot for the duration of the block.

        Raises:
            OverloadedError: every slot and queue place is taken, or the wait
                passed ``max_queue_wait_s``; ``retry_after_s`` is a hint.
        """
        await self._acquire()
        start = self._clock()
        try:
            yield
        finally:
            self._observe(self._clock() - start)
            self._release()

    def snapshot(self) -> AdmissionSnapshot:
        """Return the gate's counters."""
        return AdmissionSnapshot(
            self._in_flight, len(self._waiters), self._admitted, self._rejected, self._service_s
        )

    def retry_after_s(self) -> float:
        """Estimate when a refused request could get in: the queue's drain time, 0.05-60 s."""
        if self._service_s is None:
            return self.default_retry_after_s
        drain = self._service_s * (len(self._waiters) + 1) / self.max_in_flight
        return min(max(drain, 0.05), 60.0)

    async def _acquire(self) -> None:
        if self._in_flight < self.max_in_flight and not self._waiters:
            self._in_flight += 1
            self._admitted += 1
            return
        if len(self._waiters) >= self.max_queued:
            self._rejected += 1
            raise OverloadedError(
                f"the gateway is at capacity ({self._in_flight} requests running, "
                f"{len(self._waiters)} waiting); retry in {self.retry_after_s():.2f} s",
                retry_after_s=self.retry_after_s(),
            )
        limit = self.max_queue_wait_s
        if limit is not None and self._service_s is not None:
            expected = self._service_s * (len(self._waiters) + 1) / self.max_in_flight
            if expected > limit:
                # It would not get a slot in time: refuse it now rather than queue it, so
                # the queue stays short for those that will get in.
                self._rejected += 1
                raise OverloadedError(
                    f"the gateway is at capacity: a slot would take about {expected:.2f} s "
                    f"({len(self._waiters)} waiting), over the {limit:g} s limit; retry in "
                    f"{self.retry_after_s():.2f} s",
                    retry_after_s=self.retry_after_s(),
                )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.max_queue_wait_s):
                await waiter
        except BaseException as exc:
            self._abandon(waiter)
            if isinstance(exc, TimeoutError):
                self._rejected += 1
                raise OverloadedError(
                    f"no slot freed within {self.max_queue_wait_s:g} s ({self._in_flight} "
                    f"requests running); retry in {self.retry_after_s():.2f} s",
                    retry_after_s=self.retry_after_s(),
                ) from exc
            raise
        self._admitted += 1  # the slot was handed over by _release; in_flight already counts it

    def _abandon(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done() and not waiter.cancelled():
            # The slot was handed to us just as we gave up: pass it on.
            self._release()
            return
        with contextlib.suppress(ValueError):  # already taken off the queue by _release
            self._waiters.remove(waiter)

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # hand the slot over; in_flight is unchanged
                return
        self._in_flight -= 1

    def _observe(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        previous = self._service_s
        self._service_s = seconds if previous is None else 0.8 * previous + 0.2 * seconds


class EarlyRetryGuard:
    """Hold a connection's request that comes before the ``Retry-After`` it was given.

    Under overload a refusal costs a worker nearly as much as an answer, and a
    client that retries at once, ignoring ``Retry-After``, keeps its place in the
    crowd: the worker spends its time refusing it and every accepted request
    waits behind more clients.  After such a refusal (:class:`OverloadedError`,
    HTTP 503) the gateway has the guard note when the connection may come back:
    now plus the ``Retry-After`` it was sent, at most ``max_hold_s``.  A request
    that comes sooner is held until then and refused with
    :class:`EarlyRetryError` (``Retry-After: 0``: the wait is over), and the next
    goes through as usual.  A client that honours ``Retry-After`` is never held.

    Keyed by connection: the gateway uses the client's address and port and the
    caller's name, since HTTP/1.1 sends one request at a time on a connection and
    a proxy that pools connections may send several callers' requests on one.
    One per event loop; not thread-safe.  At most ``max_connections``
    connections are remembered (the oldest are forgotten).

    Example:
        >>> guard = EarlyRetryGuard(max_hold_s=1.0, clock=lambda: 0.0)
        >>> guard.refused(("10.0.0.7", 50412), retry_after_s=2.0)
        >>> guard.hold_s(("10.0.0.7", 50412)), guard.hold_s(("10.0.0.8", 40001))
        (1.0, 0.0)

    Args:
        max_hold_s: the longest a request is held (0: never hold).
        max_connections: how many refused connections are remembered.
        clock: a monotonic clock in seconds (inject one in tests).
    """

    def __init__(
        self,
        *,
        max_hold_s: float,
        max_connections: int = 65_536,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not _finite_number(max_hold_s) or max_hold_s < 0:
            raise InvalidInputError(f"max_hold_s must be a number >= 0, got {max_hold_s!r}")
        _integer_at_least("max_connections", max_connections, 1)
        self.max_hold_s = float(max_hold_s)
        self.max_connections = max_connections
        self._clock = clock
        self._not_before: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()
        self.held = 0

    def refused(self, connection: Hashable | None, *, retry_after_s: float) -> None:
        """Note that ``connection`` was told to come back after ``retry_after_s`` seconds."""
        if connection is None or self.max_hold_s <= 0:
            return
        wait = min(max(retry_after_s, 0.0), self.max_hold_s)
        self._not_before[connection] = (self._clock() + wait, wait)
        self._not_before.move_to_end(connection)
        while len(self._not_before) > self.max_connections:
            self._not_before.popitem(last=False)

    def hold_s(self, connection: Hashable | None) -> float:
        """Seconds a request on ``connection`` would be held now (0.0: none)."""
        if connection is None or not self._not_before:
            return 0.0
        noted = self._not_before.get(connection)
        return 0.0 if noted is None else max(noted[0] - self._clock(), 0.0)

    async def check(self, connection: Hashable | None) -> None:
        """Let a request through, or hold it until its connection may come back and refuse it.

        Raises:
            EarlyRetryError: the connection came back early; it was held until it
                may come back.
        """
        if connection is None or not self._not_before:
            return  # the common case: nobody was refused
        noted = self._not_before.pop(connection, None)
        if noted is None:
            return
        not_before, asked = noted
        early = not_before - self._clock()
        if early <= 0:
            return
        self.held += 1
        await asyncio.sleep(early)
        raise EarlyRetryError(
            f"this connection was asked to wait {asked:g} s before retrying and came back "
            f"{asked - early:.3f} s later; it was held until then and may retry now",
            retry_after_s=0.0,
        )
