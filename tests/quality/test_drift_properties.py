"""Property-based tests: exactness against scipy, symmetry, null behaviour, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from steward.quality import DriftDetector
from steward.quality._numeric import (
    SortedSample,
    _ks_statistic,
    ks_test,
    wasserstein,
)

# scipy falls back from its exact KS distribution for some sample sizes and says so;
# scipy's own asymptotic KS divides by zero for two one-value samples (n = 0.5 rounds to 0).
pytestmark = [
    pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful"),
    pytest.mark.filterwarnings("ignore:divide by zero encountered in divide"),
]

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NUMERIC_METHODS = ("ks", "psi", "kl", "js", "wasserstein_norm")
CATEGORICAL_METHODS = ("chi2", "psi", "kl", "js")

finite = hnp.arrays(
    np.float64,
    shape=st.integers(1, 80),
    elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)
# Few distinct values, to exercise ties.
tied = hnp.arrays(
    np.float64, shape=st.integers(1, 80), elements=st.sampled_from([0.0, 1.0, 2.5, -3.0])
)
messy = hnp.arrays(
    np.float64,
    shape=st.integers(1, 40),
    elements=st.one_of(
        st.floats(-1e3, 1e3), st.just(float("nan")), st.just(float("inf")), st.just(-float("inf"))
    ),
)
labels = st.lists(
    st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"])), min_size=1, max_size=60
)


def exact(values: np.ndarray) -> SortedSample:
    ordered = np.sort(values)
    return SortedSample(ordered, None, ordered.size)


@FAST
@given(a=st.one_of(finite, tied), b=st.one_of(finite, tied))
def test_ks_matches_scipy_for_any_finite_samples(a: np.ndarray, b: np.ndarray) -> None:
    expected = stats.ks_2samp(a, b)
    assert ks_test(exact(a), np.sort(b)) == (expected.statistic, expected.pvalue)


@FAST
@given(a=st.one_of(finite, tied), b=st.one_of(finite, tied))
def test_ks_statistic_over_reference_points_equals_scipy_asymptotic(
    a: np.ndarray, b: np.ndarray
) -> None:
    assert _ks_statistic(exact(a), np.sort(b)) == stats.ks_2samp(a, b, method="asymp").statistic


@FAST
@given(a=st.one_of(finite, tied), b=st.one_of(finite, tied))
def test_wasserstein_matches_scipy_for_any_finite_samples(a: np.ndarray, b: np.ndarray) -> None:
    expected = stats.wasserstein_distance(a, b)
    scale = 1.0 + float(np.abs(a).max()) + float(np.abs(b).max())
    assert wasserstein(exact(a), np.sort(b)) == pytest.approx(expected, rel=1e-9, abs=1e-12 * scale)


@FAST
@given(a=st.one_of(finite, tied), b=st.one_of(finite, tied))
def test_ks_and_wasserstein_are_symmetric(a: np.ndarray, b: np.ndarray) -> None:
    assert ks_test(exact(a), np.sort(b))[0] == ks_test(exact(b), np.sort(a))[0]
    forward, backward = wasserstein(exact(a), np.sort(b)), wasserstein(exact(b), np.sort(a))
    scale = 1.0 + float(np.abs(a).max()) + float(np.abs(b).max())
    assert forward == pytest.approx(backward, rel=1e-9, abs=1e-12 * scale)


@FAST
@given(
    a=st.lists(st.sampled_from("abcde"), min_size=1, max_size=50),
    b=st.lists(st.sampled_from("abcde"), min_size=1, max_size=50),
)
def test_chi2_and_js_are_symmetric(a: list[str], b: list[str]) -> None:
    for method in ("chi2", "js"):
        forward = DriftDetector(method=method).fit(a).score(b)["value"]
        backward = DriftDetector(method=method).fit(b).score(a)["value"]
        assert forward.statistic == pytest.approx(backward.statistic, rel=1e-9, abs=1e-12)
        if method == "chi2":
            assert forward.p_value == pytest.approx(backward.p_value, rel=1e-9, abs=1e-12)


@FAST
@given(a=st.one_of(finite, tied), method=st.sampled_from(NUMERIC_METHODS))
def test_identical_numeric_samples_never_drift(a: np.ndarray, method: str) -> None:
    result = DriftDetector(method=method).fit(a).score(a)["value"]
    assert result.statistic == 0.0
    assert not result.drifted
    if result.p_value is not None:
        assert result.p_value == 1.0


@FAST
@given(
    a=st.lists(st.sampled_from("abcde"), min_size=1, max_size=60),
    method=st.sampled_from(CATEGORICAL_METHODS),
)
def test_identical_categorical_samples_never_drift(a: list[str], method: str) -> None:
    result = DriftDetector(method=method).fit(a).score(a)["value"]
    assert result.statistic == pytest.approx(0.0, abs=1e-12)
    assert not result.drifted


@FAST
@given(
    seed=st.integers(0, 2**32 - 1),
    shift=st.floats(0.75, 5.0),
    method=st.sampled_from(NUMERIC_METHODS),
)
def test_shifted_samples_drift(seed: int, shift: float, method: str) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=800), rng.normal(shift, size=800)
    assert DriftDetector(method=method).fit(a).score(b)["value"].drifted


@FAST
@given(a=messy, b=messy, method=st.sampled_from(("auto", *NUMERIC_METHODS)))
def test_nan_and_inf_give_defined_results(a: np.ndarray, b: np.ndarray, method: str) -> None:
    result = DriftDetector(method=method).fit(a).score(b)["value"]
    assert isinstance(result.drifted, bool)
    for value in (result.statistic, result.p_value):
        assert value is None or math.isfinite(value)
    if result.statistic is None:
        assert result.status in ("empty_reference", "empty_current")
    finite_a, finite_b = np.isfinite(a).sum(), np.isfinite(b).sum()
    assert result.reference_count == finite_a
    assert result.current_count == finite_b
    if finite_a and finite_b:
        assert result.status == "ok"
        assert result.statistic is not None


@FAST
@given(a=labels, b=labels, method=st.sampled_from(("auto", *CATEGORICAL_METHODS)))
def test_categorical_nulls_give_defined_results(
    a: list[str | None], b: list[str | None], method: str
) -> None:
    result = DriftDetector(method=method).fit(a).score(b)["value"]
    for value in (result.statistic, result.p_value):
        assert value is None or math.isfinite(value)
    present_a = sum(v is not None for v in a)
    present_b = sum(v is not None for v in b)
    assert (result.statistic is None) == (present_a == 0 or present_b == 0)
    assert 0.0 <= result.unseen_share <= 1.0
    assert result.reference_missing_rate == pytest.approx(1 - present_a / len(a))


@settings(max_examples=30, deadline=None)
@given(
    reference_columns=st.sets(st.sampled_from("pqrstu"), min_size=1),
    current_columns=st.sets(st.sampled_from("pqrstu"), min_size=1),
)
def test_mismatched_column_sets_are_reported(
    reference_columns: set[str], current_columns: set[str]
) -> None:
    reference = {name: [1.0, 2.0, 3.0] for name in sorted(reference_columns)}
    current = {name: [1.0, 2.0, 4.0] for name in sorted(current_columns)}
    report = DriftDetector().fit(reference).score(current)
    assert {r.column for r in report} == reference_columns & current_columns
    assert set(report.missing_columns) == reference_columns - current_columns
    assert set(report.extra_columns) == current_columns - reference_columns


def test_same_distribution_false_positive_rate_is_near_alpha() -> None:
    # KS at alpha = 0.05 on 300 independent same-distribution pairs: the drift
    # count is Binomial(300, <= 0.05); 30 is beyond its 99.99th percentile.
    rng = np.random.default_rng(2024)
    drifted = 0
    for _ in range(300):
        a, b = rng.normal(size=200), rng.normal(size=200)
        drifted += DriftDetector(method="ks").fit(a).score(b)["value"].drifted
    assert drifted <= 30


@pytest.mark.parametrize("method", ["auto", "psi", "js", "wasserstein_norm"])
def test_same_distribution_large_samples_do_not_drift_on_distances(method: str) -> None:
    rng = np.random.default_rng(77)
    for _ in range(20):
        a, b = rng.normal(size=20_000), rng.normal(size=20_000)
        assert not DriftDetector(method=method).fit(a).score(b)["value"].drifted
