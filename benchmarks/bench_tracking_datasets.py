"""Dataset fingerprint + profile, and environment capture, as a run start pays for them.

- ``tracking.dataset.describe``: ``describe_dataset`` of a 1M-row x 30-column Parquet
  file (quick: 100k rows) with a realistic mix: 16 float columns (some with 1% nulls),
  6 integer columns of cardinality 2 to 10^9, 4 string columns of 5 to 100,000
  categories, 2 booleans, 2 timestamps.  One Parquet row group, as ``pq.write_table``
  writes by default.  The issue's goal: <= 3 s, peak memory <= 1.5x the table's
  in-memory (Arrow) size.  Time is measured in this process (warm imports); peak RSS
  in a fresh process (``ctx.measure_peak_memory``), over the interpreter and imports.
- ``tracking.environment.capture``: ``capture_environment`` in this repository (a git
  work tree with a lockfile): the first call in a fresh process (fills the per-process
  caches) and the median of warm calls.  Goal: < 100 ms.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks._harness import Context, Measurements, benchmark
from steward.tracking._datasets import describe_dataset
from steward.tracking._environment import capture_environment

_REPO = Path(__file__).resolve().parents[1]


def make_table(rows: int, seed: int = 0) -> pa.Table:
    """Build the 30-column table described in the module docstring."""
    rng = np.random.default_rng(seed)
    columns: dict[str, pa.Array] = {}
    for i in range(14):
        mask = rng.random(rows) < 0.01 if i % 3 == 0 else None
        columns[f"f{i}"] = pa.array(rng.normal(i, 1 + i, size=rows), mask=mask)
    columns["amount"] = pa.array(rng.lognormal(3.0, 1.5, size=rows))
    columns["score"] = pa.array(rng.random(rows).astype(np.float32))
    for i, cardinality in enumerate([2, 10, 50, 1_000, 100_000, 10**9]):
        columns[f"i{i}"] = pa.array(rng.integers(0, cardinality, size=rows))
    for i, cardinality in enumerate([5, 50, 1_000, 100_000]):
        vocabulary = np.array([f"cat_{j:06d}" for j in range(cardinality)], dtype=object)
        columns[f"s{i}"] = pa.array(
            vocabulary[rng.integers(0, cardinality, size=rows)], pa.string()
        )
    columns["b0"] = pa.array(rng.random(rows) < 0.1)
    columns["b1"] = pa.array(rng.random(rows) < 0.5)
    start = np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64)
    day_us = 86_400 * 10**6
    columns["t0"] = pa.array(
        start + np.sort(rng.integers(0, 90 * day_us, size=rows)), pa.timestamp("us", tz="UTC")
    )
    columns["t1"] = pa.array(start + rng.integers(0, 365 * day_us, size=rows), pa.timestamp("us"))
    return pa.table(columns)


def describe_file(path: str) -> dict[str, float]:
    """Describe a Parquet file; runs in a fresh process for the peak-memory measurement."""
    start = time.perf_counter()
    description = describe_dataset(path, name="bench", role="train")
    return {"seconds": time.perf_counter() - start, "rows": float(description.num_rows)}


@benchmark("tracking.dataset.describe", group="tracking", repeats=3, quick_repeats=1)
def dataset_describe(ctx: Context) -> Measurements:
    """Fingerprint + profile of a 1M x 30 Parquet file: seconds, peak RSS over Arrow size."""
    rows = ctx.size(1_000_000, 100_000)
    table = make_table(rows)
    in_memory = table.nbytes
    path = ctx.tmp / "data.parquet"
    pq.write_table(table, path)
    del table
    describe_dataset(pa.table({"x": [1.0], "s": ["a"]}), name="warm", role="train")  # imports
    with ctx.timer() as t:
        description = describe_dataset(path, name="bench", role="train")
    peak = ctx.measure_peak_memory(describe_file, str(path))
    return {
        "seconds": (t.seconds, "s"),
        "rows_per_s": (description.num_rows / t.seconds, "rows/s"),
        "fresh_process_seconds": (peak.result["seconds"], "s"),
        "peak_mib": (peak.delta_bytes / 2**20, "MiB"),
        "in_memory_mib": (in_memory / 2**20, "MiB"),
        "peak_over_in_memory": (peak.delta_bytes / in_memory, "x"),
        "parquet_mib": (path.stat().st_size / 2**20, "MiB"),
        "columns": (description.num_columns, "columns"),
    }


def first_capture(cwd: str) -> float:
    """Time the first ``capture_environment`` of a fresh process (caches empty)."""
    start = time.perf_counter()
    capture_environment(Path(cwd))
    return time.perf_counter() - start


@benchmark("tracking.environment.capture", group="tracking", repeats=3, quick_repeats=1)
def environment_capture(ctx: Context) -> Measurements:
    """capture_environment in a git work tree: first call in a process, then warm calls."""
    first = ctx.measure_peak_memory(first_capture, str(_REPO)).result
    capture_environment(_REPO)
    warm = []
    for _ in range(ctx.size(30, 5)):
        with ctx.timer() as t:
            snapshot = capture_environment(_REPO)
        warm.append(t.seconds)
    return {
        "first_call_ms": (first * 1000, "ms"),
        "warm_call_ms": (statistics.median(warm) * 1000, "ms"),
        "packages": (len(snapshot.packages), "packages"),
        "in_git_repository": (float(snapshot.git_commit is not None), ""),
    }
