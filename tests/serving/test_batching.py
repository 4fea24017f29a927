"""Micro-batching: grouping, routing results back, errors, cancellation, adaptivity, stats."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steward.core import BackendUnavailableError, ConfigurationError, InvalidInputError
from steward.serving._batching import BatchOutputError, BatchTimeoutError, MicroBatcher


class GatedModel:
    """A batch function that records its batches and can be held inside a call."""

    def __init__(self, *, hold_first: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        if not hold_first:
            self.gate.set()

    def __call__(self, rows: list[int]) -> list[int]:
        self.batches.append(list(rows))
        self.entered.set()
        self.gate.wait(timeout=30)
        return [row * 10 for row in rows]


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def _run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(main())  # type: ignore[arg-type]


def test_batcher_groups_concurrent_requests_and_routes_results() -> None:
    async def main() -> None:
        model = GatedModel(hold_first=True)
        batcher = MicroBatcher(model, max_batch_size=64, max_wait_ms=0)
        first = asyncio.create_task(batcher.submit(0))
        await asyncio.to_thread(model.entered.wait, 30)
        # The model is busy with row 0: the next rows queue up and form one batch.
        rest = [asyncio.create_task(batcher.submit(i)) for i in range(1, 21)]
        await _settle()
        model.gate.set()
        assert await first == 0
        assert await asyncio.gather(*rest) == [i * 10 for i in range(1, 21)]
        assert model.batches == [[0], list(range(1, 21))]
        stats = batcher.stats()
        assert (stats.batches, stats.rows, stats.errors) == (2, 21, 0)
        assert stats.sizes == {1: 1, 20: 1}
        assert stats.mean_batch_size == 10.5
        await batcher.close()

    _run(main)


def test_batcher_respects_max_batch_size() -> None:
    async def main() -> None:
        model = GatedModel(hold_first=True)
        batcher = MicroBatcher(model, max_batch_size=4, max_wait_ms=0)
        first = asyncio.create_task(batcher.submit(0))
        await asyncio.to_thread(model.entered.wait, 30)
        rest = [asyncio.create_task(batcher.submit(i)) for i in range(1, 11)]
        await _settle()
        model.gate.set()
        await asyncio.gather(first, *rest)
        assert [len(b) for b in model.batches] == [1, 4, 4, 2]
        assert sorted(r for b in model.batches for r in b) == list(range(11))
        await batcher.close()

    _run(main)


def test_batcher_single_request_is_dispatched_without_waiting() -> None:
    async def main() -> None:
        model = GatedModel()
        # A 10-second fill wait would show; a lone request must not wait for it.
        batcher = MicroBatcher(model, max_batch_size=32, max_wait_ms=10_000)
        filled: list[int] = []
        original = batcher._fill

        async def spy(batch: list[object]) -> None:
            filled.append(len(batch))
            await original(batch)  # type: ignore[arg-type]

        batcher._fill = spy  # type: ignore[method-assign]
        for i in range(20):
            assert await asyncio.wait_for(batcher.submit(i), timeout=5) == i * 10
        assert filled == []
        assert batcher.stats().sizes == {1: 20}
        await batcher.close()

    _run(main)


def test_batcher_waits_to_fill_when_several_are_waiting() -> None:
    async def main() -> None:
        model = GatedModel()
        batcher = MicroBatcher(model, max_batch_size=3, max_wait_ms=10_000)
        # Two rows arrive together: the batch waits (up to 10 s) for a third,
        # which fills it and sends it at once.
        a = asyncio.create_task(batcher.submit(1))
        b = asyncio.create_task(batcher.submit(2))
        await _settle()
        assert model.batches == []
        c = asyncio.create_task(batcher.submit(3))
        assert await asyncio.wait_for(asyncio.gather(a, b, c), timeout=5) == [10, 20, 30]
        assert model.batches == [[1, 2, 3]]
        await batcher.close()

    _run(main)


def test_batcher_exception_reaches_every_caller_of_the_batch() -> None:
    async def main() -> None:
        calls: list[list[int]] = []

        def broken(rows: list[int]) -> list[int]:
            calls.append(rows)
            if 13 in rows:
                raise ValueError("model cannot score 13")
            return rows

        batcher = MicroBatcher(broken, max_batch_size=8, max_wait_ms=50)
        results = await asyncio.gather(
            *(batcher.submit(i) for i in (11, 12, 13)), return_exceptions=True
        )
        assert len(calls) == 1
        assert all(isinstance(r, ValueError) for r in results)
        assert await batcher.submit(5) == 5  # the batcher survives the failure
        assert batcher.stats().errors == 1
        await batcher.close()

    _run(main)


def test_batcher_wrong_output_count_is_an_error_for_the_batch() -> None:
    async def main() -> None:
        batcher: MicroBatcher[int, int] = MicroBatcher(lambda rows: rows[:-1], max_wait_ms=50)
        results = await asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True)
        assert all(isinstance(r, BatchOutputError) for r in results)
        assert "returned 1 outputs for a batch of 2 rows" in str(results[0])
        await batcher.close()

    _run(main)


def test_batcher_cancelled_caller_does_not_break_the_others() -> None:
    async def main() -> None:
        model = GatedModel(hold_first=True)
        batcher = MicroBatcher(model, max_batch_size=16, max_wait_ms=0)
        first = asyncio.create_task(batcher.submit(0))
        await asyncio.to_thread(model.entered.wait, 30)
        queued = [asyncio.create_task(batcher.submit(i)) for i in range(1, 6)]
        await _settle()
        queued[2].cancel()  # row 3 leaves while queued: it is never computed
        first.cancel()  # row 0 leaves while its batch runs: its result is dropped
        await _settle()
        model.gate.set()
        done = await asyncio.gather(*queued, return_exceptions=True)
        assert isinstance(done[2], asyncio.CancelledError)
        assert [done[i] for i in (0, 1, 3, 4)] == [10, 20, 40, 50]
        assert model.batches == [[0], [1, 2, 4, 5]]
        assert batcher.stats().cancelled == 2
        assert await batcher.submit(7) == 70
        await batcher.close()

    _run(main)


def test_batcher_timeout_fails_only_the_late_callers_and_skips_their_queued_rows() -> None:
    async def main() -> None:
        model = GatedModel(hold_first=True)
        batcher = MicroBatcher(model, max_batch_size=16, max_wait_ms=0)
        first = asyncio.create_task(batcher.submit(0, timeout_s=0.05))  # its call hangs
        await asyncio.to_thread(model.entered.wait, 30)
        late = asyncio.create_task(batcher.submit(1, timeout_s=0.05))  # queued behind it
        patient = asyncio.create_task(batcher.submit(2, timeout_s=30))
        for task in (first, late):
            with pytest.raises(BatchTimeoutError):
                await task
        model.gate.set()
        assert await patient == 20
        assert model.batches == [[0], [2]]  # the timed-out queued row never ran
        assert await batcher.submit(3, timeout_s=30) == 30  # no timer left behind fires
        await asyncio.sleep(0.1)
        await batcher.close()

    _run(main)


def test_batcher_calls_a_fast_model_inline_only_when_idle() -> None:
    threads: list[str] = []

    def model(rows: list[int]) -> list[int]:
        threads.append(threading.current_thread().name)
        return [row * 10 for row in rows]

    async def main() -> None:
        batcher = MicroBatcher(model, max_batch_size=8, max_wait_ms=0, inline_below_ms=50)
        assert await batcher.submit(1) == 10  # no measurement yet: the pool
        assert await batcher.submit(2) == 20  # idle and fast: inline
        assert threads[0] != threads[1] == threading.current_thread().name
        together = await asyncio.gather(*(batcher.submit(i) for i in range(3, 9)))
        assert together == [30, 40, 50, 60, 70, 80]
        stats = batcher.stats()
        assert stats.rows == 8 and stats.inline >= 1
        assert stats.inline < 8  # concurrent rows were batched, not called inline
        await batcher.close()

    _run(main)


def test_batcher_sends_a_slow_model_back_to_the_pool() -> None:
    delays = iter([0.0, 0.0, 0.3, 0.0, 0.0])
    threads: list[str] = []

    def model(rows: list[int]) -> list[int]:
        threads.append(threading.current_thread().name)
        time.sleep(next(delays))
        return rows

    async def main() -> None:
        batcher = MicroBatcher(model, max_batch_size=8, max_wait_ms=0, inline_below_ms=100)
        for i in range(3):  # pool, inline, inline (slow: 300 ms)
            await batcher.submit(i)
        loop_thread = threading.current_thread().name
        assert threads[1] == threads[2] == loop_thread
        await batcher.submit(3)  # the average is now over 100 ms: the pool again
        assert threads[3] != loop_thread
        await batcher.close()

    _run(main)


def test_batcher_inline_call_past_its_deadline_is_a_timeout_and_errors_reach_the_caller() -> None:
    calls = iter([0.0, 0.0, 0.05])

    def model(rows: list[int]) -> list[int]:
        delay = next(calls, None)
        if delay is None:
            raise ValueError("model broke")
        time.sleep(delay)
        return rows

    async def main() -> None:
        batcher = MicroBatcher(model, max_batch_size=8, max_wait_ms=0, inline_below_ms=100)
        await batcher.submit(0)
        await batcher.submit(1)
        with pytest.raises(BatchTimeoutError):
            await batcher.submit(2, timeout_s=0.01)  # inline, and took 50 ms
        with pytest.raises(ValueError, match="model broke"):
            await batcher.submit(3)
        assert batcher.stats().errors == 1
        await batcher.close()

    _run(main)


@pytest.mark.parametrize("timeout", [0.0, -1.0, float("nan"), float("inf")])
def test_batcher_rejects_bad_timeouts(timeout: float) -> None:
    async def main() -> None:
        batcher = MicroBatcher(GatedModel(), max_batch_size=4, max_wait_ms=0)
        try:
            with pytest.raises(InvalidInputError, match="timeout must be a positive number"):
                await batcher.submit(1, timeout_s=timeout)
            assert batcher.stats().rows == 0
        finally:
            await batcher.close()

    _run(main)


def test_batcher_a_models_own_timeout_error_is_not_a_deadline() -> None:
    def model(rows: list[int]) -> list[int]:
        raise TimeoutError("the model's own remote call timed out")

    async def main() -> None:
        batcher = MicroBatcher(model, max_batch_size=4, max_wait_ms=0)
        with pytest.raises(TimeoutError) as info:
            await batcher.submit(1, timeout_s=30)
        assert not isinstance(info.value, BatchTimeoutError)
        await batcher.close()

    _run(main)


@given(st.lists(st.integers(-1_000, 1_000), min_size=1, max_size=60), st.integers(1, 9))
@settings(max_examples=40, deadline=None)
def test_batcher_every_caller_gets_its_own_output(rows: list[int], size: int) -> None:
    async def main() -> None:
        batcher: MicroBatcher[int, str] = MicroBatcher(
            lambda batch: [f"out-{r}" for r in batch], max_batch_size=size, max_wait_ms=1
        )
        outputs = await asyncio.gather(*(batcher.submit(r) for r in rows))
        assert outputs == [f"out-{r}" for r in rows]
        stats = batcher.stats()
        assert stats.rows == len(rows)
        assert max(stats.sizes) <= size
        await batcher.close()

    _run(main)


def test_batcher_close_finishes_queued_rows_then_refuses() -> None:
    async def main() -> None:
        model = GatedModel(hold_first=True)
        batcher = MicroBatcher(model, max_batch_size=2, max_wait_ms=0)
        tasks = [asyncio.create_task(batcher.submit(i)) for i in range(5)]
        await asyncio.to_thread(model.entered.wait, 30)
        closing = asyncio.create_task(batcher.close())
        await _settle()
        model.gate.set()
        await closing
        assert await asyncio.gather(*tasks) == [0, 10, 20, 30, 40]
        with pytest.raises(BackendUnavailableError, match="batcher of model is closed"):
            await batcher.submit(9)

    _run(main)


def test_batcher_is_bound_to_one_event_loop() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(lambda rows: rows, name="fraud/3")

    async def once() -> int:
        return await batcher.submit(1)

    assert asyncio.run(once()) == 1
    with pytest.raises(ConfigurationError, match="batcher of fraud/3 runs on another event loop"):
        asyncio.run(once())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"max_concurrent_batches": 0}, "max_concurrent_batches"),
        ({"max_wait_ms": -1}, "max_wait_ms"),
        ({"max_wait_ms": float("nan")}, "max_wait_ms"),
    ],
)
def test_batcher_rejects_bad_settings(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        MicroBatcher(lambda rows: rows, **kwargs)  # type: ignore[arg-type]


def test_batcher_runs_batches_concurrently_when_allowed() -> None:
    async def main() -> None:
        both_inside = threading.Barrier(2, timeout=30)

        def model(rows: list[int]) -> list[int]:
            both_inside.wait()  # deadlocks (then times out) unless two calls overlap
            return rows

        batcher = MicroBatcher(model, max_batch_size=1, max_concurrent_batches=2, max_wait_ms=0)
        assert await asyncio.gather(batcher.submit(1), batcher.submit(2)) == [1, 2]
        await batcher.close()

    _run(main)
