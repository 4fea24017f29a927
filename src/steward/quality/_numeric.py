"""Vectorized two-sample statistics over sorted numeric samples.

The reference side is a :class:`SortedSample`: either every finite value in
ascending order (exact) or a weighted quantile sketch of it.  The current side
is always the exact, sorted current values.  Working on sorted arrays makes
each statistic a few ``searchsorted`` calls instead of a sort of the pooled
data, which is what lets a stored reference profile be compared against new
data in O(m log m + n).

Exactness: with an exact reference, the KS statistic and p-value equal
``scipy.stats.ks_2samp`` bit for bit, because the extremes are found among the
same integer counts scipy divides (see ``_ks_statistic``); the Wasserstein
distance equals ``scipy.stats.wasserstein_distance`` up to float rounding in the
order of summation (~1e-15 relative).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special, stats

__all__ = [
    "SortedSample",
    "bin_counts",
    "bin_edges",
    "distinct",
    "jensen_shannon",
    "kl_divergence",
    "ks_test",
    "psi",
    "sketch",
    "wasserstein",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_SCIPY_EXACT_MAX = 10_000  # ks_2samp's MAX_AUTO_N: at or below it, scipy computes exact p-values


@dataclass(frozen=True, eq=False)
class SortedSample:
    """Ascending values with cumulative counts; ``cum is None`` means unit weights (exact).

    ``cum[k]`` is the number of original values ``<= values[k]``, so the sample's
    empirical CDF is exact at every stored value.
    """

    values: FloatArray
    cum: IntArray | None
    n: int

    @property
    def exact(self) -> bool:
        """Whether every original value is stored."""
        return self.cum is None

    def count_le(self, x: FloatArray) -> IntArray:
        """Number of original values ``<= x`` (exact at stored values)."""
        index = np.searchsorted(self.values, x, side="right")
        if self.cum is None:
            return index
        return np.concatenate(([0], self.cum))[index]

    def count_lt(self, x: FloatArray) -> IntArray:
        """Number of original values ``< x`` (sketch: up to the last stored value ``< x``)."""
        index = np.searchsorted(self.values, x, side="left")
        if self.cum is None:
            return index
        return np.concatenate(([0], self.cum))[index]

    @cached_property
    def distinct(self) -> tuple[FloatArray, IntArray]:
        """Distinct values and the count of values ``<=`` each (computed once, then kept)."""
        if self.cum is not None:
            return self.values, self.cum
        last = np.concatenate((np.flatnonzero(np.diff(self.values)), [self.values.size - 1]))
        return self.values[last], (last + 1).astype(np.int64)

    def weights(self) -> IntArray:
        """Integer weight of each stored value."""
        if self.cum is None:
            return np.ones(self.values.size, dtype=np.int64)
        return np.diff(self.cum, prepend=0)


def distinct(sample: SortedSample) -> tuple[FloatArray, IntArray]:
    """Return the sample's distinct values and, for each, the count of values ``<=`` it.

    Example:
        ``distinct(SortedSample(np.array([1.0, 1.0, 4.0]), None, 3))`` gives
        ``([1.0, 4.0], [2, 3])``.
    """
    return sample.distinct


def sketch(ordered: FloatArray, size: int) -> tuple[SortedSample, float, float]:
    """Keep ``size`` evenly spaced order statistics of a sorted sample, with exact ranks.

    Example:
        ``sketch(np.arange(10.0), 4)`` keeps 0, 3, 6 and 9 with cumulative
        counts 1, 4, 7 and 10.

    Returns:
        The sketch, the largest KS error it can add (CDF units) and a bound on the
        Wasserstein error it can add (data units).
    """
    n = ordered.size
    index = np.unique(np.round(np.linspace(0, n - 1, num=min(size, n))).astype(np.int64))
    values = np.unique(ordered[index])
    cum = np.searchsorted(ordered, values, side="right").astype(np.int64)
    # The sketch CDF is exact at stored values and a step below the truth in between:
    # the gap is the count of values strictly between two stored values.
    gaps = np.searchsorted(ordered, values[1:], side="left") - cum[:-1]
    ks_error = float(np.max(gaps, initial=0)) / n
    # W1(sketch, exact) is the area between the CDFs: at most gap x width per step.
    w_error = float(np.dot(gaps, np.diff(values))) / n
    return SortedSample(values, cum, n), ks_error, w_error


def _ks_statistic(reference: SortedSample, current: FloatArray) -> float:
    # scipy evaluates F_ref - F_cur at every pooled point.  Between two distinct
    # reference values F_ref is constant and F_cur rises, so the extremes of the
    # difference sit at the reference values themselves ("at") or just before the
    # next one ("before": at the largest current point below it).  Both use the
    # same integer counts scipy divides, so the extremes are the same floats, and
    # the work is O(k log m) for k distinct reference values.
    n, m = reference.n, current.size
    values, cum = distinct(reference)
    below = np.searchsorted(current, values, side="left")
    # Counts "<=" differ from counts "<" only where a current value equals a
    # reference value; search again for those alone (none, for continuous data).
    at_or_below = below.copy()
    tied = np.flatnonzero(current[np.minimum(below, m - 1)] == values)
    if tied.size:
        at_or_below[tied] = np.searchsorted(current, values[tied], side="right")
    at = cum / n - at_or_below / m
    before = cum[:-1] / n - below[1:] / m
    first = float(below[0]) / m  # F_ref = 0 below the smallest reference value
    extremes = [0.0, first, float(at.max()), float(-at.min())]
    if before.size:
        extremes += [float(before.max()), float(-before.min())]
    return max(extremes)


def ks_test(reference: SortedSample, current: FloatArray) -> tuple[float, float]:
    """Two-sided two-sample Kolmogorov-Smirnov test, as ``scipy.stats.ks_2samp(method="auto")``.

    Args:
        reference: the reference sample (exact or sketch).
        current: the sorted, finite current values; must not be empty.

    Returns:
        The statistic D and its p-value.  Sample sizes up to 10,000 with an exact
        reference use scipy's exact distribution; otherwise the asymptotic one.
    """
    if reference.exact and max(reference.n, current.size) <= _SCIPY_EXACT_MAX:
        result = stats.ks_2samp(reference.values, current)
        return float(result.statistic), float(result.pvalue)
    d = _ks_statistic(reference, current)
    larger, smaller = sorted([float(reference.n), float(current.size)], reverse=True)
    en = larger * smaller / (larger + smaller)
    p_value = float(np.clip(stats.kstwo.sf(d, np.round(en)), 0.0, 1.0))
    return d, p_value


def wasserstein(reference: SortedSample, current: FloatArray) -> float:
    """Wasserstein-1 distance, as ``scipy.stats.wasserstein_distance`` (to ~1e-15 relative).

    Integrated through the two quantile functions in O(m + k) for k distinct
    reference values, exact or sketched.
    """
    return _wasserstein_quantiles(reference, current)


def _wasserstein_quantiles(reference: SortedSample, current: FloatArray) -> float:
    # W1 = integral over t in (0, 1] of |Q_ref(t) - Q_cur(t)|.  In units of 1/(n m),
    # current cell j covers (j n, (j+1) n] with value current[j]; reference step k
    # covers (E[k-1], E[k]] with value values[k], where E = cum * m.  Give each cell
    # the reference value at its right end (np.repeat), then correct the cells that
    # a reference step boundary cuts: at most k of them.
    n, m = reference.n, current.size
    values, cum = distinct(reference)
    ends = cum * m
    whole = ends // n
    per_cell = np.repeat(values, np.diff(whole, prepend=0))
    total = float(np.abs(per_cell - current).sum()) * n
    cut = np.flatnonzero(ends[:-1] % n)
    if cut.size:
        cell = whole[cut]
        start = np.maximum(cell * n, np.concatenate(([0], ends))[cut])
        own = np.abs(values[cut] - current[cell])
        assigned = np.abs(per_cell[cell] - current[cell])
        total += float(np.dot(own - assigned, (ends[cut] - start).astype(np.float64)))
    return total / n / m


def bin_edges(ordered: FloatArray, bins: int) -> FloatArray:
    """Inner bin edges from a sorted reference: its minimum, then its quantiles at k/bins.

    Ties collapse edges, so a column with few distinct values gets fewer bins.

    Example:
        >>> bin_edges(np.arange(0.0, 101.0), 4)
        array([ 0., 25., 50., 75.])
    """
    # Linear interpolation between order statistics (numpy's default quantile
    # method), read straight off the sorted array instead of re-partitioning it.
    position = (ordered.size - 1) * np.arange(1, bins) / bins
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, ordered.size - 1)
    quantiles = ordered[low] + (position - low) * (ordered[high] - ordered[low])
    return np.unique(np.concatenate(([ordered[0]], quantiles)))


def bin_counts(ordered: FloatArray, edges: FloatArray, upper: float) -> IntArray:
    """Count sorted values per bin: below edges[0], [e_i, e_i+1), [e_last, upper], above upper.

    Values outside the reference range land in the two outer bins, so they always count.

    Example:
        >>> bin_counts(np.array([-1.0, 0.0, 0.5, 1.0, 2.0]), np.array([0.0, 0.5]), 1.0)
        array([1, 1, 2, 1])
    """
    positions = np.concatenate(
        (
            np.searchsorted(ordered, edges, side="left"),
            [np.searchsorted(ordered, upper, side="right")],
        )
    )
    return np.diff(positions, prepend=0, append=ordered.size).astype(np.int64)


def _shares(counts: npt.NDArray[Any]) -> FloatArray:
    total = float(np.sum(counts))
    return np.asarray(counts, dtype=np.float64) / total


def psi(
    reference_counts: npt.NDArray[Any], current_counts: npt.NDArray[Any], epsilon: float
) -> float:
    """Population stability index: sum of (q - p) ln(q / p) with shares floored at ``epsilon``."""
    p = np.maximum(_shares(reference_counts), epsilon)
    q = np.maximum(_shares(current_counts), epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def kl_divergence(
    reference_counts: npt.NDArray[Any], current_counts: npt.NDArray[Any], epsilon: float
) -> float:
    """KL divergence of current from reference, sum of q ln(q / p), shares floored at ``epsilon``.

    Flooring can push a near-zero sum slightly below zero; it is reported as 0.
    """
    p = np.maximum(_shares(reference_counts), epsilon)
    q = np.maximum(_shares(current_counts), epsilon)
    return max(0.0, float(np.sum(q * np.log(q / p))))


def jensen_shannon(reference_counts: npt.NDArray[Any], current_counts: npt.NDArray[Any]) -> float:
    """Jensen-Shannon distance (natural log), as ``scipy.spatial.distance.jensenshannon``.

    The same formula as scipy, except that a divergence rounded below zero gives
    0 instead of NaN.
    """
    p = _shares(reference_counts)
    q = _shares(current_counts)
    middle = (p + q) / 2.0
    divergence = float(np.sum(special.rel_entr(p, middle)) + np.sum(special.rel_entr(q, middle)))
    return float(np.sqrt(max(divergence / 2.0, 0.0)))
