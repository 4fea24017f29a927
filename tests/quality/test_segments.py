from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from steward.core import InvalidInputError
from steward.quality import CostMatrix, evaluate_segments


@pytest.fixture
def scored() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 3_000
    region = rng.choice(["north", "south", "east"], size=n)
    truth = (rng.random(size=n) < 0.3).astype(int)
    error = np.where(region == "east", 0.35, 0.08)
    flip = rng.random(size=n) < error
    predicted = np.where(flip, 1 - truth, truth)
    return pd.DataFrame({"region": region, "y": truth, "p": predicted})


def test_segments_match_sklearn_metrics_per_segment(scored: pd.DataFrame) -> None:
    report = evaluate_segments(scored.y, scored.p, segments=scored.region)
    assert report.metrics == ("accuracy", "precision", "recall", "f1")
    for segment in report.segments:
        rows = scored[scored.region == segment.segment["region"]]
        assert segment.count == len(rows)
        assert segment.values["accuracy"] == pytest.approx(skm.accuracy_score(rows.y, rows.p))
        assert segment.values["precision"] == pytest.approx(skm.precision_score(rows.y, rows.p))
        assert segment.values["recall"] == pytest.approx(skm.recall_score(rows.y, rows.p))
        assert segment.values["f1"] == pytest.approx(skm.f1_score(rows.y, rows.p))
    assert report.overall.values["accuracy"] == pytest.approx(
        skm.accuracy_score(scored.y, scored.p)
    )
    assert [s.name for s in report.flagged] == ["east"]
    assert "accuracy" in report.flagged[0].worse


def test_segments_regression_metrics_and_bias_direction() -> None:
    truth = np.array([1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0])
    predicted = truth + np.array([0.1, -0.1, 0.1, -0.1, 2.0, 2.0, 2.0, 2.0])
    segments = ["a"] * 4 + ["b"] * 4
    report = evaluate_segments(
        truth, predicted, segments=segments, task="regression", min_segment_size=1
    )
    b = report.segments[1]
    assert b.values["mae"] == pytest.approx(2.0)
    assert b.values["rmse"] == pytest.approx(2.0)
    assert b.values["bias"] == pytest.approx(2.0)
    assert set(b.worse) == {"mae", "rmse", "bias", "r2"}
    assert report.segments[0].worse == ()
    assert report.overall.values["r2"] == pytest.approx(skm.r2_score(truth, predicted))


def test_segments_custom_metrics_and_cost_matrix(scored: pd.DataFrame) -> None:
    cost = CostMatrix.binary(false_positive=5.0, false_negative=50.0)
    report = evaluate_segments(
        scored.y,
        scored.p,
        segments=scored[["region"]],
        metrics={"balanced": skm.balanced_accuracy_score, "cost": cost},
    )
    east = next(s for s in report.segments if s.segment["region"] == "east")
    assert set(east.worse) == {"balanced", "cost"}
    rows = scored[scored.region == "east"]
    fp = int(((rows.y == 0) & (rows.p == 1)).sum())
    fn = int(((rows.y == 1) & (rows.p == 0)).sum())
    assert east.values["cost"] == pytest.approx((5 * fp + 50 * fn) / len(rows))


def test_segments_small_segments_are_never_flagged() -> None:
    report = evaluate_segments([1, 1, 1, 0], [1, 1, 1, 1], segments=["a", "a", "a", "b"])
    assert all(s.small for s in report.segments)
    assert report.flagged == ()


def test_segments_undefined_values_are_none() -> None:
    report = evaluate_segments([0, 0, 1, 1], [0, 0, 1, 1], segments=["a", "a", "b", "b"])
    a = report.segments[0]
    assert a.values["precision"] is None
    assert a.values["recall"] is None
    assert report.to_dict()["segments"][0]["values"]["precision"] is None


def test_cost_matrix_multiclass_and_errors() -> None:
    cost = CostMatrix(("a", "b", "c"), ((0, 1, 2), (3, 0, 4), (5, 6, 0)))
    assert cost.total_cost(["a", "b", "c", "c"], ["b", "c", "a", "c"]) == 1 + 4 + 5
    assert cost(["a", "b"], ["a", "c"]) == 2.0
    with pytest.raises(InvalidInputError, match="not in the cost matrix"):
        cost(["a"], ["z"])
    with pytest.raises(InvalidInputError, match="must be 2x2"):
        CostMatrix((0, 1), ((0, 1),))
    with pytest.raises(InvalidInputError, match="distinct labels"):
        CostMatrix((0, 0), ((0, 1), (1, 0)))
    with pytest.raises(InvalidInputError, match="zero predictions"):
        cost([], [])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics": ["accuracy", "auc"]}, r"unknown metric\(s\) \['auc'\]"),
        ({"metrics": "accuracy"}, "unknown metric"),
        ({"metrics": {"x": 3}}, "not callable"),
        ({"task": "ranking"}, "task must be one of"),
    ],
)
def test_segments_reject_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        evaluate_segments([1, 0], [1, 0], segments=["a", "b"], **kwargs)  # type: ignore[arg-type]
