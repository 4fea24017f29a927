"""Token buckets, per-caller rate limits and the admission gate (bounded in flight + queue)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steward.core import InvalidInputError
from steward.serving._limits import (
    AdmissionController,
    EarlyRetryGuard,
    RateLimiter,
    TokenBucket,
)
from steward.serving._resilience import EarlyRetryError, OverloadedError, RateLimitedError


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# -- token bucket and rate limiter ----------------------------------------------


def test_token_bucket_burst_then_refill_with_retry_after() -> None:
    ticks = Ticks()
    bucket = TokenBucket(capacity=3, refill_per_s=2, clock=ticks)
    assert [bucket.try_take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.try_take() == pytest.approx(0.5)
    ticks.now = 0.25
    assert bucket.try_take() == pytest.approx(0.25)  # half a token there, nothing taken
    ticks.now = 0.5
    assert bucket.try_take() == 0.0
    ticks.now = 100.0
    assert bucket.tokens == 3.0  # never above capacity


def test_token_bucket_rejects_impossible_requests() -> None:
    bucket = TokenBucket(capacity=2, refill_per_s=1)
    with pytest.raises(InvalidInputError, match="exceeds the bucket's capacity 2"):
        bucket.try_take(3)
    with pytest.raises(InvalidInputError, match="tokens must be a positive number"):
        bucket.try_take(0)


@given(
    st.lists(st.tuples(st.floats(0, 2), st.floats(0.1, 3)), max_size=60),
    st.floats(1, 10),
    st.floats(0.1, 10),
)
@settings(max_examples=200)
def test_token_bucket_never_grants_more_than_budget(
    steps: list[tuple[float, float]], capacity: float, rate: float
) -> None:
    ticks = Ticks()
    bucket = TokenBucket(capacity=capacity, refill_per_s=rate, clock=ticks)
    granted = 0.0
    for dt, cost in steps:
        ticks.now += dt
        cost = min(cost, capacity)
        wait = bucket.try_take(cost)
        assert wait >= 0
        if wait == 0:
            granted += cost
        assert 0 <= bucket.tokens <= capacity
    assert granted <= capacity + rate * ticks.now + 1e-9


def test_rate_limiter_is_per_caller() -> None:
    ticks = Ticks()
    limiter = RateLimiter(capacity=2, refill_per_s=1, clock=ticks)
    limiter.acquire("alice")
    limiter.acquire("alice")
    with pytest.raises(RateLimitedError, match="caller 'alice' is over its rate limit") as caught:
        limiter.acquire("alice")
    assert caught.value.retry_after_s == pytest.approx(1.0)
    limiter.acquire("bob")
    ticks.now = 1.0
    limiter.acquire("alice")
    assert limiter.limited == 1


def test_rate_limiter_bounds_the_callers_it_remembers() -> None:
    limiter = RateLimiter(capacity=1, refill_per_s=0.001, max_callers=2, clock=lambda: 0.0)
    limiter.acquire("a")
    limiter.acquire("b")
    assert limiter.check("a") > 0  # a is now the most recent
    limiter.acquire("c")  # evicts b, the least recently seen
    assert limiter.check("a") > 0
    assert limiter.check("b") == 0.0  # forgotten: a fresh bucket


@pytest.mark.parametrize(
    "kwargs",
    [
        {"capacity": 0, "refill_per_s": 1},
        {"capacity": 1, "refill_per_s": float("nan")},
        {"capacity": 1, "refill_per_s": 1, "max_callers": 0},
    ],
)
def test_rate_limiter_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidInputError, match=r"must be a positive number|must be an integer"):
        RateLimiter(**kwargs)  # type: ignore[arg-type]


# -- admission controller -------------------------------------------------------


async def _hold(
    gate: AdmissionController, release: asyncio.Event, log: list[str], name: str
) -> None:
    async with gate.admit():
        log.append(f"in:{name}")
        await release.wait()
    log.append(f"out:{name}")


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_admission_sheds_beyond_in_flight_plus_queue() -> None:
    async def main() -> None:
        gate = AdmissionController(max_in_flight=2, max_queued=1)
        release, log = asyncio.Event(), []
        tasks = [asyncio.create_task(_hold(gate, release, log, str(i))) for i in range(3)]
        await _settle()
        assert log == ["in:0", "in:1"]
        snap = gate.snapshot()
        assert (snap.in_flight, snap.queued) == (2, 1)
        with pytest.raises(OverloadedError, match="2 requests running, 1 waiting") as caught:
            async with gate.admit():
                pass
        assert caught.value.retry_after_s == 1.0  # no service time measured yet: the default
        release.set()
        await asyncio.gather(*tasks)
        assert sorted(log) == sorted(["in:0", "in:1", "in:2", "out:0", "out:1", "out:2"])
        snap = gate.snapshot()
        assert (snap.in_flight, snap.queued, snap.admitted, snap.rejected) == (0, 0, 3, 1)

    asyncio.run(main())


def test_admission_serves_waiters_first_come_first_served() -> None:
    async def main() -> None:
        gate = AdmissionController(max_in_flight=1, max_queued=10)
        releases = [asyncio.Event() for _ in range(4)]
        log: list[str] = []
        tasks = []
        for i in range(4):
            tasks.append(asyncio.create_task(_hold(gate, releases[i], log, str(i))))
            await _settle()
        for event in releases:
            event.set()
            await _settle()
        await asyncio.gather(*tasks)
        assert [e for e in log if e.startswith("in")] == ["in:0", "in:1", "in:2", "in:3"]

    asyncio.run(main())


def test_admission_cancelled_waiter_leaves_the_queue() -> None:
    async def main() -> None:
        gate = AdmissionController(max_in_flight=1, max_queued=2)
        release, log = asyncio.Event(), []
        first = asyncio.create_task(_hold(gate, release, log, "a"))
        await _settle()
        waiting = asyncio.create_task(_hold(gate, release, log, "b"))
        behind = asyncio.create_task(_hold(gate, release, log, "c"))
        await _settle()
        waiting.cancel()
        await _settle()
        assert gate.snapshot().queued == 1
        release.set()
        await asyncio.gather(first, behind)
        assert waiting.cancelled()
        assert "in:b" not in log and "in:c" in log
        assert gate.snapshot().in_flight == 0

    asyncio.run(main())


def test_admission_slot_handed_to_a_cancelled_waiter_passes_on() -> None:
    async def main() -> None:
        gate = AdmissionController(max_in_flight=1, max_queued=2)
        release, log = asyncio.Event(), []
        holder = gate.admit()
        await holder.__aenter__()
        second = asyncio.create_task(_hold(gate, asyncio.Event(), log, "b"))
        third = asyncio.create_task(_hold(gate, release, log, "c"))
        await _settle()
        assert gate.snapshot().queued == 2
        # Release hands the slot to "b" and, before "b" runs, "b" is cancelled:
        # no await in between, so the slot must pass on to "c".
        await holder.__aexit__(None, None, None)
        second.cancel()
        release.set()
        await third
        with pytest.raises(asyncio.CancelledError):
            await second
        assert "in:b" not in log and "in:c" in log
        assert gate.snapshot().in_flight == 0 and gate.snapshot().queued == 0

    asyncio.run(main())


def test_admission_queue_wait_limit() -> None:
    async def main() -> None:
        gate = AdmissionController(max_in_flight=1, max_queued=5, max_queue_wait_s=0.01)
        release, log = asyncio.Event(), []
        holder = asyncio.create_task(_hold(gate, release, log, "a"))
        await _settle()
        with pytest.raises(OverloadedError, match=r"no slot freed within 0\.01 s"):
            async with gate.admit():
                pass
        assert gate.snapshot().queued == 0
        release.set()
        await holder
        assert gate.snapshot().in_flight == 0

    asyncio.run(main())


def test_admission_refuses_without_queueing_a_request_that_would_wait_too_long() -> None:
    async def main() -> None:
        ticks = Ticks()
        gate = AdmissionController(
            max_in_flight=1, max_queued=10, max_queue_wait_s=5.0, clock=ticks
        )
        async with gate.admit():
            ticks.now += 4.0  # a request holds the slot 4 s
        release, log = asyncio.Event(), []
        first = asyncio.create_task(_hold(gate, release, log, "a"))
        await _settle()
        second = asyncio.create_task(_hold(gate, release, log, "b"))  # 4 s ahead: queued
        await _settle()
        assert gate.snapshot().queued == 1
        with pytest.raises(OverloadedError, match=r"about 8\.00 s \(1 waiting\)"):
            async with gate.admit():  # 8 s ahead, over the 5 s limit
                pass
        assert log == ["in:a"]  # refused at once, while the slot was still held
        assert gate.snapshot().queued == 1  # and not queued
        release.set()
        await asyncio.gather(first, second)
        assert log == ["in:a", "out:a", "in:b", "out:b"]  # the queued one got in
        snap = gate.snapshot()
        assert snap.rejected == 1 and snap.queued == 0 and snap.in_flight == 0

    asyncio.run(main())


def test_admission_retry_hint_follows_service_time() -> None:
    async def main() -> None:
        ticks = Ticks()
        gate = AdmissionController(max_in_flight=2, max_queued=0, clock=ticks)
        async with gate.admit():
            ticks.now += 0.4  # one request took 0.4 s
        assert gate.snapshot().mean_service_s == pytest.approx(0.4)
        assert gate.retry_after_s() == pytest.approx(0.2)  # 0.4 s / 2 slots
        release, log = asyncio.Event(), []
        tasks = [asyncio.create_task(_hold(gate, release, log, str(i))) for i in range(2)]
        await _settle()
        with pytest.raises(OverloadedError) as caught:
            async with gate.admit():
                pass
        assert caught.value.retry_after_s == pytest.approx(0.2)
        release.set()
        await asyncio.gather(*tasks)

    asyncio.run(main())


def test_admission_exception_inside_releases_the_slot() -> None:
    async def main() -> None:
        gate = AdmissionController(max_in_flight=1, max_queued=0)
        with pytest.raises(RuntimeError):
            async with gate.admit():
                raise RuntimeError("model failed")
        async with gate.admit():
            assert gate.snapshot().in_flight == 1

    asyncio.run(main())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_in_flight": 0, "max_queued": 1}, "max_in_flight must be an integer >= 1"),
        ({"max_in_flight": True, "max_queued": 1}, "max_in_flight must be an integer >= 1"),
        ({"max_in_flight": 1, "max_queued": -1}, "max_queued must be an integer >= 0"),
        ({"max_in_flight": 1, "max_queued": 1.5}, "max_queued must be an integer >= 0"),
        ({"max_in_flight": 1, "max_queued": 1, "max_queue_wait_s": 0}, "max_queue_wait_s"),
    ],
)
def test_admission_rejects_bad_settings(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        AdmissionController(**kwargs)  # type: ignore[arg-type]


# -- early-retry guard ----------------------------------------------------------


def test_early_retry_is_held_until_its_retry_after_then_refused_once() -> None:
    async def main() -> None:
        ticks = Ticks()
        guard = EarlyRetryGuard(max_hold_s=1.0, clock=ticks)
        guard.refused(("10.0.0.7", 50412, "alice"), retry_after_s=0.03)
        assert guard.hold_s(("10.0.0.7", 50412, "alice")) == pytest.approx(0.03)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(EarlyRetryError, match=r"asked to wait 0\.03 s") as caught:
            await guard.check(("10.0.0.7", 50412, "alice"))
        assert loop.time() - started >= 0.025  # held until it may come back
        assert caught.value.retry_after_header == "0"
        assert guard.held == 1
        await guard.check(("10.0.0.7", 50412, "alice"))  # the next one goes through
        assert guard.hold_s(("10.0.0.7", 50412, "alice")) == 0.0

    asyncio.run(main())


def test_early_retry_guard_lets_a_client_that_waited_through() -> None:
    async def main() -> None:
        ticks = Ticks()
        guard = EarlyRetryGuard(max_hold_s=1.0, clock=ticks)
        guard.refused("conn", retry_after_s=0.2)
        ticks.now += 0.2  # it waited as asked
        await guard.check("conn")
        assert guard.held == 0

    asyncio.run(main())


def test_early_retry_guard_holds_only_the_refused_connection() -> None:
    async def main() -> None:
        guard = EarlyRetryGuard(max_hold_s=1.0, clock=Ticks())
        guard.refused(("10.0.0.7", 50412, "alice"), retry_after_s=5.0)
        await guard.check(("10.0.0.7", 50412, "bob"))  # another caller on a pooled connection
        await guard.check(("10.0.0.7", 50413, "alice"))  # another connection
        await guard.check(None)  # no client address: nothing to key on
        guard.refused(None, retry_after_s=5.0)
        assert guard.held == 0
        assert guard.hold_s(("10.0.0.7", 50412, "alice")) == 1.0  # capped at max_hold_s

    asyncio.run(main())


def test_early_retry_guard_forgets_the_oldest_connections_past_its_bound() -> None:
    guard = EarlyRetryGuard(max_hold_s=1.0, max_connections=2, clock=Ticks())
    for connection in ("a", "b", "c"):
        guard.refused(connection, retry_after_s=0.5)
    assert [guard.hold_s(c) for c in ("a", "b", "c")] == [0.0, 0.5, 0.5]
    guard.refused("b", retry_after_s=0.5)  # refused again: now the newest
    guard.refused("d", retry_after_s=0.5)
    assert [guard.hold_s(c) for c in ("b", "c", "d")] == [0.5, 0.0, 0.5]


def test_early_retry_guard_with_no_hold_never_holds() -> None:
    async def main() -> None:
        guard = EarlyRetryGuard(max_hold_s=0, clock=Ticks())
        guard.refused("conn", retry_after_s=1.0)
        assert guard.hold_s("conn") == 0.0
        await guard.check("conn")
        assert guard.held == 0

    asyncio.run(main())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_hold_s": -1}, "max_hold_s must be a number >= 0"),
        ({"max_hold_s": float("nan")}, "max_hold_s must be a number >= 0"),
        ({"max_hold_s": True}, "max_hold_s must be a number >= 0"),
        ({"max_hold_s": "1"}, "max_hold_s must be a number >= 0"),
        ({"max_hold_s": 1, "max_connections": 0}, "max_connections must be an integer >= 1"),
        ({"max_hold_s": 1, "max_connections": 2.5}, "max_connections must be an integer >= 1"),
    ],
)
def test_early_retry_guard_rejects_bad_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        EarlyRetryGuard(**kwargs)  # type: ignore[arg-type]
