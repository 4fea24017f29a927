"""The gateway's per-request primitives: routing, bandit choice, cache, admission, micro-batching.

Each one runs on every request, so its cost is what it adds to the gateway's
latency floor.  The batching benchmarks use a stand-in model whose call costs a
fixed 1 ms plus 10 µs per row in a thread (the shape of scikit-learn's
``predict_proba`` on a HistGradientBoosting model: ~1 ms for 1 row), and compare
64 concurrent clients with and without the batcher.
"""

from __future__ import annotations

import asyncio
import random
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from benchmarks._harness import Context, Measurements, benchmark
from steward.serving._bandit import ThompsonSampling
from steward.serving._bandit_store import ArmStats, SqlBanditStateStore
from steward.serving._batching import MicroBatcher
from steward.serving._cache import ResponseCache
from steward.serving._limits import AdmissionController
from steward.serving._routing import Router
from steward.serving._routing_spec import RoutingSpec, StickyKey, Variant
from steward.store import Database

_VARIANTS = (Variant("champion", "fraud/7", weight=90), Variant("challenger", "fraud/8", weight=10))


def _per_call(n: int, seconds: float) -> Measurements:
    return {"us_per_call": (seconds / n * 1e6, "us"), "calls_per_s": (n / seconds, "calls/s")}


@benchmark("serving.route.weighted", group="serving", repeats=3, quick_repeats=1)
def route_weighted(ctx: Context) -> Measurements:
    """Router.route on a 90/10 weighted split with one shadow."""
    spec = RoutingSpec(variants=(*_VARIANTS, Variant("next", "fraud/9", role="shadow")))
    router = Router(spec, rng=random.Random(0))
    n = ctx.size(200_000, 20_000)
    headers = {"content-type": "application/json", "authorization": "Bearer x"}
    with ctx.timer() as t:
        for _ in range(n):
            router.route(headers)
    return _per_call(n, t.seconds)


@benchmark("serving.route.sticky", group="serving", repeats=3, quick_repeats=1)
def route_sticky(ctx: Context) -> Measurements:
    """Router.route hashing a customer id from the record (keyed BLAKE2b)."""
    spec = RoutingSpec(
        variants=_VARIANTS, strategy="sticky", sticky_key=StickyKey("input", "customer_id")
    )
    router = Router(spec)
    n = ctx.size(200_000, 20_000)
    records = [{"customer_id": i, "amount": 1.0} for i in range(1_000)]
    with ctx.timer() as t:
        for i in range(n):
            router.route({}, records[i % 1_000])
    return _per_call(n, t.seconds)


@benchmark("serving.bandit.choose", group="serving", repeats=3, quick_repeats=1)
def bandit_choose(ctx: Context) -> Measurements:
    """ThompsonSampling.choose over 3 arms with a floor, remembering the request id."""
    policy = ThompsonSampling(("a", "b", "c"), bandit_id="bench", floor=0.05, rng=random.Random(0))
    n = ctx.size(100_000, 10_000)
    with ctx.timer() as t:
        for i in range(n):
            policy.choose(str(i))
    return _per_call(n, t.seconds)


def _bandit_flush(ctx: Context, url: str) -> Measurements:
    database = Database(url, auto_migrate=True)
    database.ensure_schema()
    store = SqlBanditStateStore(database)
    n = ctx.size(300, 50)
    deltas = {arm: ArmStats(pulls=100, trials=40, reward_sum=3.0) for arm in ("a", "b", "c")}
    try:
        with ctx.timer() as t:
            for _ in range(n):
                store.add("bench", deltas)
    finally:
        database.dispose()
    return {"ms_per_flush": (t.seconds / n * 1e3, "ms")}


@benchmark("serving.bandit.flush.sqlite", group="serving", repeats=3, quick_repeats=1)
def bandit_flush_sqlite(ctx: Context) -> Measurements:
    """One worker's flush of 3 arms' deltas to SQLite (synchronous=FULL) and read-back."""
    return _bandit_flush(ctx, f"sqlite:///{ctx.tmp / 'steward.db'}")


