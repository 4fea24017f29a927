from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

from steward.core import InvalidInputError, NotFoundError
from steward.quality import DriftDetector, DriftReport, NotFittedError, ReferenceProfile


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(42)
    n = 3_000
    reference = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "y": rng.exponential(size=n),
            "c": rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2]),
            "flag": rng.integers(0, 2, size=n),
        }
    )
    current = pd.DataFrame(
        {
            "x": rng.normal(0.8, size=n),
            "y": rng.exponential(size=n),
            "c": rng.choice(["a", "b", "c", "d"], size=n, p=[0.2, 0.3, 0.2, 0.3]),
            "flag": rng.integers(0, 2, size=n),
        }
    )
    return reference, current


def test_detector_init_only_stores_arguments() -> None:
    detector = DriftDetector(method="nonsense", threshold=-3)
    assert detector.method == "nonsense"
    assert detector.threshold == -3
    assert not hasattr(detector, "profile_")


def test_detector_score_before_fit_raises_not_fitted() -> None:
    with pytest.raises(NotFittedError, match="fit"):
        DriftDetector().score([1.0, 2.0])


def test_detector_get_set_params_and_repr() -> None:
    detector = DriftDetector(method="psi", threshold=0.2)
    params = detector.get_params()
    assert params["method"] == "psi"
    assert params["threshold"] == 0.2
    assert detector.set_params(bins=20) is detector
    assert detector.bins == 20
    assert repr(detector) == "DriftDetector(method='psi', threshold=0.2, bins=20)"
    with pytest.raises(InvalidInputError, match="unknown parameter 'nope'"):
        detector.set_params(nope=1)


