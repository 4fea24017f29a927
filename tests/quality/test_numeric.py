from __future__ import annotations

import numpy as np
import pytest
from scipy import spatial, stats

from steward.quality._numeric import (
    SortedSample,
    bin_counts,
    bin_edges,
    distinct,
    jensen_shannon,
    kl_divergence,
    ks_test,
    psi,
    sketch,
    wasserstein,
)


def exact(values: np.ndarray) -> SortedSample:
    ordered = np.sort(values)
    return SortedSample(ordered, None, ordered.size)


SIZES = [
    (1, 1),
    (1, 7),
    (13, 5),
    (50, 70),
    (500, 800),
    (3_000, 3_000),
    (9_000, 12_000),
    (40_000, 25_000),
]


@pytest.mark.parametrize(("n", "m"), SIZES)
@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_ks_test_equals_scipy_bit_for_bit(n: int, m: int, shift: float) -> None:
    rng = np.random.default_rng(n * 31 + m)
    a, b = rng.normal(size=n), rng.normal(shift, size=m)
    statistic, p_value = ks_test(exact(a), np.sort(b))
    expected = stats.ks_2samp(a, b)
    assert statistic == expected.statistic
    assert p_value == expected.pvalue


@pytest.mark.parametrize(("n", "m"), [(30, 40), (20_000, 15_000), (60_000, 60_000)])
def test_ks_test_equals_scipy_with_heavy_ties(n: int, m: int) -> None:
    rng = np.random.default_rng(n)
    a = rng.integers(0, 12, size=n).astype(float)
    b = rng.integers(0, 13, size=m).astype(float)
    assert ks_test(exact(a), np.sort(b)) == tuple(stats.ks_2samp(a, b)[:2])


def test_ks_test_asymptotic_path_is_used_above_scipy_exact_limit() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=10_001), rng.normal(size=300)
    statistic, p_value = ks_test(exact(a), np.sort(b))
    expected = stats.ks_2samp(a, b, method="asymp")
    assert (statistic, p_value) == (expected.statistic, expected.pvalue)


@pytest.mark.parametrize(("n", "m"), [(1, 1), (5, 9), (1_000, 700), (50_000, 80_000)])
def test_wasserstein_equals_scipy(n: int, m: int) -> None:
    rng = np.random.default_rng(n + m)
    a, b = rng.exponential(size=n), rng.exponential(1.3, size=m)
    expected = stats.wasserstein_distance(a, b)
    assert wasserstein(exact(a), np.sort(b)) == pytest.approx(expected, rel=1e-12)


def test_wasserstein_equals_scipy_with_ties() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 5, size=4_000).astype(float)
    b = rng.integers(1, 7, size=3_000).astype(float)
    expected = stats.wasserstein_distance(a, b)
    assert wasserstein(exact(a), np.sort(b)) == pytest.approx(expected, rel=1e-12)


def test_distinct_counts_values_at_or_below_each_distinct_value() -> None:
    values, cum = distinct(exact(np.array([5.0, 1.0, 2.0, 2.0, 2.0])))
    assert values.tolist() == [1.0, 2.0, 5.0]
    assert cum.tolist() == [1, 4, 5]
    sample, _, _ = sketch(np.arange(10.0), 4)
    assert [a.tolist() for a in distinct(sample)] == [[0.0, 3.0, 6.0, 9.0], [1, 4, 7, 10]]


@pytest.mark.parametrize(("n", "m"), [(20_000, 30_000), (50_000, 7), (3, 40_000)])
def test_ks_statistic_over_either_side_agrees_with_scipy_beyond_exact_limit(n: int, m: int) -> None:
    rng = np.random.default_rng(n + 2 * m)
    a = np.round(rng.normal(size=n), 2)
    b = np.round(rng.normal(0.1, size=m), 2)
    assert ks_test(exact(a), np.sort(b)) == tuple(stats.ks_2samp(a, b)[:2])


