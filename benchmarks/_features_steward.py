"""The steward side of bench_features.py, and the checks both sides are held to.

Functions named ``*_in_child`` run in a fresh spawned process under
``ctx.measure_peak_memory`` (module-level, picklable arguments: paths and names), so
their peak RSS counts only what the feature store itself allocates.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks._features_workload import ENTITY_KEY, ROW_ID, TIMESTAMP
from steward.core import load_settings
from steward.features import (
    Definitions,
    Entity,
    Feature,
    FeatureSettings,
    FeatureStore,
    FeatureView,
    FileSource,
)
from steward.store import Store, StoreSettings

__all__ = [
    "Comparison",
    "ViewSpec",
    "apply_views",
    "compare_tables",
    "duckdb_asof",
    "historical_in_child",
    "latencies_ms",
    "materialize_in_child",
    "online_reader",
    "open_feature_store",
]


@dataclass(frozen=True)
class ViewSpec:
    """One feature view over one Parquet file (or folder): what both sides register."""

    name: str
    path: str
    features: list[str]
    ttl: timedelta

    def refs(self) -> list[str]:
        """``["view:f00", "view:f01", ...]``."""
        return [f"{self.name}:{f}" for f in self.features]

    def feast(self) -> dict[str, Any]:
        """The view as the Feast script's spec describes it."""
        return {"path": self.path, "features": self.features, "ttl_days": self.ttl.days}


@contextmanager
def open_feature_store(home: str, online_url: str | None = None) -> Iterator[FeatureStore]:
    """Open (or create) a steward home with its feature store; online store by URL."""
    store = Store.open(load_settings(StoreSettings, home=Path(home)))
    settings = load_settings(FeatureSettings, home=Path(home), online_store_url=online_url)
    features = FeatureStore(store, settings)
    try:
        yield features
    finally:
        close = getattr(features, "close", None)
        if callable(close):
            close()
        store.close()


def apply_views(features: FeatureStore, views: Sequence[ViewSpec]) -> None:
    """Register the views (one ``customer`` entity keyed by ``customer_id``)."""
    customer = Entity("customer", [ENTITY_KEY])
    defined = [
        FeatureView(
            view.name,
            entities=customer,
            source=FileSource(f"{view.name}_source", view.path, timestamp_field=TIMESTAMP),
            features=[Feature(name, "float64") for name in view.features],
            ttl=view.ttl,
        )
        for view in views
    ]
    features.apply(Definitions(entities=[customer], views=defined))


def historical_in_child(home: str, entities: str, refs: list[str], out: str) -> dict[str, float]:
    """Retrieve ``refs`` for the entity frame twice in this process; write the first result.

    The first call is what a training job pays (fresh process); the second shows
    what is left once files are cached and the engine is warm.
    """
    _import_untimed()
    with open_feature_store(home) as features:
        entity_df = pq.read_table(entities)
        start = time.perf_counter()
        table = features.get_historical_features(entity_df, refs)
        first = time.perf_counter() - start
        rows = table.num_rows
        pq.write_table(table, out)
        del table
        start = time.perf_counter()
        features.get_historical_features(entity_df, refs)
        warm = time.perf_counter() - start
    return {"seconds": first, "warm_seconds": warm, "rows": float(rows)}


def _import_untimed(online_url: str | None = None) -> None:
    # Feast imports pandas when it starts; steward on first use (pyarrow's to_numpy,
    # when materialization profiles a batch).  Neither side's imports are timed.  The
    # Redis client is imported when the store opens, inside the timed call: 0.2 s on a
    # 2-core machine, and 0.5 s more where PYTHONDONTWRITEBYTECODE leaves it compiled
    # from source in every fresh process.
    import pandas  # noqa: F401

    if online_url and online_url.startswith(("redis://", "rediss://")):
        import redis  # noqa: F401


def materialize_in_child(
    home: str, online_url: str | None, start: str, end: str, views: list[str]
) -> dict[str, float]:
    """Materialize ``views`` over ``[start, end)`` into the online store; time it."""
    _import_untimed(online_url)
    with open_feature_store(home, online_url) as features:
        began = time.perf_counter()
        report = features.materialize(
            start=datetime.fromisoformat(start),
            end=datetime.fromisoformat(end),
            views=views,
            progress=False,
        )
        seconds = time.perf_counter() - began
    return {
        "seconds": seconds,
        "rows_read": float(report.rows_read),
        "rows_written": float(report.rows_written),
    }


