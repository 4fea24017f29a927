"""Vectorized two-sample statistics over sorted numeric samples.

The reference side is a :class:`SortedSample`: either every finite value in
ascending order (exact) or a weighted quantile sketch of it.  The current side
is always the exact, sorted current values.  Working on sorted arrays makes
each statistic a few ``searchsorted`` calls instead of a sort of the pooled
data, which is what lets a stored reference profile be compared against new
data in O(m log m + n).

Exactness: with an exact reference, the KS statistic and p-value equal
``scipy.stats.ks_2samp`` and the Wasserstein distance equals
``scipy.stats.wasserstein_distance`` bit for bit, because the same integer
counts are divided and summed in the same order (see the comments below).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special, stats

__all__ = [
    "SortedSample",
    "bin_counts",
    "bin_edges",
    "jensen_shannon",
    "kl_divergence",
    "ks_test",
    "psi",
    "sketch",
    "tie_ranks",
    "wasserstein",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_SCIPY_EXACT_MAX = 10_000  # ks_2samp's MAX_AUTO_N: at or below it, scipy computes exact p-values
_vecdot: Any = getattr(np, "vecdot", None)


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

    def weights(self) -> IntArray:
        """Integer weight of each stored value."""
        if self.cum is None:
            return np.ones(self.values.size, dtype=np.int64)
        return np.diff(self.cum, prepend=0)


def sketch(ordered: FloatArray, size: int) -> tuple[SortedSample, float, float]:
    """Keep ``size`` evenly spaced order statistics of a sorted sample, with exact ranks.

    Example:
        ``sketch(np.arange(10.0), 4)`` keeps 0, 3, 6 and 9 with cumulative
        counts 1, 4, 7 and 10.

    Returns:
        The sketch, the largest KS error it can add (CDF units) and the largest
        Wasserstein error it can add (data units).
    """
    n = ordered.size
    index = np.unique(np.round(np.linspace(0, n - 1, num=min(size, n))).astype(np.int64))
    values = np.unique(ordered[index])
    cum = np.searchsorted(ordered, values, side="right").astype(np.int64)
    sample = SortedSample(values, cum, n)
    # The sketch CDF is exact at stored values and a step below the truth in between:
    # the gap is the count of values strictly between two stored values.
    below_next = np.searchsorted(ordered, values[1:], side="left")
    ks_error = float(np.max(below_next - cum[:-1], initial=0)) / n
    # W1(sketch, exact) is the area between the two CDFs.
    exact_cdf = np.arange(1, n + 1, dtype=np.float64)[:-1]
    sketch_cdf = sample.count_le(ordered[:-1]).astype(np.float64)
    w_error = float(np.dot(exact_cdf - sketch_cdf, np.diff(ordered))) / n
    return sample, ks_error, max(w_error, 0.0)


def tie_ranks(ordered: FloatArray) -> tuple[IntArray, IntArray]:
    """For each element of a sorted array, the count of elements ``<`` and ``<=`` it.

    Example:
        >>> tie_ranks(np.array([1.0, 2.0, 2.0, 5.0]))
        (array([0, 1, 1, 3]), array([1, 3, 3, 4]))
    """
    m = ordered.size
    starts = np.flatnonzero(np.diff(ordered)) + 1
    if starts.size == max(m - 1, 0):
        return np.arange(m, dtype=np.int64), np.arange(1, m + 1, dtype=np.int64)
    bounds = np.concatenate(([0], starts, [m])).astype(np.int64)
    lengths = np.diff(bounds)
    return np.repeat(bounds[:-1], lengths), np.repeat(bounds[1:], lengths)


def _ks_statistic(reference: SortedSample, current: FloatArray) -> float:
    # scipy evaluates F_ref - F_cur at every pooled point.  Between two consecutive
    # current values F_cur is constant and F_ref rises, so the extremes of the
    # difference sit at the current points themselves (a) or just before them
    # (b: the largest reference point below); both are the same integer counts
    # scipy divides, so the extreme values are the same floats.
    n, m = reference.n, current.size
    left_cur, right_cur = tie_ranks(current)
    at = reference.count_le(current) / n - right_cur / m
    before = reference.count_lt(current) / n - left_cur / m
    return float(max(0.0, at.max(), before.max(), -at.min(), -before.min()))


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
    """Wasserstein-1 distance, as ``scipy.stats.wasserstein_distance`` for an exact reference."""
    k, m = reference.values.size, current.size
    # Merge the two sorted runs by position instead of re-sorting the pool: a stable
    # merge puts a reference value before equal current values.
    at_ref = np.arange(k) + np.searchsorted(current, reference.values, side="left")
    at_cur = np.arange(m) + np.searchsorted(reference.values, current, side="right")
    pooled = np.empty(k + m, dtype=np.float64)
    pooled[at_ref] = reference.values
    pooled[at_cur] = current
    ref_weight = np.zeros(k + m, dtype=np.int64)
    ref_weight[at_ref] = reference.weights()
    is_cur = np.zeros(k + m, dtype=np.int64)
    is_cur[at_cur] = 1
    ref_cdf = np.cumsum(ref_weight)[:-1] / reference.n
    cur_cdf = np.cumsum(is_cur)[:-1] / m
    # Inside a run of equal values the delta is 0, so partial counts there add exact
    # zeros; elsewhere the counts equal scipy's searchsorted(..., "right").
    deltas = np.diff(pooled)
    gaps = np.abs(ref_cdf - cur_cdf)
    if _vecdot is not None:
        return float(_vecdot(gaps, deltas))
    return float(np.sum(gaps * deltas))  # pragma: no cover - numpy < 2


def bin_edges(ordered: FloatArray, bins: int) -> FloatArray:
    """Inner bin edges from a sorted reference: its minimum, then its quantiles at k/bins.

    Ties collapse edges, so a column with few distinct values gets fewer bins.

    Example:
        >>> bin_edges(np.arange(0.0, 101.0), 4)
        array([ 0., 25., 50., 75.])
    """
    probs = np.arange(1, bins) / bins
    quantiles = np.quantile(ordered, probs) if probs.size else np.empty(0)
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
