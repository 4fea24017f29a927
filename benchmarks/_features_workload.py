"""Deterministic workloads for the feature-store benchmarks (seeded numpy -> Arrow -> Parquet).

Every workload is a folder of Parquet files that steward, Feast and a bare DuckDB
query read alike.  Timestamps are ``timestamp[us, tz=UTC]``; entity keys ``int64``;
features ``float64``.  The same seed gives the same bytes on every machine.

- :func:`write_point_in_time` — the issue's retrieval workload: one view of
  10,000 entities x 100 timestamps over a year (1,000,000 rows, 10 features,
  TTL 30 days) and a 100,000-row entity frame.  Feature times are stratified (one
  per 3.65-day slot per entity, jittered), so every entity row timed inside the
  year has a feature less than 8 days old; exactly 1 % of the entity rows have none
  inside the TTL: half are timed before the year (no feature at all), half 31 to
  60 days after it (the newest feature is older than the TTL).
- :func:`write_wide` — 17,000 entity rows x 1,000 features across 10 views of 100
  (each view: 5,000 entities x 10 timestamps over the year; every entity row is
  timed after its entity's first feature, and the views' TTL spans the year).
- :func:`write_materialization` — 100,000 entities x 2 rows over 60 days: one row
  in each 30-day half.  Materializing the second half writes 100,000 rows.
- :func:`write_huge_source` — a materialization source of any size written in
  batches (bounded memory): ``entities`` x ``per_entity`` rows over 30 days.

Run ``python -m benchmarks._features_workload OUT [--quick]`` to write them all.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "ENTITY_KEY",
    "ROW_ID",
    "TIMESTAMP",
    "TTL",
    "YEAR_START",
    "MaterializationWorkload",
    "PointInTimeWorkload",
    "Sizes",
    "WideWorkload",
    "feature_names",
    "sizes",
    "write_huge_source",
    "write_materialization",
    "write_point_in_time",
    "write_wide",
]

ENTITY_KEY = "customer_id"
TIMESTAMP = "event_timestamp"
ROW_ID = "row_id"
TTL = timedelta(days=30)
YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
_YEAR_US = 365 * 86_400 * 10**6
_DAY_US = 86_400 * 10**6
_START_US = int(YEAR_START.timestamp()) * 10**6
_TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Sizes:
    """Workload sizes; :func:`sizes` gives the issue's (full) or a smoke-run set (quick)."""

    entities: int  # point-in-time view
    per_entity: int  # timestamps per entity over the year
    features: int  # float features per view
    entity_rows: int  # rows of the entity frame
    wide_views: int
    wide_features: int  # per wide view
    wide_entities: int
    wide_per_entity: int
    wide_entity_rows: int
    materialize_entities: int  # one row in each 30-day half per entity


def sizes(*, quick: bool) -> Sizes:
    """Return the full sizes of the issue, or small ones for ``--quick``."""
    if quick:
        return Sizes(1_000, 30, 10, 10_000, 10, 10, 1_000, 5, 2_000, 10_000)
    return Sizes(10_000, 100, 10, 100_000, 10, 100, 5_000, 10, 17_000, 100_000)


def feature_names(count: int, prefix: str = "f") -> list[str]:
    """``feature_names(3)`` -> ``["f00", "f01", "f02"]`` (zero-padded, sortable)."""
    width = max(2, len(str(count - 1)))
    return [f"{prefix}{i:0{width}d}" for i in range(count)]


def _stratified_times(
    rng: np.random.Generator, entities: int, per_entity: int, span_us: int, start_us: int
) -> np.ndarray:
    # One timestamp per slot of span/per_entity for each entity, jittered inside the
    # slot: sorted, unique per entity, and never more than two slots apart.
    slot = span_us // per_entity
    base = np.arange(per_entity, dtype=np.int64) * slot
    jitter = rng.integers(0, slot, size=(entities, per_entity), dtype=np.int64)
    return (start_us + base[None, :] + jitter).reshape(-1)


def _feature_table(
    rng: np.random.Generator, keys: np.ndarray, times_us: np.ndarray, names: list[str]
) -> pa.Table:
    columns: dict[str, pa.Array] = {
        ENTITY_KEY: pa.array(keys, pa.int64()),
        TIMESTAMP: pa.array(times_us, _TS),
    }
    block = rng.standard_normal((len(keys), len(names)))
    for i, name in enumerate(names):
        columns[name] = pa.array(np.round(block[:, i] * (i + 1), 6))
    return pa.table(columns)


def _entity_frame(
    rng: np.random.Generator, rows: int, entities: int, earliest_us: int, unresolved: int
) -> pa.Table:
    keys = rng.integers(0, entities, size=rows, dtype=np.int64)
    times = rng.integers(earliest_us, _START_US + _YEAR_US, size=rows, dtype=np.int64)
    # The first `unresolved` rows (shuffled below) have no feature inside the TTL.
    before = unresolved // 2
    times[:before] = _START_US - rng.integers(_DAY_US, 30 * _DAY_US, size=before)
    after = unresolved - before
    end = _START_US + _YEAR_US
    times[before:unresolved] = end + rng.integers(31 * _DAY_US, 60 * _DAY_US, size=after)
    order = rng.permutation(rows)
    return pa.table(
        {
            ENTITY_KEY: pa.array(keys[order], pa.int64()),
            TIMESTAMP: pa.array(times[order], _TS),
            ROW_ID: pa.array(np.arange(rows, dtype=np.int64)),
        }
    )


@dataclass(frozen=True)
class PointInTimeWorkload:
    """Files of the retrieval workload."""

    features: Path
    entity_frame: Path
    feature_rows: int
    entity_rows: int
    unresolved_rows: int  # entity rows with no feature inside the TTL
    feature_names: list[str]


