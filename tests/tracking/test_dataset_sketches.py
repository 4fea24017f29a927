from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steward.tracking._dataset_sketches import (
    BottomKSample,
    DistinctSketch,
    GridHistogram,
    Moments,
    TopValues,
    hash_binary,
    hash_words,
)

finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)


def split(values: list[float], cuts: list[int]) -> list[np.ndarray]:
    """Cut ``values`` at the given positions (any order, duplicates allowed)."""
    bounds = sorted({0, len(values), *(c % (len(values) + 1) for c in cuts)})
    return [np.array(values[a:b], dtype=np.float64) for a, b in itertools.pairwise(bounds)]


@settings(max_examples=150, deadline=None)
@given(st.lists(finite, min_size=1, max_size=300), st.lists(st.integers(0, 300), max_size=6))
def test_moments_merged_over_batches_match_numpy(values: list[float], cuts: list[int]) -> None:
    moments = Moments()
    for part in split(values, cuts):
        moments.update(part)
    data = np.array(values)
    scale = max(1.0, float(np.abs(data).max()))
    assert moments.count == data.size
    assert moments.mean == pytest.approx(float(data.mean()), rel=1e-9, abs=1e-9 * scale)
    assert moments.std() == pytest.approx(float(data.std()), rel=1e-6, abs=1e-6 * scale)


def grid_of(parts: list[np.ndarray], size: int = 64) -> GridHistogram:
    grid = GridHistogram(size=size)
    for part in parts:
        if part.size:
            grid.update(part, float(part.min()), float(part.max()))
    return grid


@settings(max_examples=200, deadline=None)
@given(
    st.lists(finite, min_size=1, max_size=200),
    st.lists(st.integers(0, 200), max_size=5),
    st.lists(st.integers(0, 200), max_size=5),
    st.integers(1, 12),
)
def test_grid_histogram_is_exact_and_independent_of_batching(
    values: list[float], cuts_a: list[int], cuts_b: list[int], bins: int
) -> None:
    a, b = grid_of(split(values, cuts_a)), grid_of(split(values, cuts_b))
    assert (a.exponent, a.base, a.counts.tolist()) == (b.exponent, b.base, b.counts.tolist())
    edges, counts = a.histogram(bins)
    assert (edges, counts) == b.histogram(bins)
    assert sum(counts) == len(values) and len(counts) <= bins
    assert edges[0] == min(values) and edges[-1] == max(values)
    if min(values) < max(values):
        assert all(x < y for x, y in itertools.pairwise(edges))
        assert counts == np.histogram(values, bins=edges)[0].tolist()


@settings(max_examples=100, deadline=None)
@given(st.lists(finite, min_size=2, max_size=200, unique=True), st.floats(0.0, 1.0))
def test_grid_bracket_contains_the_order_statistic(values: list[float], p: float) -> None:
    grid = grid_of([np.array(values)])
    rank = round(p * (len(values) - 1))
    low, high = grid.bracket(rank)
    assert low <= sorted(values)[rank] <= high


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=300, unique=True),
    st.lists(st.integers(0, 300), max_size=6),
    st.integers(1, 40),
)
def test_bottom_k_sample_keeps_the_lowest_priorities_for_any_batching(
    priorities: list[int], cuts: list[int], capacity: int
) -> None:
    values = np.arange(len(priorities), dtype=np.float64)
    order = np.array(priorities, dtype=np.uint64)
    sample = BottomKSample(capacity)
    bounds = [len(p) for p in split(list(values), cuts)]
    start = 0
    for length in bounds:
        sample.offer(order[start : start + length], values[start : start + length])
        start += length
    expected = np.sort(values[np.argsort(order)[:capacity]])
    assert sample.smallest(capacity).tolist() == expected.tolist()
    assert sample.size == min(capacity, len(priorities))
    assert sample.smallest(1).tolist() == [values[np.argmin(order)]]


def test_distinct_sketch_is_exact_below_capacity_and_close_above() -> None:
    rng = np.random.default_rng(1)
    small = DistinctSketch(capacity=1_000)
    for _ in range(5):
        small.update(hash_words(rng.integers(0, 900, size=2_000)))
    assert small.estimate() == (900, True)
    large = DistinctSketch(capacity=1_024)
    for start in range(0, 200_000, 10_000):
        large.update(hash_words(np.arange(start, start + 10_000) % 150_000))
    count, exact = large.estimate()
    assert not exact
    assert count == pytest.approx(150_000, rel=0.1)  # 1/sqrt(1024) ~ 3% standard error


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(0, 30), min_size=1, max_size=400),
    st.lists(st.integers(0, 400), max_size=6),
    st.integers(1, 8),
)
def test_top_values_meet_the_misra_gries_bound(
    values: list[int], cuts: list[int], capacity: int
) -> None:
    top = TopValues(capacity)
    for part in split([float(v) for v in values], cuts):
        if part.size:
            counted = Counter(part.astype(np.int64).tolist())
            keys = sorted(counted)
            top.update(
                pa.array(keys, pa.int64()), np.array([counted[k] for k in keys], dtype=np.int64)
            )
    truth = Counter(values)
    estimated = dict(top.most_common(len(truth)))
    slack = len(values) / (capacity + 1)
    for value, count in truth.items():
        assert count - slack <= estimated.get(value, 0) <= count
    if len(truth) <= capacity:
        assert top.exact and estimated == dict(truth)


def test_top_values_order_by_count_then_value() -> None:
    top = TopValues(10)
    top.update(pa.array(["b", "a", "c"]), np.array([2, 2, 5]))
    assert top.most_common(2) == [("c", 5), ("a", 2)]
    assert top.most_common(0) == []


def test_hash_binary_depends_on_content_only() -> None:
    words = ["", "a", "ab", "ba", "\x00", "\x00\x00", "é", "a" * 1_000]
    plain = hash_binary(pa.array(words))
    assert len(set(plain.tolist())) == len(words)
    assert hash_binary(pa.array(words, pa.large_string())).tolist() == plain.tolist()
    assert hash_binary(pa.array(["zz", *words]).slice(1)).tolist() == plain.tolist()
    assert hash_binary(pa.array(words, pa.binary())).tolist() == plain.tolist()


def test_hash_words_normalizes_zero_and_nan() -> None:
    hashes = hash_words(np.array([0.0, -0.0, np.nan, -np.nan, 1.0]))
    assert hashes[0] == hashes[1] and hashes[2] == hashes[3]
    assert len(set(hashes.tolist())) == 3