def latencies_ms(
    fn: Callable[[], object], calls: int, warm: int = 20
) -> tuple[float, float, float]:
    """Call ``fn`` ``calls`` times after ``warm`` untimed calls; return p50, p99 and CPU p99 (ms).

    The CPU-time p99 (this thread's CPU time per call) is what the tail would be
    without preemption: on a machine whose cores are shared, a call of half a
    millisecond is now and then descheduled for a whole time slice, which the
    wall-clock p99 shows and the CPU-time p99 does not.
    """
    for _ in range(warm):
        fn()
    times, cpu = [], []
    for _ in range(calls):
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)
    p99 = statistics.quantiles(times, n=100, method="inclusive")[98]
    cpu_p99 = statistics.quantiles(cpu, n=100, method="inclusive")[98]
    return statistics.median(times) * 1000, p99 * 1000, cpu_p99 * 1000


def online_reader(
    features: FeatureStore, view: ViewSpec, entities: int, batch: int, calls: int, seed: int = 5
) -> Callable[[], object]:
    """A function that reads ``batch`` random entities' features per call, as Feast's side does."""
    rng = random.Random(seed)
    rows = [[{ENTITY_KEY: rng.randrange(entities)} for _ in range(batch)] for _ in range(calls)]
    refs = view.refs()
    position = iter(range(10**12))

    def read() -> object:
        entity_rows = rows[next(position) % len(rows)]
        return features.get_online_features(refs, entity_rows=entity_rows).to_dict()

    return read


# -- the floor and the checks -----------------------------------------------------------------


def duckdb_asof(
    entities: Path, views: Sequence[ViewSpec], repeats: int = 3
) -> tuple[pa.Table, float]:
    """The bare DuckDB query a hand-written retrieval would be: one ASOF LEFT JOIN per view.

    A feature older than the view's TTL is null; every entity row is returned.  Returns
    the result and the median seconds over ``repeats`` runs.
    """
    selects, joins = [], []
    for i, view in enumerate(views):
        alias = f"v{i}"
        ttl = f"INTERVAL {int(view.ttl.total_seconds())} SECOND"
        stale = f"{alias}.{TIMESTAMP} >= e.{TIMESTAMP} - {ttl}"
        selects += [f"CASE WHEN {stale} THEN {alias}.{f} END AS {f}" for f in view.features]
        joins.append(
            f"ASOF LEFT JOIN read_parquet('{view.path}') {alias} "
            f"ON e.{ENTITY_KEY} = {alias}.{ENTITY_KEY} AND e.{TIMESTAMP} >= {alias}.{TIMESTAMP}"
        )
    query = f"SELECT e.*, {', '.join(selects)} FROM read_parquet('{entities}') e {' '.join(joins)}"
    times = []
    for _ in range(repeats):  # each on a fresh connection, as a first call would be
        with duckdb.connect() as con:
            start = time.perf_counter()
            table = con.sql(query).to_arrow_table()
            times.append(time.perf_counter() - start)
    return table, statistics.median(times)


@dataclass(frozen=True)
class Comparison:
    """How a retrieval result matches a reference on the rows they share."""

    rows: int  # rows in the result
    shared_rows: int  # rows present in both (matched by row id)
    missing_rows: int  # reference rows absent from the result
    values_differing: int  # shared cells whose values differ (null vs value counts)
    null_rows: int  # result rows whose features are all null


def compare_tables(result: pa.Table, reference: pa.Table, features: list[str]) -> Comparison:
    """Compare ``result`` with ``reference`` by ``row_id`` (floats: exact up to 1e-12 relative).

    Missing feature columns count every shared cell as differing.
    """
    ids = result[ROW_ID].to_numpy() if ROW_ID in result.column_names else None
    if ids is None:
        raise ValueError(f"the result has no {ROW_ID!r} column: extra entity columns were dropped")
    reference = reference.sort_by(ROW_ID)
    ref_ids = reference[ROW_ID].to_numpy()
    result = result.take(pc.sort_indices(result[ROW_ID]))
    ids = result[ROW_ID].to_numpy()
    shared = np.intersect1d(ids, ref_ids, assume_unique=True)
    mine = result.take(pa.array(np.searchsorted(ids, shared)))
    theirs = reference.take(pa.array(np.searchsorted(ref_ids, shared)))
    differing = 0
    for name in features:
        if name not in mine.column_names:
            differing += len(shared)
            continue
        a = _floats(mine[name])
        b = _floats(theirs[name])
        same = np.isclose(a, b, rtol=1e-12, atol=0.0, equal_nan=True)
        differing += int((~same).sum())
    present = [name for name in features if name in result.column_names]
    all_null = np.ones(result.num_rows, dtype=bool)
    for name in present:
        all_null &= np.isnan(_floats(result[name]))
    return Comparison(
        rows=result.num_rows,
        shared_rows=len(shared),
        missing_rows=len(ref_ids) - len(shared),
        values_differing=differing,
        null_rows=int(all_null.sum()) if present else result.num_rows,
    )


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(column.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