def test_detector_defaults_pick_evidently_methods(
    frames: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    reference, current = frames
    report = DriftDetector().fit(reference).score(current)
    assert isinstance(report, DriftReport)
    methods = {r.column: r.method for r in report}
    assert methods == {"x": "wasserstein_norm", "y": "wasserstein_norm", "c": "js", "flag": "js"}
    assert set(report.drifted_columns) == {"x", "c"}
    assert report.share_drifted == 0.5
    assert report.dataset_drift


def test_detector_small_samples_use_tests(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, current = frames
    report = DriftDetector().fit(reference.head(500)).score(current.head(500))
    methods = {r.column: r.method for r in report}
    assert methods == {"x": "ks", "y": "ks", "c": "chi2", "flag": "chi2"}
    x = report["x"]
    assert x.p_value == stats.ks_2samp(reference.x.head(500), current.x.head(500)).pvalue


def test_detector_chi2_equals_scipy_contingency(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, current = frames
    result = DriftDetector(method="chi2", columns=["c"]).fit(reference).score(current)["c"]
    ref_counts = reference.c.value_counts()
    cur_counts = current.c.value_counts()
    keys = ["a", "b", "c", "d"]
    table = np.array([[ref_counts.get(k, 0) for k in keys], [cur_counts.get(k, 0) for k in keys]])
    expected = stats.chi2_contingency(table)
    assert result.statistic == expected.statistic
    assert result.p_value == expected.pvalue
    assert result.unseen_examples == ("d",)
    assert result.unseen_share == pytest.approx((current.c == "d").mean())


def test_detector_method_by_kind_and_column_overrides(
    frames: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    reference, current = frames
    detector = DriftDetector(
        method={"numeric": "ks", "categorical": "chi2"},
        column_methods={"y": ("psi", 0.2), "flag": "js"},
    )
    report = detector.fit(reference).score(current)
    assert [(r.column, r.method, r.threshold) for r in report] == [
        ("x", "ks", 0.05),
        ("y", "psi", 0.2),
        ("c", "chi2", 0.05),
        ("flag", "js", 0.1),
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "magic"}, "unknown drift method 'magic'"),
        ({"method": "auto", "threshold": 0.1}, "needs an explicit method"),
        ({"method": "ks", "threshold": 1.5}, r"p-value in \(0, 1\)"),
        ({"method": "psi", "threshold": -1.0}, "must be positive"),
        ({"method": "wasserstein"}, "needs an explicit threshold"),
        ({"method": {"numbers": "ks"}}, "keys must be 'numeric'/'categorical'"),
        ({"epsilon": 0}, "epsilon must be a number"),
        ({"bins": 0}, "bins must be an int >= 1"),
        ({"column_methods": {"zzz": "ks"}}, r"column\(s\) \['zzz'\]"),
        ({"column_methods": {"x": ("ks",)}}, r"must be a method or \(method, threshold\)"),
        ({"n_jobs": 0}, "n_jobs must be"),
    ],
)
def test_detector_rejects_bad_parameters(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        DriftDetector(**kwargs).fit({"x": [1.0, 2.0, 3.0]})  # type: ignore[arg-type]


def test_detector_rejects_method_that_does_not_fit_the_column_type(
    frames: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    reference, _ = frames
    with pytest.raises(InvalidInputError, match=r"'c' \(categorical\): ks needs numbers"):
        DriftDetector(method="ks").fit(reference)
    with pytest.raises(InvalidInputError, match="chi2 needs categories"):
        DriftDetector(method="chi2").fit(reference)


def test_detector_reports_missing_and_extra_columns(
    frames: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    reference, current = frames
    report = DriftDetector().fit(reference).score(current.drop(columns=["y"]).assign(z=1.0))
    assert report.missing_columns == ("y",)
    assert report.extra_columns == ("z",)
    assert "y" not in report
    assert not report.complete
    summary = report.summary()
    assert "missing in current: y" in summary
    assert "only in current: z" in summary
    assert report.to_dict()["missing_columns"] == ["y"]
    with pytest.raises(NotFoundError, match="no drift result for column 'y'"):
        report["y"]


def test_detector_with_column_subset_ignores_other_current_columns(
    frames: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    reference, current = frames
    report = DriftDetector(columns=["x"]).fit(reference).score(current)
    assert [r.column for r in report] == ["x"]
    assert report.extra_columns == ()
    with pytest.raises(InvalidInputError, match=r"no column\(s\) \['nope'\]"):
        DriftDetector(columns=["nope"]).fit(reference)


def test_detector_flags_missing_rate_shift() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=2_000)
    current = rng.normal(size=2_000)
    current[:400] = np.nan
    result = DriftDetector().fit(reference).score(current)["value"]
    assert result.missing_shift
    assert result.current_missing_rate == pytest.approx(0.2)
    assert result.reference_missing_rate == 0.0
    assert result.current_count == 1_600
    assert not result.drifted


def test_detector_treats_inf_as_missing() -> None:
    reference = np.array([1.0, 2.0, np.inf, 3.0, -np.inf])
    result = DriftDetector(method="ks").fit(reference).score([1.0, 2.0, 3.0])["value"]
    assert result.reference_count == 3
    assert result.reference_missing_rate == pytest.approx(0.4)
    assert result.statistic == 0.0
    assert result.p_value == 1.0


def test_detector_all_null_columns_give_a_status_not_a_verdict() -> None:
    reference = {"a": [None, None, None], "b": [1.0, 2.0, 3.0]}
    current = {"a": [1.0, 2.0, 3.0], "b": [np.nan, np.nan, np.nan]}
    report = DriftDetector().fit(reference).score(current)
    assert report["a"].status == "empty_reference"
    assert report["b"].status == "empty_current"
    for result in report:
        assert result.statistic is None
        assert result.method == "none"
        assert result.drifted is False
        assert result.missing_shift is True


def test_detector_constant_and_single_row_columns_are_defined() -> None:
    same = DriftDetector().fit([3.0] * 50).score([3.0] * 40)["value"]
    assert same.statistic == 0.0
    assert not same.drifted
    moved = DriftDetector(method="wasserstein_norm").fit([3.0] * 50).score([3.5] * 40)["value"]
    assert moved.statistic == pytest.approx(0.5 / 0.001)
    assert moved.drifted
    single = DriftDetector(method="ks").fit([1.0]).score([2.0])["value"]
    assert (single.statistic, single.p_value) == (1.0, 1.0)
    for method in ("psi", "kl", "js", "wasserstein_norm"):
        result = DriftDetector(method=method).fit([1.0]).score([1.0])["value"]
        assert result.statistic is not None
        assert np.isfinite(result.statistic)


def test_detector_rejects_empty_tables() -> None:
    with pytest.raises(InvalidInputError, match="reference data has no rows"):
        DriftDetector().fit({"x": []})
    detector = DriftDetector().fit({"x": [1.0, 2.0]})
    with pytest.raises(InvalidInputError, match="current data has no rows"):
        detector.score({"x": []})
    with pytest.raises(InvalidInputError, match="no columns"):
        DriftDetector().fit({})


def test_detector_type_mismatch_counts_as_drift() -> None:
    detector = DriftDetector().fit({"x": [1.0, 2.0, 3.0]})
    result = detector.score({"x": ["a", "b", "c"]})["x"]
    assert result.status == "type_mismatch"
    assert result.drifted
    assert result.statistic is None


def test_detector_accepts_every_input_kind(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=400)
    c = rng.choice(["u", "v"], size=400)
    table = pa.table({"x": x, "c": c})
    pq.write_table(table, tmp_path / "data.parquet", row_group_size=100)
    pd.DataFrame({"x": x, "c": c}).to_csv(tmp_path / "data.csv", index=False)
    inputs = [
        pd.DataFrame({"x": x, "c": c}),
        table,
        table.to_batches()[0],
        {"x": x.tolist(), "c": c.tolist()},
        tmp_path / "data.parquet",
        str(tmp_path / "data.csv"),
    ]
    expected = DriftDetector().fit(inputs[0]).score(inputs[0]).to_dict()
    for data in inputs:
        assert DriftDetector().fit(data).score(inputs[0]).to_dict() == expected


def test_detector_one_dimensional_inputs_are_one_column_named_value() -> None:
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=300), rng.normal(size=300)
    for reference in (a, a.tolist(), pd.Series(a, name="ignored"), pa.array(a)):
        report = DriftDetector(method="ks").fit(reference).score(b)
        assert [r.column for r in report] == ["value"]
        assert report["value"].statistic == stats.ks_2samp(a, b).statistic


def test_detector_rejects_unsupported_inputs() -> None:
    with pytest.raises(InvalidInputError, match="shape"):
        DriftDetector().fit(np.zeros((3, 2)))
    with pytest.raises(InvalidInputError, match="unsupported input of type int"):
        DriftDetector().fit(5)
    with pytest.raises(InvalidInputError, match="different lengths"):
        DriftDetector().fit({"a": [1, 2], "b": [1]})
    with pytest.raises(InvalidInputError, match="no such file"):
        DriftDetector().fit("/nonexistent/data.parquet")
    with pytest.raises(InvalidInputError, match="duplicate column names"):
        DriftDetector().fit(pd.DataFrame([[1, 2]], columns=["a", "a"]))


def test_detector_skips_nested_columns_and_reports_them() -> None:
    table = pa.table({"x": [1.0, 2.0, 3.0], "tags": [[1], [2], [3]]})
    report = DriftDetector().fit(table).score(table)
    assert [r.column for r in report] == ["x"]
    assert report.skipped_columns == {"tags": "unsupported type list<item: int64>"}
    assert report.extra_columns == ()


def test_detector_column_types_override_kind() -> None:
    data = {"zip": [10, 20, 10, 30, 20, 10]}
    detector = DriftDetector(column_types={"zip": "categorical"}).fit(data)
    assert detector.profile_.columns["zip"].kind == "categorical"
    result = detector.score({"zip": [10, 40, 40, 40, 40, 40]})["zip"]
    assert result.method == "chi2"
    assert result.unseen_examples == (40,)
    with pytest.raises(InvalidInputError, match="column_types"):
        DriftDetector(column_types={"zip": "text"}).fit(data)  # type: ignore[dict-item]


def test_detector_discrete_numeric_column_uses_categorical_methods() -> None:
    rng = np.random.default_rng(1)
    reference = rng.integers(0, 3, size=5_000)
    current = rng.integers(0, 4, size=5_000)
    result = DriftDetector().fit(reference).score(current)["value"]
    assert result.method == "js"
    assert result.unseen_examples == (3.0,)
    assert result.drifted


def test_detector_fits_a_stored_profile(
    tmp_path: Path, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    reference, current = frames
    fitted = DriftDetector(method={"numeric": "ks"}).fit(reference)
    fitted.profile_.save(tmp_path / "ref.npz")
    loaded = ReferenceProfile.load(tmp_path / "ref.npz")
    again = DriftDetector(method={"numeric": "ks"}).fit(loaded)
    assert again.score(current).to_dict() == fitted.score(current).to_dict()
    subset = DriftDetector(columns=["x"]).fit(loaded).score(current)
    assert [r.column for r in subset] == ["x"]


def test_detector_reference_above_exact_limit_is_sketched_and_marked_approximate() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=5_000), rng.normal(0.02, size=4_000)
    detector = DriftDetector(method="ks", exact_limit=1_000, sketch_size=500).fit(a)
    profile = detector.profile_.columns["value"]
    result = detector.score(b)["value"]
    assert result.approximate
    assert abs(result.statistic - stats.ks_2samp(a, b).statistic) <= profile.ks_error


def test_detector_threads_give_the_same_report(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, current = frames
    serial = DriftDetector(n_jobs=1, memory_budget=1).fit(reference).score(current)
    threaded = DriftDetector(n_jobs=4).fit(reference).score(current)
    assert serial.to_dict() == threaded.to_dict()


def test_detector_compares_dates_times_and_durations_as_numbers() -> None:
    import datetime as dt

    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(40)]
    table = pa.table(
        {
            "day": pa.array(days),
            "at": pa.array(
                [dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=i) for i in range(40)]
            ),
            "took": pa.array([dt.timedelta(seconds=i) for i in range(40)]),
        }
    )
    later = pa.table({"day": pa.array([d + dt.timedelta(days=365) for d in days])})
    report = DriftDetector(method="ks").fit(table).score(table)
    assert [(r.column, r.statistic) for r in report] == [("day", 0.0), ("at", 0.0), ("took", 0.0)]
    moved = DriftDetector(method="ks", columns=["day"]).fit(table).score(later)["day"]
    assert (moved.statistic, moved.unseen_share) == (1.0, 1.0)
