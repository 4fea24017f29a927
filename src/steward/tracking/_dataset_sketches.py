"""Mergeable, bounded-memory summaries of a column, fed one batch at a time.

Each summary keeps a fixed amount of state however many rows it sees, and all
but :class:`TopValues` give the same answer however the rows were split into
batches (the moments agree to rounding):

- :class:`Moments`: count, mean and sum of squared deviations, merged with
  Chan et al.'s pairwise update (numerically stable, unlike a running sum of
  squares).
- :class:`GridHistogram`: exact counts on a power-of-two grid that coarsens
  as the range grows; its final grid depends only on the overall min and max.
- :class:`BottomKSample`: the values of the rows with the smallest
  pseudo-random priorities (a hash of the row's position), i.e. a uniform
  sample without replacement that is the same for any batching.
- :class:`DistinctSketch`: the k smallest distinct 64-bit value hashes (KMV);
  exact up to k distinct values, an estimate with ~1/sqrt(k) relative error above.
- :class:`TopValues`: value counts, exact up to ``capacity`` distinct values,
  then a Misra-Gries summary (counts under-estimated by at most n/(capacity+1)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "BottomKSample",
    "DistinctSketch",
    "GridHistogram",
    "Moments",
    "TopValues",
    "hash_binary",
    "hash_words",
    "mix64",
    "row_priorities",
    "sorted_unique",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
HashArray = npt.NDArray[np.uint64]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_PRIORITY_SEED = np.uint64(0x5EED_0F_57E3A2D)
_NO_HASHES = np.empty(0, dtype=np.uint64)
_NO_FLOATS = np.empty(0, dtype=np.float64)
_STRING_BASE = np.uint64(0x100000001B3)  # FNV-1a's 64-bit prime: odd, so powers stay odd


def mix64(words: HashArray) -> HashArray:
    """Return MurmurHash3's 64-bit finalizer of each word: a bijection on uint64.

    Being a bijection, two different 8-byte values never share a hash.
    """
    x = words.copy()
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xFF51AFD7ED558CCD)
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xC4CEB9FE1A85EC53)
    x ^= x >> np.uint64(33)
    return x


def row_priorities(start: int, count: int) -> HashArray:
    """Return the sampling priority of rows ``start .. start+count-1`` (a hash of the position).

    The priority depends only on the row's position in the dataset, so a
    sample built from priorities is the same for any batching.
    """
    positions = np.arange(start, start + count, dtype=np.uint64)
    return mix64(positions * _GOLDEN + _PRIORITY_SEED)


def hash_words(values: npt.NDArray[np.generic]) -> HashArray:
    """Hash fixed-width values of at most 8 bytes (ints, floats, dates, timestamps).

    Floats are normalized first so that -0.0 equals 0.0 and every NaN is one value.
    """
    if values.dtype.kind == "f":
        floats = values.astype(np.float64) + 0.0  # -0.0 + 0.0 == +0.0
        floats[np.isnan(floats)] = np.nan
        return mix64(floats.view(np.uint64))
    if values.dtype.kind == "b":
        return mix64(values.astype(np.uint64))
    return mix64(values.astype(np.int64, copy=False).view(np.uint64))


def hash_binary(array: pa.Array) -> HashArray:
    """Hash each value of a string or binary array without nulls (vectorized).

    A polynomial hash over the bytes (computed for all values at once with
    ``reduceat``), mixed with the length and finalized with :func:`mix64`.
    Good enough for counting distinct values; not a cryptographic hash.
    """
    array = array.cast(pa.large_binary())
    n = len(array)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset : array.offset + n + 1]
    data_buffer = array.buffers()[2]
    data = (
        np.frombuffer(data_buffer, dtype=np.uint8)
        if data_buffer is not None
        else np.empty(0, np.uint8)
    )
    data = data[offsets[0] : offsets[-1]]
    starts = offsets[:-1] - offsets[0]
    lengths = np.diff(offsets)
    hashes = np.zeros(n, dtype=np.uint64)
    if data.size:
        # Byte j of a value of length L gets weight BASE**(L-1-j) (Horner's rule, unrolled).
        ends = np.repeat(starts + lengths, lengths)
        from_end = ends - 1 - np.arange(data.size, dtype=np.int64)
        powers = np.ones(int(lengths.max()), dtype=np.uint64)
        powers[1:] = np.cumprod(np.full(powers.size - 1, _STRING_BASE, dtype=np.uint64))
        terms = (data.astype(np.uint64) + np.uint64(1)) * powers[from_end]
        nonempty = lengths > 0
        hashes[nonempty] = np.add.reduceat(terms, starts[nonempty])
    return mix64(hashes ^ mix64(lengths.astype(np.uint64)))


@dataclass
class Moments:
    """Count, mean and M2 (sum of squared deviations) of the values seen."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def update(self, values: FloatArray) -> None:
        """Fold a batch of finite values in."""
        n = int(values.size)
        if n == 0:
            return
        mean = float(values.mean())
        deviations = values - mean
        deviations *= deviations  # not np.dot: BLAS threads cost more than they save here
        self.merge(Moments(n, mean, float(deviations.sum())))

    def merge(self, other: Moments) -> None:
        """Fold another summary in (Chan, Golub & LeVeque's pairwise update)."""
        if other.count == 0:
            return
        total = self.count + other.count
        delta = other.mean - self.mean
        self.mean += delta * other.count / total
        self.m2 += other.m2 + delta * delta * self.count * other.count / total
        self.count = total

    def std(self) -> float | None:
        """Population standard deviation (ddof=0), or None when nothing was seen."""
        return math.sqrt(max(self.m2, 0.0) / self.count) if self.count else None


