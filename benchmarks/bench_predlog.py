"""The prediction log: durable appends with group commit, against one fsync per record.

Every record is what the gateway logs for one request of the 30-feature fraud model
(inputs, features, two outputs, ids), about 1 KiB encoded. Each writer times each of
its own appends (the acknowledgement latency a request would add); the rate is all
records over the whole span.

- ``predlog.append.durable.64threads``: 64 threads append at once; steward's
  ``PredictionLog(mode="durable")`` shares one ``fdatasync`` among everything queued
  during the previous one. ``@fsync_per_record`` is the same load on the simplest
  durable log: a lock, one ``pwrite`` and one ``fdatasync`` per record (same encoding,
  same frames). Both run in the same repeat; the baseline stops after a record count
  or a few seconds, whichever comes first, and is compared as a rate.
- ``predlog.append_async.durable.64tasks``: the gateway's shape, 64 asyncio tasks on
  one event loop awaiting ``append_async``.
- ``predlog.append.durable.1thread``: one writer, one record at a time: the latency of
  a lone request is one disk flush.
- ``predlog.append.async.1thread``: ``mode="async"``: appends return at once, records
  are flushed every 200 ms (the time to ``close()`` is included).
- ``predlog.compact``: sealed segments of 100,000 records into Parquet partitions.
- ``predlog.query``: DuckDB over 100,000 compacted records plus 10,000 still in
  segments: a count, a group-by on two columns, and a ``json_extract`` filter.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks._harness import Context, Measurements, benchmark
from steward.serving._predlog import PredictionLog, PredictionRecord
from steward.serving._predlog._records import encode_record
from steward.serving._predlog._segment import encode_frame

THREADS = 64
_BASELINE_SECONDS = 4.0


def _record(i: int) -> PredictionRecord:
    rng = random.Random(i)  # distinct, incompressible-ish values, as real traffic has
    inputs = {f"f{j:02d}": round(rng.gauss(50, 20), 4) for j in range(30)}
    return PredictionRecord(
        request_id=f"{i:016x}",
        ts=datetime.now(UTC),
        deployment="fraud",
        revision=3,
        variant="champion" if i % 10 else "challenger",
        model_version="fraud/7",
        inputs=inputs,
        features={"txn_count_7d": i % 17, "avg_amount_30d": 41.5},
        outputs={"proba": [1 - (p := rng.random() / 5), p], "label": int(p > 0.15)},
        latency_ms=1.2,
        caller="svc-checkout",
    )


def _percentiles(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return p50 * 1000, p99 * 1000


class _FsyncPerRecord:
    """The baseline: a durable log without group commit."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
        self._offset = 0
        self._lock = threading.Lock()

    def append(self, record: PredictionRecord) -> None:
        frame = encode_frame(encode_record(record))
        with self._lock:
            os.pwrite(self._fd, frame, self._offset)
            self._offset += len(frame)
            os.fdatasync(self._fd)

    def close(self) -> None:
        os.close(self._fd)


def _hammer(append: object, total: int, deadline: float | None) -> tuple[int, float, list[float]]:
    """Append ``total`` records from THREADS threads; return (records, seconds, latencies)."""
    per_thread = total // THREADS
    latencies: list[list[float]] = [[] for _ in range(THREADS)]
    start_gate = threading.Barrier(THREADS + 1)

    def work(t: int) -> None:
        mine = latencies[t]
        start_gate.wait()
        for i in range(per_thread):
            record = _record(t * per_thread + i)
            began = time.perf_counter()
            append(record)  # type: ignore[operator]
            mine.append(time.perf_counter() - began)
            if deadline is not None and time.perf_counter() > deadline:
                return

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    start_gate.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    flat = [x for mine in latencies for x in mine]
    return len(flat), seconds, flat


@benchmark("predlog.append.durable.64threads", repeats=3, quick_repeats=1)
def append_durable_threads(ctx: Context) -> Measurements:
    """64 threads appending durably: group commit vs one fsync per record."""
    total = ctx.size(32_000, 3_200)
    log = PredictionLog(ctx.tmp / "log", worker_id="bench")
    try:
        records, seconds, latencies = _hammer(log.append, total, None)
        syncs = log.stats.batches
    finally:
        log.close()
    p50, p99 = _percentiles(latencies)

    baseline = _FsyncPerRecord(ctx.tmp / "baseline.seg")
    try:
        deadline = time.perf_counter() + (_BASELINE_SECONDS / 4 if ctx.quick else _BASELINE_SECONDS)
        base_records, base_seconds, base_latencies = _hammer(baseline.append, total, deadline)
    finally:
        baseline.close()
    base_p50, base_p99 = _percentiles(base_latencies)
    return {
        "records_per_s": (records / seconds, "records/s"),
        "records_per_s@fsync_per_record": (base_records / base_seconds, "records/s"),
        "ack_p50_ms": (p50, "ms"),
        "ack_p50_ms@fsync_per_record": (base_p50, "ms"),
        "ack_p99_ms": (p99, "ms"),
        "ack_p99_ms@fsync_per_record": (base_p99, "ms"),
        "records_per_sync": (records / max(syncs, 1), "records"),
        "records": (records, "records"),
    }


