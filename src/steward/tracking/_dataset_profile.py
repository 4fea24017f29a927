"""Per-column profiles of a dataset, built one record batch at a time in bounded memory.

Every column profile is a plain JSON-ready dict (no NaN or infinities: a
statistic that does not exist is None).  Keys shared by all columns::

    name, kind, dtype        kind: numeric | string | boolean | binary | temporal | other
    count                    non-null values
    null_count, null_fraction   (fraction of rows; None when there are no rows)
    distinct_count, distinct_exact   distinct non-null values (None for "other")

``numeric`` (integers, floats, decimals, durations) adds, over the *finite*
values (NaN and ±inf are counted, then left out)::

    nan_count, inf_count, min, max, mean, std (population, ddof=0)
    quantiles: {p01, p05, p25, p50, p75, p95, p99}, quantiles_exact
    histogram: {edges: [...], counts: [...]}     bins [e_i, e_i+1), the last closed
    sample: sorted uniform random sample of the finite values (<= sample_size)
    value_counts: {values, counts} for every value when the column has at most
                  1,000 distinct values, else None

``string`` and ``boolean`` add ``top_values`` ([{value, count, fraction}],
fraction of non-null values, most frequent first, ties by value) and
``top_values_exact``; ``temporal`` (dates, times, timestamps) adds ``min``
and ``max`` as ISO-8601 text.

Accuracy: distinct counts are exact up to 16,384 distinct values, then a
k-minimum-values estimate (relative standard error about 0.8%).  Quantiles
are exact (numpy's default linear interpolation) when the finite values fit
in ``quantile_sample_size``; otherwise they come from a uniform sample of that
size (rank error about sqrt(p(1-p)/size), 0.16 percentile points at p50 for
100,000) and are then clipped into the grid bins that hold the true order
statistics (known exactly from the histogram grid), so the error is also at
most one grid bin: about 1/2,000 of the range (bins are never narrower than
max |value| / 2**52).  Histogram counts are exact.  Top values are
exact up to 10,000 distinct values, then Misra-Gries counts that are low by at
most n/10,001.  Except for top values beyond that bound, every statistic is
the same however the data is split into batches (mean and std to rounding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from steward.tracking._dataset_digest import normalize_array
from steward.tracking._dataset_sketches import (
    BottomKSample,
    DistinctSketch,
    GridHistogram,
    HashArray,
    Moments,
    TopValues,
    hash_binary,
    hash_words,
    row_priorities,
    sorted_unique,
)

__all__ = ["PROFILE_FORMAT", "QUANTILES", "BatchRows", "ProfileOptions", "TableProfiler"]

PROFILE_FORMAT = "steward.dataset-profile/1"
QUANTILES = {
    "p01": 0.01,
    "p05": 0.05,
    "p25": 0.25,
    "p50": 0.5,
    "p75": 0.75,
    "p95": 0.95,
    "p99": 0.99,
}
DISTINCT_EXACT_LIMIT = 16_384
TOP_VALUES_CAPACITY = 10_000
VALUE_COUNTS_LIMIT = 1_000
_PROBE = 4 * VALUE_COUNTS_LIMIT  # values looked at to rule out value counting early

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ProfileOptions:
    """How much each column profile keeps (checked by the caller)."""

    top_k: int = 10
    sample_size: int = 1_000
    quantile_sample_size: int = 100_000
    histogram_bins: int = 20

    def as_dict(self) -> dict[str, int]:
        """Return the settings as stored in the profile."""
        return {
            "top_k": self.top_k,
            "sample_size": self.sample_size,
            "quantile_sample_size": self.quantile_sample_size,
            "histogram_bins": self.histogram_bins,
            "distinct_exact_limit": DISTINCT_EXACT_LIMIT,
            "top_values_capacity": TOP_VALUES_CAPACITY,
            "value_counts_limit": VALUE_COUNTS_LIMIT,
        }


@dataclass(frozen=True)
class BatchRows:
    """What every column of one batch shares: row priorities and the lowest of them."""

    priorities: HashArray
    lowest: npt.NDArray[np.intp] | None  # the `capacity` smallest; None: keep every row

    @classmethod
    def for_batch(cls, start: int, count: int, capacity: int) -> BatchRows:
        """Compute priorities of rows ``start .. start+count-1``."""
        priorities = row_priorities(start, count)
        lowest = None
        if count > capacity:
            lowest = np.argpartition(priorities, capacity - 1)[:capacity]
        return cls(priorities, lowest)


class _ColumnProfiler(Protocol):
    def update(self, array: pa.Array, rows: BatchRows) -> None: ...

    def result(self) -> dict[str, Any]: ...


@dataclass
class _Base:
    name: str
    dtype: pa.DataType  # normalized: what update() receives
    rows: int = 0
    nulls: int = 0
    declared: str = ""  # the column's type as the source declared it

    def update(self, array: pa.Array, rows: BatchRows) -> None:
        raise NotImplementedError

    def result(self) -> dict[str, Any]:
        raise NotImplementedError

    def _count(self, array: pa.Array) -> pa.Array:
        self.rows += len(array)
        self.nulls += array.null_count
        return array.drop_null() if array.null_count else array

    def _common(self, kind: str, distinct: DistinctSketch | None) -> dict[str, Any]:
        count, exact = distinct.estimate() if distinct is not None else (None, False)
        return {
            "name": self.name,
            "kind": kind,
            "dtype": self.declared or str(self.dtype),
            "count": self.rows - self.nulls,
            "null_count": self.nulls,
            "null_fraction": self.nulls / self.rows if self.rows else None,
            "distinct_count": count,
            "distinct_exact": exact,
        }


@dataclass
class _NumericProfiler(_Base):
    options: ProfileOptions = field(default_factory=ProfileOptions)
    moments: Moments = field(default_factory=Moments)
    grid: GridHistogram = field(default_factory=GridHistogram)
    distinct: DistinctSketch = field(default_factory=lambda: DistinctSketch(DISTINCT_EXACT_LIMIT))
    values: TopValues | None = field(default_factory=lambda: TopValues(TOP_VALUES_CAPACITY))
    nan: int = 0
    inf: int = 0
    low: int | float | None = None
    high: int | float | None = None

    def __post_init__(self) -> None:
        self.sample = BottomKSample(self.options.quantile_sample_size)

    def update(self, array: pa.Array, rows: BatchRows) -> None:
        valid = np.asarray(array.is_valid()) if array.null_count else None
        array = self._count(array)
        if not len(array):
            return
        raw = _numbers(array)
        values = raw.astype(np.float64, copy=False)
        finite = np.isfinite(values) if raw.dtype.kind == "f" else None
        if finite is not None and finite.all():
            finite = None
        if finite is not None:  # NaN and infinities count as distinct values, nothing else
            odd = raw[~finite]
            self.distinct.update(hash_words(odd))
            nan = int(np.isnan(odd).sum())
            self.nan += nan
            self.inf += odd.size - nan
            values, raw = values[finite], raw[finite]
        if values.size == 0:
            return
        self._count_values(raw)
        self._track_range(raw)
        self.moments.update(values)
        self.grid.update(values, float(values.min()), float(values.max()))
        self._sample(values, rows, valid, finite)

    def _track_range(self, raw: npt.NDArray[Any]) -> None:
        low, high = raw.min().item(), raw.max().item()
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)

    def _sample(
        self,
        values: FloatArray,
        rows: BatchRows,
        valid: npt.NDArray[np.bool_] | None,
        finite: npt.NDArray[np.bool_] | None,
    ) -> None:
        if valid is None and finite is None:  # every row has a value: share the batch's choice
            if rows.lowest is None:
                self.sample.offer(rows.priorities, values)
            else:
                self.sample.offer(rows.priorities[rows.lowest], values[rows.lowest])
            return
        positions = np.flatnonzero(valid) if valid is not None else np.arange(len(rows.priorities))
        if finite is not None:
            positions = positions[finite]
        priorities = rows.priorities[positions]
        capacity = self.sample.capacity
        if priorities.size > capacity:
            chosen = np.argpartition(priorities, capacity - 1)[:capacity]
            priorities, values = priorities[chosen], values[chosen]
        self.sample.offer(priorities, values)

    def _count_values(self, raw: npt.NDArray[Any]) -> None:
        """Count distinct values; also count each value while there are few of them."""
        if self.values is not None and sorted_unique(raw[:_PROBE]).size > VALUE_COUNTS_LIMIT:
            self.values = None  # a continuous column: counting its values would be useless
        if self.values is None:
            self.distinct.update(hash_words(raw))
            return
        counted = pc.value_counts(pa.array(raw))
        uniques = counted.field("values")
        self.distinct.update(hash_words(np.asarray(uniques)))
        self.values.update(uniques, np.asarray(counted.field("counts"), dtype=np.int64))
        seen, exact = self.distinct.estimate()
        if not exact or seen > VALUE_COUNTS_LIMIT:
            self.values = None

    def result(self) -> dict[str, Any]:
        profile = self._common("numeric", self.distinct)
        count = self.moments.count
        edges, counts = self.grid.histogram(self.options.histogram_bins)
        value_counts = None
        if self.values is not None and self.values.exact:
            pairs = sorted(self.values.most_common(VALUE_COUNTS_LIMIT), key=lambda p: _key(p[0]))
            value_counts = {"values": [v for v, _ in pairs], "counts": [c for _, c in pairs]}
        sample = self.sample.smallest(self.options.sample_size) if count else np.empty(0)
        profile.update(
            nan_count=self.nan,
            inf_count=self.inf,
            min=_json_number(self.low),
            max=_json_number(self.high),
            mean=_json_number(self.moments.mean) if count else None,
            std=_json_number(self.moments.std()),
            quantiles=self._quantiles(),
            quantiles_exact=self.sample.size == count,
            histogram={"edges": [_json_number(e) for e in edges], "counts": counts},
            sample=[_json_number(v) for v in sample.tolist()],
            value_counts=value_counts,
        )
        return profile

    def _quantiles(self) -> dict[str, float | None]:
        count = self.moments.count
        if count == 0:
            return dict.fromkeys(QUANTILES)
        kept = self.sample.values()
        estimates = np.quantile(kept, list(QUANTILES.values()))  # partitions, no full sort
        result: dict[str, float | None] = {}
        for (key, p), estimate in zip(QUANTILES.items(), estimates.tolist(), strict=True):
            if kept.size < count:  # a sample: clip into the exact bracket of the grid
                position = p * (count - 1)
                low = self.grid.bracket(math.floor(position))[0]
                high = self.grid.bracket(math.ceil(position))[1]
                estimate = min(max(estimate, low), high)
            result[key] = _json_number(estimate)
        return result


@dataclass
class _CategoricalProfiler(_Base):
    kind: str = "string"
    top_k: int = 10
    top: TopValues = field(default_factory=lambda: TopValues(TOP_VALUES_CAPACITY))
    distinct: DistinctSketch = field(default_factory=lambda: DistinctSketch(DISTINCT_EXACT_LIMIT))

    def update(self, array: pa.Array, rows: BatchRows) -> None:
        array = self._count(array)
        if not len(array):
            return
        counted = pc.value_counts(array)
        values = counted.field("values")
        if self.kind == "boolean":
            self.distinct.update(hash_words(np.asarray(values)))
        else:
            self.distinct.update(hash_binary(values))
        if self.kind != "binary":
            self.top.update(values, np.asarray(counted.field("counts"), dtype=np.int64))

    def result(self) -> dict[str, Any]:
        profile = self._common(self.kind, self.distinct)
        if self.kind == "binary":
            return profile
        count = profile["count"]
        profile["top_values"] = [
            {"value": value, "count": n, "fraction": n / count}
            for value, n in self.top.most_common(self.top_k)
        ]
        profile["top_values_exact"] = self.top.exact
        return profile


@dataclass
class _TemporalProfiler(_Base):
    distinct: DistinctSketch = field(default_factory=lambda: DistinctSketch(DISTINCT_EXACT_LIMIT))
    low: int | None = None
    high: int | None = None

    def update(self, array: pa.Array, rows: BatchRows) -> None:
        array = self._count(array)
        if not len(array):
            return
        ticks = np.asarray(array.view(pa.int64() if self.dtype.bit_width == 64 else pa.int32()))
        self.distinct.update(hash_words(ticks))
        low, high = int(ticks.min()), int(ticks.max())
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)

    def result(self) -> dict[str, Any]:
        profile = self._common("temporal", self.distinct)
        profile["min"] = self._render(self.low)
        profile["max"] = self._render(self.high)
        return profile

    def _render(self, ticks: int | None) -> str | None:
        if ticks is None:
            return None
        width = pa.int64() if self.dtype.bit_width == 64 else pa.int32()
        value = pa.array([ticks], type=width).view(self.dtype).cast(pa.string())[0].as_py()
        return str(value).replace(" ", "T", 1)


@dataclass
class _OtherProfiler(_Base):
    def update(self, array: pa.Array, rows: BatchRows) -> None:
        self._count(array)

    def result(self) -> dict[str, Any]:
        return self._common("other", None)


def _profiler_for(name: str, declared: pa.DataType, options: ProfileOptions) -> _ColumnProfiler:
    """Choose a profiler from the column's normalized Arrow type (what batches will hold)."""
    dtype = normalize_array(pa.array([], type=declared)).type
    profiler = _make_profiler(name, dtype, options)
    profiler.declared = str(declared)
    return profiler