@dataclass
class GridHistogram:
    """Exact counts of finite values on bins of width 2**exponent, at most ``size`` bins.

    Bin ``i`` (absolute) holds the values ``v`` with ``floor(v / 2**exponent) == i``.
    Dividing by a power of two is exact in binary floating point, so a value's
    bin never depends on rounding, and coarsening the grid (exponent + j) maps
    bin ``i`` to bin ``i >> j`` exactly.  The exponent is always the smallest
    one under which [min, max] spans fewer than ``size`` bins (and |v| / 2**e
    stays below 2**52), so the final grid and counts depend only on the
    multiset of values, not on how they were batched.
    """

    size: int = 4096
    exponent: int | None = None
    base: int = 0  # absolute index of counts[0] == floor(min / 2**exponent)
    counts: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    minimum: float = math.inf
    maximum: float = -math.inf
    total: int = 0

    def update(self, values: FloatArray, minimum: float, maximum: float) -> None:
        """Count a batch of finite values whose min and max are given."""
        if values.size == 0:
            return
        low, high = min(self.minimum, minimum), max(self.maximum, maximum)
        if low < high:
            exponent = _covering_exponent(low, high, self.exponent, self.size)
            self._regrid(exponent, _bin_of(low, exponent))
            index = _bins_of(values, exponent) - self.base
            self.counts += np.bincount(index, minlength=self.size)[: self.size]
        self.minimum, self.maximum = low, high
        self.total += int(values.size)

    def _regrid(self, exponent: int, base: int) -> None:
        if self.exponent == exponent and self.base == base:
            return
        counts = np.zeros(self.size, dtype=np.int64)
        if self.exponent is None:
            if self.total:  # until now every value was equal to `minimum`
                counts[_bin_of(self.minimum, exponent) - base] = self.total
        elif self.counts.any():
            old = np.flatnonzero(self.counts)
            shift = min(
                exponent - self.exponent, 63
            )  # |index| < 2**53: shifting further changes nothing
            index = ((old + self.base) >> shift) - base
            np.add.at(counts, index, self.counts[old])
        self.exponent, self.base, self.counts = exponent, base, counts

    def occupied(self) -> tuple[int, IntArray]:
        """Return the absolute index of the first occupied bin and the counts up to the last."""
        if self.exponent is None:
            return 0, np.array([self.total], dtype=np.int64) if self.total else self.counts
        last = _bin_of(self.maximum, self.exponent) - self.base
        return self.base, self.counts[: last + 1]

    def histogram(self, bins: int) -> tuple[list[float], list[int]]:
        """Merge the grid into at most ``bins`` bins; return ``(edges, counts)``.

        The first edge is the minimum and the last the maximum; inner edges lie
        on the (coarsened) grid.  Bins are ``[e_i, e_i+1)``, the last one closed.
        A constant column gives one bin ``[v, v]``.
        """
        if self.total == 0:
            return [], []
        if self.exponent is None or bins == 1:
            return [self.minimum, self.maximum], [self.total]
        first, fine = self.occupied()
        last = first + fine.size - 1
        group = 1
        while (last // group) - (first // group) + 1 > bins:  # ends: 2 groups always fit
            group *= 2
        coarse = (np.arange(first, last + 1) // group) - first // group
        counts = np.bincount(coarse, weights=fine).astype(np.int64)
        inner = (np.arange(1, counts.size) + first // group) * group
        edges = [self.minimum, *(math.ldexp(float(i), self.exponent) for i in inner), self.maximum]
        if edges[-2] == edges[-1]:  # the maximum sits exactly on the last inner edge
            counts[-2] += counts[-1]
            counts = counts[:-1]
            del edges[-2]
        return edges, counts.tolist()

    def bracket(self, rank: int) -> tuple[float, float]:
        """Return bounds [low, high] on the ``rank``-th smallest value (0-based)."""
        if self.exponent is None:
            return self.minimum, self.maximum
        first, fine = self.occupied()
        index = int(np.searchsorted(np.cumsum(fine), rank, side="right"))
        low = math.ldexp(float(first + index), self.exponent)
        high = math.ldexp(float(first + index + 1), self.exponent)
        return max(low, self.minimum), min(high, self.maximum)


def _bin_of(value: float, exponent: int) -> int:
    scaled = math.ldexp(value, -exponent)
    # Scaling by a power of two is exact unless a tiny value underflows to zero; a negative
    # one must still land below zero.
    return -1 if scaled == 0 and value < 0 else math.floor(scaled)


def _bins_of(values: FloatArray, exponent: int) -> IntArray:
    scaled = np.ldexp(values, -exponent)
    index = np.floor(scaled).astype(np.int64)
    index[(scaled == 0) & (values < 0)] = -1
    return index


def _covering_exponent(low: float, high: float, start: int | None, size: int) -> int:
    """Smallest exponent >= every lower bound under which [low, high] spans < ``size`` bins.

    Both conditions (few enough bins, |v|/2**e < 2**52) hold for every larger
    exponent once they hold for one, so the search from a lower bound upwards
    finds the global minimum; ``start`` (the exponent that covered a subset of
    the data) is such a lower bound.
    """
    spread = high - low  # > 0: distinct floats never subtract to zero (gradual underflow)
    if math.isinf(spread):
        spread_exponent = math.frexp(high * 0.5 - low * 0.5)[1] + 1
    else:
        spread_exponent = math.frexp(spread)[1]  # spread < 2**spread_exponent
    magnitude_exponent = math.frexp(max(abs(low), abs(high)))[1]
    exponent = max(
        spread_exponent - int(math.log2(size)) - 2,
        magnitude_exponent - 52,
        -1074,
        start if start is not None else -1074,
    )
    while _bin_of(high, exponent) - _bin_of(low, exponent) >= size:
        exponent += 1
    return exponent


class BottomKSample:
    """Values of the ``capacity`` rows with the smallest priorities seen so far.

    Offers below the current threshold are buffered; when the buffer passes
    1.5 x capacity it is cut back to the capacity smallest and the threshold
    drops to the largest kept priority, so later batches mostly fail one
    comparison and the cut happens O(log n) times.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.threshold: np.uint64 | None = None  # offers must be below it (None: no cut yet)
        self._priorities: list[HashArray] = []
        self._values: list[FloatArray] = []
        self._size = 0

    def offer(self, priorities: HashArray, values: FloatArray) -> None:
        """Offer a batch of (priority, value) pairs."""
        if self.threshold is not None:
            keep = priorities < self.threshold
            priorities, values = priorities[keep], values[keep]
        if priorities.size == 0:
            return
        self._priorities.append(priorities)
        self._values.append(values)
        self._size += int(priorities.size)
        if 2 * self._size > 3 * self.capacity:
            self._cut()

    def _cut(self) -> None:
        priorities = np.concatenate(self._priorities) if self._priorities else _NO_HASHES
        values = np.concatenate(self._values) if self._values else _NO_FLOATS
        if priorities.size > self.capacity:
            chosen = np.argpartition(priorities, self.capacity - 1)[: self.capacity]
            priorities, values = priorities[chosen], values[chosen]
            self.threshold = priorities.max()
        self._priorities, self._values, self._size = [priorities], [values], int(priorities.size)

    @property
    def size(self) -> int:
        """Number of values kept (at most ``capacity``)."""
        self._cut()
        return self._size

    def values(self) -> FloatArray:
        """Return every kept value, in no particular order."""
        self._cut()
        return self._values[0]

    def smallest(self, count: int) -> FloatArray:
        """Return the values of the ``count`` lowest priorities, sorted ascending."""
        self._cut()
        priorities, values = self._priorities[0], self._values[0]
        if count == 0:
            return _NO_FLOATS
        if count < priorities.size:
            chosen = np.argpartition(priorities, count - 1)[:count]
            return np.sort(values[chosen])
        return np.sort(values)


class DistinctSketch:
    """The ``capacity`` smallest distinct hashes seen (a k-minimum-values sketch).

    Hashes below the current threshold are buffered and merged when the buffer
    passes 2 x capacity, like :class:`BottomKSample`.
    """

    def __init__(self, capacity: int = 65_536) -> None:
        self.capacity = capacity
        self.threshold: np.uint64 | None = None
        self._buffer: list[HashArray] = []
        self._size = 0

    def update(self, hashes: HashArray) -> None:
        """Fold a batch of value hashes (duplicates allowed) in."""
        if self.threshold is not None:
            hashes = hashes[hashes < self.threshold]
        if hashes.size == 0:
            return
        self._buffer.append(hashes)
        self._size += int(hashes.size)
        if self._size > 2 * self.capacity:
            self._merge()

    def _merge(self) -> HashArray:
        hashes = np.concatenate(self._buffer) if self._buffer else _NO_HASHES
        if hashes.size > self.capacity:
            # Only the `capacity` smallest distinct hashes can survive: select before sorting.
            cutoff = np.partition(hashes, self.capacity)[self.capacity]
            below = sorted_unique(hashes[hashes <= cutoff])
            hashes = below if below.size >= self.capacity else sorted_unique(hashes)
        else:
            hashes = sorted_unique(hashes)
        hashes = hashes[: self.capacity]
        if hashes.size == self.capacity:
            self.threshold = hashes[-1]
        self._buffer, self._size = [hashes], int(hashes.size)
        return hashes

    def estimate(self) -> tuple[int, bool]:
        """Return ``(distinct count, exact)``: exact below ``capacity`` distinct hashes."""
        hashes = self._merge()
        k = int(hashes.size)
        if k < self.capacity:
            return k, True
        # E[(k-1) / U_(k)] is the number of distinct values (Bar-Yossef et al.).
        return round((k - 1) * 2.0**64 / (float(hashes[-1]) + 1.0)), False


def sorted_unique(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Return the distinct values in ascending order.

    A sort, not ``np.unique``/``pc.unique``: their hash tables degrade badly on
    uniformly random 64-bit keys, which is exactly what hashes are.
    """
    ordered = np.sort(values)
    if ordered.size < 2:
        return ordered
    keep = np.empty(ordered.size, dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


@dataclass
class TopValues:
    """Value counts kept to at most ``capacity`` values (Misra-Gries beyond that)."""

    capacity: int = 10_000
    values: pa.Array | None = None
    counts: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    exact: bool = True

    def update(self, values: pa.Array, counts: IntArray) -> None:
        """Fold in a batch's distinct values and their counts."""
        values, counts = self._prune(values, counts)
        if self.values is not None and len(self.values):
            # Sum the counts of equal values: a hash lookup and a weighted bincount
            # (Table.group_by would pull in Acero and, through it, pandas).
            merged = pa.concat_arrays([self.values, values])
            distinct = pc.unique(merged)
            index = np.asarray(pc.index_in(merged, value_set=distinct))
            weights = np.concatenate((self.counts, counts)).astype(np.float64)  # exact < 2**53
            summed = np.bincount(index, weights=weights, minlength=len(distinct))
            values, counts = self._prune(distinct, summed.astype(np.int64))
        self.values, self.counts = values, counts

    def _prune(self, values: pa.Array, counts: IntArray) -> tuple[pa.Array, IntArray]:
        # Misra-Gries: subtract the (capacity+1)-th largest count from all, keep the positive.
        if counts.size <= self.capacity:
            return values, counts
        self.exact = False
        floor = np.partition(counts, counts.size - self.capacity - 1)[
            counts.size - self.capacity - 1
        ]
        keep = np.flatnonzero(counts > floor)
        return values.take(pa.array(keep)), counts[keep] - floor

    def most_common(self, k: int) -> list[tuple[object, int]]:
        """Return the ``k`` largest counts as ``(value, count)``; ties by ascending value."""
        if self.values is None or k == 0 or not len(self.values):
            return []
        table = pa.table({"v": self.values, "c": self.counts})
        top = table.sort_by([("c", "descending"), ("v", "ascending")]).slice(0, k)
        return list(zip(top.column("v").to_pylist(), top.column("c").to_pylist(), strict=True))