@benchmark("predlog.append_async.durable.64tasks", repeats=3, quick_repeats=1)
def append_async_tasks(ctx: Context) -> Measurements:
    """64 asyncio tasks on one loop awaiting durable append_async."""
    total = ctx.size(32_000, 3_200)
    per_task = total // THREADS
    log = PredictionLog(ctx.tmp / "log", worker_id="bench")
    latencies: list[float] = []

    async def task(t: int) -> None:
        for i in range(per_task):
            record = _record(t * per_task + i)
            began = time.perf_counter()
            await log.append_async(record)
            latencies.append(time.perf_counter() - began)

    async def main() -> float:
        began = time.perf_counter()
        await asyncio.gather(*(task(t) for t in range(THREADS)))
        return time.perf_counter() - began

    try:
        seconds = asyncio.run(main())
        syncs = log.stats.batches
    finally:
        log.close()
    p50, p99 = _percentiles(latencies)
    return {
        "records_per_s": (len(latencies) / seconds, "records/s"),
        "ack_p50_ms": (p50, "ms"),
        "ack_p99_ms": (p99, "ms"),
        "records_per_sync": (len(latencies) / max(syncs, 1), "records"),
    }


@benchmark("predlog.append.durable.1thread", repeats=3, quick_repeats=1)
def append_durable_one(ctx: Context) -> Measurements:
    """One thread appending durably, one record at a time (one disk flush each)."""
    total = ctx.size(1_000, 100)
    latencies = []
    with PredictionLog(ctx.tmp / "log", worker_id="bench") as log, ctx.timer() as t:
        for i in range(total):
            began = time.perf_counter()
            log.append(_record(i))
            latencies.append(time.perf_counter() - began)
    p50, p99 = _percentiles(latencies)
    return {
        "records_per_s": (total / t.seconds, "records/s"),
        "ack_p50_ms": (p50, "ms"),
        "ack_p99_ms": (p99, "ms"),
    }


@benchmark("predlog.append.async.1thread", repeats=3, quick_repeats=1)
def append_async_one(ctx: Context) -> Measurements:
    """One thread appending in async mode (buffered; flushed every 200 ms and at close)."""
    total = ctx.size(100_000, 10_000)
    records = [_record(i) for i in range(total)]
    latencies = []
    log = PredictionLog(ctx.tmp / "log", worker_id="bench", mode="async")
    with ctx.timer() as t:
        for record in records:
            began = time.perf_counter()
            log.append(record)
            latencies.append(time.perf_counter() - began)
        log.close()
    p50, p99 = _percentiles(latencies)
    return {
        "records_per_s": (total / t.seconds, "records/s"),
        "append_p50_us": (p50 * 1000, "us"),
        "append_p99_us": (p99 * 1000, "us"),
    }


def _filled(ctx: Context, compacted: int) -> PredictionLog:
    log = PredictionLog(
        ctx.tmp / "log", worker_id="bench", mode="async", segment_max_bytes=16 * 1024 * 1024
    )
    for i in range(compacted):
        log.append(_record(i))
    log.rotate()
    return log


@benchmark("predlog.compact", repeats=3, quick_repeats=1)
def compact(ctx: Context) -> Measurements:
    """Sealed segments of 100,000 records into Parquet partitions."""
    total = ctx.size(100_000, 10_000)
    log = _filled(ctx, total)
    try:
        with ctx.timer() as t:
            report = log.compact()
    finally:
        log.close()
    parquet = sum(p.stat().st_size for p in (ctx.tmp / "log" / "parquet").rglob("*.parquet"))
    return {
        "records_per_s": (report.records / t.seconds, "records/s"),
        "seconds": (t.seconds, "s"),
        "parquet_bytes_per_record": (parquet / max(report.records, 1), "bytes"),
    }


@benchmark("predlog.query", repeats=3, quick_repeats=1)
def query(ctx: Context) -> Measurements:
    """DuckDB over 100,000 compacted records plus 10,000 in segments."""
    compacted, fresh = ctx.size(100_000, 10_000), ctx.size(10_000, 1_000)
    log = _filled(ctx, compacted)
    try:
        log.compact()
        for i in range(compacted, compacted + fresh):
            log.append(_record(i))
        log.flush()
        timings = {}
        for name, sql in {
            "count": "SELECT count(*) FROM predictions",
            "group_by": "SELECT variant, model_version, count(*), avg(latency_ms) "
            "FROM predictions GROUP BY 1, 2",
            "json_filter": "SELECT count(*) FROM predictions "
            "WHERE CAST(json_extract(inputs, '$.f07') AS DOUBLE) > 100",
        }.items():
            with ctx.timer() as t:
                log.query(sql)
            timings[name] = t.seconds
    finally:
        log.close()
    return {f"{name}_s": (seconds, "s") for name, seconds in timings.items()}