def _make_profiler(name: str, dtype: pa.DataType, options: ProfileOptions) -> _Base:
    if pa.types.is_boolean(dtype):
        return _CategoricalProfiler(name, dtype, kind="boolean", top_k=options.top_k)
    if pa.types.is_large_string(dtype):
        return _CategoricalProfiler(name, dtype, kind="string", top_k=options.top_k)
    if pa.types.is_large_binary(dtype) or pa.types.is_fixed_size_binary(dtype):
        return _CategoricalProfiler(name, dtype, kind="binary", top_k=options.top_k)
    if (
        pa.types.is_integer(dtype)
        or pa.types.is_floating(dtype)
        or pa.types.is_decimal(dtype)
        or pa.types.is_duration(dtype)
    ):
        return _NumericProfiler(name, dtype, options=options)
    if pa.types.is_date(dtype) or pa.types.is_time(dtype) or pa.types.is_timestamp(dtype):
        return _TemporalProfiler(name, dtype)
    return _OtherProfiler(name, dtype)


class TableProfiler:
    """Profile every column of a table, fed one normalized batch at a time.

    Columns may be fed in any order and in separate passes; a column's batches
    must come in row order, each with the :class:`BatchRows` of its rows.

    Example:
        >>> profiler = TableProfiler(schema, ProfileOptions())  # doctest: +SKIP
        >>> rows = profiler.batch_rows(0, batch.num_rows)
        >>> for i, column in enumerate(batch.columns): profiler.update_column(i, column, rows)
        >>> profiler.result(batch.num_rows)
    """

    def __init__(self, schema: pa.Schema, options: ProfileOptions) -> None:
        """Profile the columns of ``schema``; batches are fed as normalized arrays."""
        self.options = options
        self._columns = [_profiler_for(f.name, f.type, options) for f in schema]

    def batch_rows(self, start: int, count: int) -> BatchRows:
        """Return what the columns of a batch of rows ``start .. start+count-1`` share."""
        return BatchRows.for_batch(start, count, self.options.quantile_sample_size)

    def update_column(self, index: int, array: pa.Array, rows: BatchRows) -> None:
        """Feed column ``index`` of a batch (thread-safe across columns)."""
        self._columns[index].update(array, rows)

    def result(self, rows: int) -> dict[str, Any]:
        """Return the profile of a dataset of ``rows`` rows (``steward.dataset-profile/1``)."""
        return {
            "format": PROFILE_FORMAT,
            "rows": rows,
            "settings": self.options.as_dict(),
            "columns": [column.result() for column in self._columns],
        }


def _numbers(array: pa.Array) -> npt.NDArray[Any]:
    """Return a null-free numeric array as NumPy (decimals as float64, durations as ints)."""
    if pa.types.is_decimal(array.type):
        array = pc.cast(array, pa.float64())
    elif pa.types.is_duration(array.type):
        array = array.view(pa.int64())
    elif pa.types.is_float16(array.type):
        array = pc.cast(array, pa.float32())
    return np.asarray(array)


def _json_number(value: float | int | None) -> float | int | None:
    if value is None or isinstance(value, int):
        return value
    return value if math.isfinite(value) else None


def _key(value: object) -> tuple[int, float]:
    return (0, float(value)) if isinstance(value, int | float) else (1, 0.0)
