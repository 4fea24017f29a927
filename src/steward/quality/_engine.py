"""Run a per-column function over a table, a bounded batch of columns at a time.

Columns are read in batches sized so that their float64 copies fit a memory
budget, and each batch is processed by a thread pool: the NumPy kernels
(sort, searchsorted, cumsum) release the GIL, so threads scale across cores
without copying data into worker processes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pyarrow as pa

from steward.core import InvalidInputError
from steward.quality._input import TableSource, iter_batches

__all__ = ["DEFAULT_MEMORY_BUDGET", "map_columns", "resolve_jobs"]

T = TypeVar("T")

DEFAULT_MEMORY_BUDGET = 1 << 30
"""Bytes of column data read at once (1 GiB), before per-thread working copies."""


def resolve_jobs(n_jobs: int | None) -> int:
    """Turn ``n_jobs`` (None: up to 8 cores, -1: every core, k: k threads) into a thread count.

    Raises:
        InvalidInputError: ``n_jobs`` is 0 or below -1.
    """
    # The cores this process may run on (a container's share), not the host's count.
    affinity = getattr(os, "sched_getaffinity", None)
    cores = len(affinity(0)) if affinity else (os.cpu_count() or 1)
    if n_jobs is None:
        return min(8, cores)
    if n_jobs == -1:
        return cores
    if n_jobs < 1:
        raise InvalidInputError(f"n_jobs must be a positive int, -1 or None; got {n_jobs}")
    return n_jobs


def map_columns(
    source: TableSource,
    names: Sequence[str],
    func: Callable[[str, pa.ChunkedArray], T],
    *,
    n_jobs: int | None,
    memory_budget: int,
) -> dict[str, T]:
    """Apply ``func(name, column)`` to each named column; results keep the order of ``names``."""
    workers = resolve_jobs(n_jobs)
    results: dict[str, T] = {}
    batches = iter_batches(names, source.num_rows, memory_budget)
    if workers == 1:
        for batch in batches:
            arrays = source.read(batch)
            for name in batch:
                results[name] = func(name, arrays.pop(name))
        return results
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="steward-quality") as pool:
        for batch in batches:
            arrays = source.read(batch)
            outputs = pool.map(func, batch, [arrays[name] for name in batch])
            results.update(zip(batch, outputs, strict=True))
    return results