def test_wasserstein_of_a_weighted_sketch_matches_scipy_weights() -> None:
    rng = np.random.default_rng(6)
    reference = np.sort(np.round(rng.normal(size=5_000), 1))
    sample, _, _ = sketch(reference, 50)
    current = np.sort(rng.normal(0.2, size=3_001))
    expected = stats.wasserstein_distance(sample.values, current, u_weights=sample.weights())
    assert wasserstein(sample, current) == pytest.approx(expected, rel=1e-12)


def test_sketch_keeps_exact_ranks_and_bounds_its_error() -> None:
    rng = np.random.default_rng(11)
    reference = np.sort(rng.normal(size=200_000))
    current = np.sort(rng.normal(0.01, size=150_000))
    sample, ks_error, w_error = sketch(reference, 2_000)
    assert sample.values.size <= 2_000
    assert sample.cum is not None
    assert sample.cum[-1] == reference.size
    assert np.array_equal(sample.count_le(sample.values), sample.cum)
    assert 0 < ks_error <= 1.5 / 2_000
    d_exact, _ = ks_test(exact(reference), current)
    d_sketch, _ = ks_test(sample, current)
    assert abs(d_sketch - d_exact) <= ks_error
    w_exact = stats.wasserstein_distance(reference, current)
    assert abs(wasserstein(sample, current) - w_exact) <= w_error + 1e-12


def test_sketch_with_ties_weights_sum_to_n() -> None:
    values = np.sort(np.repeat(np.arange(10.0), 1_000))
    sample, ks_error, _ = sketch(values, 100)
    assert sample.weights().sum() == values.size
    assert sample.values.tolist() == list(np.arange(10.0))
    assert ks_error == 0.0


def test_bin_edges_start_at_the_minimum_and_collapse_ties() -> None:
    assert bin_edges(np.arange(0.0, 101.0), 4).tolist() == [0.0, 25.0, 50.0, 75.0]
    assert bin_edges(np.array([2.0, 2.0, 2.0]), 10).tolist() == [2.0]


def test_bin_counts_have_outer_bins_for_out_of_range_values() -> None:
    counts = bin_counts(np.array([-1.0, 0.0, 0.5, 1.0, 2.0, 3.0]), np.array([0.0, 0.5]), 1.0)
    assert counts.tolist() == [1, 1, 2, 2]
    assert counts.sum() == 6


def test_constant_reference_bins_catch_shifts_both_ways() -> None:
    edges = bin_edges(np.array([5.0] * 10), 10)
    assert bin_counts(np.array([4.0, 5.0, 6.0]), edges, 5.0).tolist() == [1, 1, 1]


def test_psi_matches_textbook_formula_with_epsilon() -> None:
    ref, cur = np.array([50, 30, 20, 0]), np.array([40, 30, 20, 10])
    p = np.maximum(ref / 100, 1e-4)
    q = np.maximum(cur / 100, 1e-4)
    assert psi(ref, cur, 1e-4) == pytest.approx(float(np.sum((q - p) * np.log(q / p))), rel=1e-12)
    assert psi(ref, ref, 1e-4) == 0.0


def test_psi_and_jensen_shannon_are_symmetric_in_the_shares() -> None:
    ref, cur = np.array([50, 30, 20, 0]), np.array([40, 30, 20, 10])
    assert psi(ref, cur, 1e-4) == pytest.approx(psi(cur, ref, 1e-4), rel=1e-15)
    assert jensen_shannon(ref, cur) == pytest.approx(jensen_shannon(cur, ref), rel=1e-15)


def test_kl_is_not_symmetric_but_never_negative() -> None:
    ref, cur = np.array([90, 10, 0]), np.array([10, 10, 80])
    assert kl_divergence(ref, cur, 1e-4) != kl_divergence(cur, ref, 1e-4)
    assert kl_divergence(ref, ref, 1e-4) == 0.0
    assert kl_divergence(np.array([1, 0]), np.array([1, 1e-9]), 1e-4) >= 0.0


def test_jensen_shannon_matches_scipy() -> None:
    ref, cur = np.array([5, 3, 0, 2]), np.array([1, 3, 4, 2])
    assert jensen_shannon(ref, cur) == pytest.approx(
        spatial.distance.jensenshannon(ref, cur), rel=1e-15
    )
    assert jensen_shannon(ref, ref) == 0.0
