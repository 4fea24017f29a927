"""Adaptive micro-batching: concurrent single-row requests share one model call.

``await batcher.submit(row)`` queues a row and waits for its output.  A
collector task takes the queued rows (up to ``max_batch_size``) and runs
``fn(rows)`` in a thread pool, so the event loop keeps accepting requests while
the model works; each caller gets its own output back.

Adaptive: when one row is waiting, it is dispatched at once (no added latency
at concurrency 1).  When several are waiting, the collector waits up to
``max_wait_ms`` for the batch to fill.  While ``max_concurrent_batches``
batches run, new rows queue up and form the next batch, so batch sizes grow
with load by themselves.

Inline calls: a thread hop costs more than a fast model's call (tens of
microseconds for a small ONNX model). With ``inline_below_ms`` set, a row that
arrives while the batcher is idle (nothing queued or running) is computed
directly on the event loop, as long as the recent calls of one request each
took less than that (an average over calls on either path that follows a slower
call at once and a faster one slowly): one slow call sends the next ones back to
the thread pool until the average falls again. Such a call cannot
be interrupted, which is why only proven-fast models are called this way.

Failure handling: an exception raised by ``fn`` is raised to every caller of
that batch; a caller that is cancelled (its client went away) is dropped from
its batch without disturbing the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from steward.core import (
    BackendUnavailableError,
    ConfigurationError,
    IntegrityError,
    InvalidInputError,
)

__all__ = ["BatchOutputError", "BatchStats", "BatchTimeoutError", "MicroBatcher"]

In = TypeVar("In")
Out = TypeVar("Out")


class BatchOutputError(IntegrityError):
    """The batch function returned a different number of outputs than it got rows."""


@dataclass(frozen=True)
class BatchStats:
    """What the batcher did so far.

    Attributes:
        batches: calls of the batch function.
        rows: rows sent to it.
        errors: calls that raised (every caller of the batch got the error).
        cancelled: callers that went away before their output was ready.
        queued: rows waiting now.
        sizes: batch size -> number of batches of that size.
        inline: batches of one row computed on the event loop (see ``inline_below_ms``).
    """

    batches: int
    rows: int
    errors: int
    cancelled: int
    queued: int
    sizes: dict[int, int] = field(default_factory=dict)
    inline: int = 0

    @property
    def mean_batch_size(self) -> float | None:
        """Rows per batch, or None before the first batch."""
        return self.rows / self.batches if self.batches else None


@dataclass
class _Item(Generic[In, Out]):
    row: In
    future: asyncio.Future[Out]


class BatchTimeoutError(TimeoutError):
    """A caller's ``timeout_s`` passed before its row's output was ready."""


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(BatchTimeoutError())


class MicroBatcher(Generic[In, Out]):
    """Group concurrent ``submit`` calls into batched calls of ``fn``.

    One batcher per model (variant) per worker; it binds to the event loop of
    its first ``submit``.

    Example:
        >>> def double(rows: list[int]) -> list[int]:
        ...     return [2 * r for r in rows]
        >>> async def main() -> list[int]:
        ...     batcher = MicroBatcher(double, max_batch_size=8, max_wait_ms=1.0)
        ...     try:
        ...         return list(await asyncio.gather(*(batcher.submit(i) for i in range(5))))
        ...     finally:
        ...         await batcher.close()
        >>> asyncio.run(main())
        [0, 2, 4, 6, 8]

    Args:
        fn: batch of rows -> one output per row, in order; it runs in a thread.
        max_batch_size: the most rows per call.
        max_wait_ms: how long a partial batch (of two or more rows) waits to fill.
        max_concurrent_batches: calls of ``fn`` running at once.
        executor: where ``fn`` runs (default: the batcher's own thread pool of
            ``max_concurrent_batches`` threads, shut down by :meth:`close`).
        name: for messages (e.g. the variant).
        inline_below_ms: call ``fn`` on the event loop for a row that finds the
            batcher idle while calls of one request average less than this (0: never).

    Raises:
        InvalidInputError: a setting out of range.
    """

    def __init__(
        self,
        fn: Callable[[list[In]], Sequence[Out]],
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 2.0,
        max_concurrent_batches: int = 1,
        executor: Executor | None = None,
        name: str = "model",
        inline_below_ms: float = 0.0,
    ) -> None:
        for label, value, low in (
            ("max_batch_size", max_batch_size, 1),
            ("max_concurrent_batches", max_concurrent_batches, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidInputError(f"{label} must be an integer >= {low}, got {value!r}")
        if not (isinstance(max_wait_ms, int | float) and 0 <= max_wait_ms <= 10_000):
            raise InvalidInputError(f"max_wait_ms must be in [0, 10000], got {max_wait_ms!r}")
        if not (isinstance(inline_below_ms, int | float) and 0 <= inline_below_ms <= 1_000):
            raise InvalidInputError(
                f"inline_below_ms must be in [0, 1000], got {inline_below_ms!r}"
            )
        self.fn = fn
        self.max_batch_size = max_batch_size
        self.max_wait_ms = float(max_wait_ms)
        self.max_concurrent_batches = max_concurrent_batches
        self.name = name
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(
            max_workers=max_concurrent_batches, thread_name_prefix=f"steward-batch-{name}"
        )
        self._queue: deque[_Item[In, Out]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        # asyncio primitives bind to a loop on first use, not here (Python >= 3.10).
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(max_concurrent_batches)
        self._collector: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._closing = False
        self._batches = 0
        self._rows = 0
        self._errors = 0
        self._cancelled = 0
        self._sizes: Counter[int] = Counter()
        self._inline_below_s = inline_below_ms / 1_000
        self._one_row_s: float | None = None  # moving average of one-request calls' wall time
        self._outstanding = 0  # rows submitted and not answered yet
        self._active = 0  # batches running in the pool
        self._inline = 0

    async def submit(self, row: In, *, timeout_s: float | None = None) -> Out:
        """Queue ``row`` and return its output once its batch has run.

        ``timeout_s`` bounds the wait, queue and model call together; at the
        deadline this caller gets :class:`BatchTimeoutError` and its row is dropped
        from its batch if the batch has not started (a model call already
        running in the thread pool finishes, and its output is dropped).

        Raises:
            BatchTimeoutError: ``timeout_s`` passed before the output was ready.
            InvalidInputError: ``timeout_s`` is not a positive, finite number.
            BackendUnavailableError: the batcher is closed.
            ConfigurationError: called from another event loop than the first call.
            BatchOutputError: ``fn`` returned the wrong number of outputs.
            Exception: whatever ``fn`` raised for this row's batch.
        """
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            raise ConfigurationError(
                f"the batcher of {self.name} runs on another event loop; create one batcher "
                "per event loop (per gateway worker)"
            )
        if self._closing:
            raise BackendUnavailableError(f"the batcher of {self.name} is closed")
        if timeout_s is not None and not (math.isfinite(timeout_s) and timeout_s > 0):
            raise InvalidInputError(
                f"a timeout must be a positive number of seconds, got {timeout_s!r}"
            )
        if (
            self._outstanding == 0
            and self._active == 0
            and self._one_row_s is not None
            and self._one_row_s < self._inline_below_s
        ):
            return self._call_inline(row, timeout_s)
        self._start(loop)
        self._outstanding += 1
        try:
            return await self._submit_queued(loop, row, timeout_s)
        finally:
            self._outstanding -= 1

    def _call_inline(self, row: In, timeout_s: float | None) -> Out:
        started = time.perf_counter()
        try:
            outputs = self._timed([row])
        except Exception:
            self._errors += 1
            raise
        finally:
            self._batches += 1
            self._rows += 1
            self._sizes[1] += 1
            self._inline += 1
        if len(outputs) != 1:
            raise BatchOutputError(
                f"{self.name} returned {len(outputs)} outputs for a batch of 1 row; a batch "
                "function must return one output per row, in order"
            )
        if timeout_s is not None and time.perf_counter() - started > timeout_s:
            raise BatchTimeoutError()
        return outputs[0]

    def _timed(self, rows: list[In]) -> Sequence[Out]:
        """Call ``fn`` (in whichever thread); fold a one-request call's time into the average."""
        started = time.perf_counter()
        try:
            return self.fn(rows)
        finally:
            if len(rows) == 1:
                took = time.perf_counter() - started
                last = self._one_row_s
                # Up at once, down slowly: one slow call is enough to leave the loop.
                self._one_row_s = took if last is None or took > last else 0.8 * last + 0.2 * took

    async def _submit_queued(
        self, loop: asyncio.AbstractEventLoop, row: In, timeout_s: float | None
    ) -> Out:
        future: asyncio.Future[Out] = loop.create_future()
        self._queue.append(_Item(row, future))
        self._wakeup.set()
        # A plain timer on the future: cheaper than asyncio.timeout, which cancels the task.
        timer = None if timeout_s is None else loop.call_later(timeout_s, _expire, future)
        try:
            return await future
        except asyncio.CancelledError:
            self._cancelled += 1
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def stats(self) -> BatchStats:
        """Return the counters so far."""
        return BatchStats(
            batches=self._batches,
            rows=self._rows,
            errors=self._errors,
            cancelled=self._cancelled,
            queued=len(self._queue),
            sizes=dict(sorted(self._sizes.items())),
            inline=self._inline,
        )

    async def close(self) -> None:
        """Stop accepting rows, finish the queued ones, and release the thread pool."""
        self._closing = True
        self._wakeup.set()
        if self._collector is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._collector
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        if self._own_executor:
            self._executor.shutdown(wait=False)

    # -- the collector ---------------------------------------------------------

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is not None:
            return
        self._loop = loop
        self._collector = loop.create_task(self._collect(), name=f"steward-batch-{self.name}")
        self._collector.add_done_callback(self._collector_done)

    async def _collect(self) -> None:
        wakeup, slots = self._wakeup, self._slots
        while True:
            await slots.acquire()
            while not self._queue:
                if self._closing:
                    slots.release()
                    return
                wakeup.clear()
                await wakeup.wait()
            batch = self._take(self.max_batch_size)
            if len(batch) > 1 and self.max_wait_ms > 0:
                await self._fill(batch)
            if not batch:
                slots.release()
                continue
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _fill(self, batch: list[_Item[In, Out]]) -> None:
        # Several rows are waiting, so there is concurrency: let the batch fill a little.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_ms / 1_000
        while len(batch) < self.max_batch_size and not self._closing:
            if not self._queue:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                self._wakeup.clear()
                try:
                    async with asyncio.timeout(remaining):
                        await self._wakeup.wait()
                except TimeoutError:
                    return
            batch.extend(self._take(self.max_batch_size - len(batch)))

    def _take(self, limit: int) -> list[_Item[In, Out]]:
        taken: list[_Item[In, Out]] = []
        while self._queue and len(taken) < limit:
            item = self._queue.popleft()
            if not item.future.done():  # skip callers cancelled while queued
                taken.append(item)
        return taken

    async def _run(self, batch: list[_Item[In, Out]]) -> None:
        try:
            live = [item for item in batch if not item.future.done()]
            if not live:
                return
            rows = [item.row for item in live]
            self._batches += 1
            self._rows += len(rows)
            self._sizes[len(rows)] += 1
            loop = asyncio.get_running_loop()
            self._active += 1
            try:
                try:
                    outputs = await loop.run_in_executor(self._executor, self._timed, rows)
                finally:
                    self._active -= 1
                if len(outputs) != len(rows):
                    raise BatchOutputError(
                        f"{self.name} returned {len(outputs)} outputs for a batch of {len(rows)} "
                        "rows; a batch function must return one output per row, in order"
                    )
            except Exception as exc:
                self._errors += 1
                for item in live:
                    if not item.future.done():
                        item.future.set_exception(exc)
                return
            for item, output in zip(live, outputs, strict=True):
                if not item.future.done():  # the caller may have gone away meanwhile
                    item.future.set_result(output)
        finally:
            self._slots.release()

    def _collector_done(self, task: asyncio.Task[None]) -> None:
        # The collector only ends on close; if it died, fail the waiting callers
        # instead of leaving them hanging.
        error: BaseException | None = None
        if task.cancelled():
            error = BackendUnavailableError(f"the batcher of {self.name} was cancelled")
        elif task.exception() is not None:
            error = BackendUnavailableError(
                f"the batcher of {self.name} stopped: {task.exception()!r}"
            )
        if error is None:
            return
        self._closing = True
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(error)

    def __repr__(self) -> str:
        return (
            f"MicroBatcher({self.name!r}, max_batch_size={self.max_batch_size}, "
            f"max_wait_ms={self.max_wait_ms:g})"
        )