@benchmark("serving.bandit.flush.postgres", group="serving", repeats=3, quick_repeats=1)
def bandit_flush_postgres(ctx: Context) -> Measurements:
    """One worker's flush of 3 arms' deltas to PostgreSQL and read-back."""
    return _bandit_flush(ctx, ctx.postgres_url())


@benchmark("serving.cache.hit", group="serving", repeats=3, quick_repeats=1)
def cache_hit(ctx: Context) -> Measurements:
    """ResponseCache.key + get of a 30-feature record (canonical JSON + SHA-256), all hits."""
    cache: ResponseCache[float] = ResponseCache(max_entries=10_000, ttl_s=3_600)
    rng = np.random.default_rng(0)
    records = [{f"f{j}": float(v) for j, v in enumerate(rng.normal(size=30))} for _ in range(100)]
    for record in records:
        cache.put(cache.key(record, namespace="fraud:r1:champion"), 0.5)
    n = ctx.size(50_000, 5_000)
    with ctx.timer() as t:
        for i in range(n):
            cache.get(cache.key(records[i % 100], namespace="fraud:r1:champion"))
    assert cache.stats().hits == n
    return _per_call(n, t.seconds)


@benchmark("serving.admission.admit", group="serving", repeats=3, quick_repeats=1)
def admission_admit(ctx: Context) -> Measurements:
    """AdmissionController.admit enter + exit with free slots (the common case)."""
    n = ctx.size(200_000, 20_000)

    async def main() -> float:
        gate = AdmissionController(max_in_flight=64, max_queued=256)
        start = time.perf_counter()
        for _ in range(n):
            async with gate.admit():
                pass
        return time.perf_counter() - start

    return _per_call(n, asyncio.run(main()))


def _model(rows: list[int]) -> list[float]:
    time.sleep(0.001 + 0.00001 * len(rows))  # releases the GIL, like a native model
    return [0.5] * len(rows)


async def _clients(concurrency: int, per_client: int, call: object) -> float:
    async def client() -> None:
        for i in range(per_client):
            await call(i)  # type: ignore[operator]

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return time.perf_counter() - start


@benchmark("serving.batching.c64", group="serving", repeats=3, quick_repeats=1)
def batching_c64(ctx: Context) -> Measurements:
    """64 concurrent clients, 1-row requests, 1 ms + 10 us/row model: batched vs one call each."""
    per_client = ctx.size(100, 10)
    total = 64 * per_client

    async def batched() -> tuple[float, float | None]:
        batcher = MicroBatcher(_model, max_batch_size=64, max_wait_ms=1.0)
        seconds = await _clients(64, per_client, batcher.submit)
        mean = batcher.stats().mean_batch_size
        await batcher.close()
        return seconds, mean

    async def unbatched() -> float:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=4) as pool:

            async def call(i: int) -> list[float]:
                return await loop.run_in_executor(pool, _model, [i])

            return await _clients(64, per_client, call)

    seconds, mean_size = asyncio.run(batched())
    plain = asyncio.run(unbatched())
    return {
        "requests_per_s": (total / seconds, "req/s"),
        "mean_batch_size": mean_size or 0.0,
        "requests_per_s_unbatched_4_threads": (total / plain, "req/s"),
    }


@benchmark("serving.batching.c1", group="serving", repeats=3, quick_repeats=1)
def batching_c1(ctx: Context) -> Measurements:
    """One client: per-request time through the batcher vs a direct executor call (overhead)."""
    n = ctx.size(300, 50)

    async def through_batcher() -> float:
        batcher = MicroBatcher(_model, max_batch_size=64, max_wait_ms=5.0)
        seconds = await _clients(1, n, batcher.submit)
        await batcher.close()
        return seconds

    async def direct() -> float:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=1) as pool:

            async def call(i: int) -> list[float]:
                return await loop.run_in_executor(pool, _model, [i])

            return await _clients(1, n, call)

    batched = asyncio.run(through_batcher())
    plain = asyncio.run(direct())
    return {
        "ms_per_request": (batched / n * 1e3, "ms"),
        "ms_per_request_direct": (plain / n * 1e3, "ms"),
        "overhead_us": ((batched - plain) / n * 1e6, "us"),
    }