def write_point_in_time(folder: Path, size: Sizes, seed: int = 7) -> PointInTimeWorkload:
    """Write the 1M-row view (``features.parquet``) and the entity frame (``entities.parquet``)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = feature_names(size.features)
    keys = np.repeat(np.arange(size.entities, dtype=np.int64), size.per_entity)
    times = _stratified_times(rng, size.entities, size.per_entity, _YEAR_US, _START_US)
    features = folder / "features.parquet"
    pq.write_table(_feature_table(rng, keys, times, names), features, row_group_size=250_000)
    unresolved = size.entity_rows // 100
    # Rows timed inside the year start after the first slot, so a feature always exists.
    earliest = _START_US + _YEAR_US // size.per_entity
    frame = _entity_frame(rng, size.entity_rows, size.entities, earliest, unresolved)
    entities = folder / "entities.parquet"
    pq.write_table(frame, entities)
    return PointInTimeWorkload(features, entities, len(keys), size.entity_rows, unresolved, names)


@dataclass(frozen=True)
class WideWorkload:
    """Files of the wide workload: one Parquet file per view, and the entity frame."""

    views: dict[str, Path]  # view name -> file
    features: dict[str, list[str]]  # view name -> its feature names
    entity_frame: Path
    entity_rows: int

    @property
    def feature_count(self) -> int:
        """Features across all views."""
        return sum(len(names) for names in self.features.values())


def write_wide(folder: Path, size: Sizes, seed: int = 11) -> WideWorkload:
    """Write ``view_XX.parquet`` (one per view) and ``entities.parquet``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    views: dict[str, Path] = {}
    features: dict[str, list[str]] = {}
    keys = np.repeat(np.arange(size.wide_entities, dtype=np.int64), size.wide_per_entity)
    for v in range(size.wide_views):
        name = f"wide_{v:02d}"
        names = feature_names(size.wide_features, prefix=f"v{v:02d}_f")
        times = _stratified_times(
            rng, size.wide_entities, size.wide_per_entity, _YEAR_US, _START_US
        )
        path = folder / f"{name}.parquet"
        pq.write_table(_feature_table(rng, keys, times, names), path)
        views[name], features[name] = path, names
    earliest = _START_US + _YEAR_US // size.wide_per_entity  # every row has a feature
    frame = _entity_frame(rng, size.wide_entity_rows, size.wide_entities, earliest, 0)
    entities = folder / "entities.parquet"
    pq.write_table(frame, entities)
    return WideWorkload(views, features, entities, size.wide_entity_rows)


@dataclass(frozen=True)
class MaterializationWorkload:
    """The materialization source and the window to materialize."""

    source: Path
    start: datetime
    end: datetime
    source_rows: int
    window_rows: int  # rows inside [start, end): one per entity
    entities: int
    feature_names: list[str]


def write_materialization(folder: Path, size: Sizes, seed: int = 13) -> MaterializationWorkload:
    """Write ``materialize.parquet``: every entity has one row in each 30-day half of 60 days."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = feature_names(size.features)
    n = size.materialize_entities
    keys = np.repeat(np.arange(n, dtype=np.int64), 2)
    times = _stratified_times(rng, n, 2, 60 * _DAY_US, _START_US)
    path = folder / "materialize.parquet"
    pq.write_table(_feature_table(rng, keys, times, names), path, row_group_size=250_000)
    return MaterializationWorkload(
        path,
        YEAR_START + timedelta(days=30),
        YEAR_START + timedelta(days=60),
        2 * n,
        n,
        n,
        names,
    )


def write_huge_source(
    folder: Path, entities: int, per_entity: int, features: int = 10, seed: int = 17
) -> MaterializationWorkload:
    """Write ``huge/part-*.parquet``: ``entities x per_entity`` rows over 30 days, in batches.

    Rows are grouped by time slot (each file holds one slot for every entity), so
    memory stays at one batch however large the source.
    """
    out = folder / "huge"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = feature_names(features)
    span = 30 * _DAY_US
    slot = span // per_entity
    batch = 1_000_000
    for s in range(per_entity):
        with pq.ParquetWriter(out / f"part-{s:05d}.parquet", _schema(names)) as writer:
            for lo in range(0, entities, batch):
                keys = np.arange(lo, min(lo + batch, entities), dtype=np.int64)
                times = _START_US + s * slot + rng.integers(0, slot, size=len(keys))
                writer.write_table(_feature_table(rng, keys, times, names))
    return MaterializationWorkload(
        out,
        YEAR_START,
        YEAR_START + timedelta(days=30),
        entities * per_entity,
        entities,
        entities,
        names,
    )


def _schema(names: list[str]) -> pa.Schema:
    fields = [pa.field(ENTITY_KEY, pa.int64()), pa.field(TIMESTAMP, _TS)]
    return pa.schema(fields + [pa.field(name, pa.float64()) for name in names])


def main() -> None:
    """Write every workload into a folder (for looking at the data by hand)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--quick", action="store_true", help="small sizes")
    args = parser.parse_args()
    size = sizes(quick=args.quick)
    pit = write_point_in_time(args.out / "pit", size)
    wide = write_wide(args.out / "wide", size)
    mat = write_materialization(args.out / "materialize", size)
    print(f"point in time: {pit.feature_rows:,} feature rows, {pit.entity_rows:,} entity rows")
    print(f"wide: {len(wide.views)} views, {wide.feature_count:,} features")
    print(f"materialization: {mat.source_rows:,} source rows, {mat.window_rows:,} in window")


if __name__ == "__main__":
    main()
