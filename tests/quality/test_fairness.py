from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn import metrics as fl
from hypothesis import given, settings
from hypothesis import strategies as st

from steward.core import InvalidInputError
from steward.quality import evaluate_fairness


def synthetic(seed: int, n: int = 4_000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["f", "m"], size=n)
    age = rng.choice(["<30", "30-60", "60+"], size=n, p=[0.3, 0.5, 0.2])
    truth = rng.random(size=n) < 0.4
    bias = np.where(sex == "m", 0.15, 0.0) + np.where(age == "60+", -0.1, 0.0)
    predicted = rng.random(size=n) < np.clip(0.35 + bias + 0.3 * truth, 0, 1)
    return pd.DataFrame(
        {"sex": sex, "age": age, "y": truth.astype(int), "p": predicted.astype(int)}
    )


@pytest.mark.parametrize("attributes", [["sex"], ["age"], ["sex", "age"]])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fairness_matches_fairlearn(attributes: list[str], seed: int) -> None:
    data = synthetic(seed)
    features = data[attributes] if len(attributes) > 1 else data[attributes[0]]
    report = evaluate_fairness(data.y, data.p, sensitive_features=features)
    kwargs = {"sensitive_features": features}
    assert report.demographic_parity_difference == pytest.approx(
        fl.demographic_parity_difference(data.y, data.p, **kwargs), abs=1e-12
    )
    assert report.demographic_parity_ratio == pytest.approx(
        fl.demographic_parity_ratio(data.y, data.p, **kwargs), abs=1e-12
    )
    assert report.equalized_odds_difference == pytest.approx(
        fl.equalized_odds_difference(data.y, data.p, **kwargs), abs=1e-12
    )
    assert report.equal_opportunity_difference == pytest.approx(
        fl.equal_opportunity_difference(data.y, data.p, **kwargs), abs=1e-12
    )
    frame = fl.MetricFrame(
        metrics={
            "selection_rate": fl.selection_rate,
            "true_positive_rate": fl.true_positive_rate,
            "false_positive_rate": fl.false_positive_rate,
            "count": fl.count,
        },
        y_true=data.y,
        y_pred=data.p,
        sensitive_features=features,
    )
    by_group = frame.by_group
    for group in report.groups:
        key = tuple(group.group.values())
        row = by_group.loc[key if len(key) > 1 else key[0]]
        assert group.count == row["count"]
        assert group.selection_rate == pytest.approx(row["selection_rate"], abs=1e-12)
        assert group.true_positive_rate == pytest.approx(row["true_positive_rate"], abs=1e-12)
        assert group.false_positive_rate == pytest.approx(row["false_positive_rate"], abs=1e-12)
    assert len(report.groups) == len(by_group)


@settings(max_examples=40, deadline=None)
@given(
    data=st.lists(
        st.tuples(st.sampled_from("abc"), st.integers(0, 1), st.integers(0, 1)),
        min_size=12,
        max_size=80,
    )
)
def test_fairness_selection_metrics_match_fairlearn_on_any_data(
    data: list[tuple[str, int, int]],
) -> None:
    groups, truth, predicted = (list(column) for column in zip(*data, strict=True))
    report = evaluate_fairness(truth, predicted, sensitive_features=groups, min_group_size=1)
    expected = fl.demographic_parity_difference(truth, predicted, sensitive_features=groups)
    assert report.demographic_parity_difference == pytest.approx(expected, abs=1e-12)
    if all(
        g.true_positive_rate is not None and g.false_positive_rate is not None
        for g in report.groups
    ):
        assert report.equalized_odds_difference == pytest.approx(
            fl.equalized_odds_difference(truth, predicted, sensitive_features=groups), abs=1e-12
        )


def test_fairness_four_fifths_rule_and_reference_group() -> None:
    truth = [1, 0] * 50
    predicted = [1] * 50 + [1] * 20 + [0] * 30
    groups = ["m"] * 50 + ["f"] * 50
    report = evaluate_fairness(truth, predicted, sensitive_features=groups)
    assert report.disparate_impact_ratio == pytest.approx(0.4)
    assert report.four_fifths_violation is True
    against_f = evaluate_fairness(truth, predicted, sensitive_features=groups, reference_group="f")
    assert against_f.disparate_impact_ratio == pytest.approx(2.5)
    assert against_f.four_fifths_violation is False
    assert against_f.reference_group == {"group": "f"}
    with pytest.raises(InvalidInputError, match="reference_group"):
        evaluate_fairness(truth, predicted, sensitive_features=groups, reference_group="x")


def test_fairness_small_groups_warn_and_can_be_excluded() -> None:
    truth = [1, 0] * 60 + [1, 0]
    predicted = [1, 0] * 60 + [0, 0]
    groups = ["big"] * 120 + ["tiny"] * 2
    report = evaluate_fairness(truth, predicted, sensitive_features=groups, min_group_size=30)
    tiny = next(g for g in report.groups if g.group["group"] == "tiny")
    assert tiny.small
    assert any("fewer than 30" in w for w in report.warnings)
    assert report.demographic_parity_difference == pytest.approx(0.5)
    excluded = evaluate_fairness(
        truth, predicted, sensitive_features=groups, exclude_small_groups=True
    )
    assert excluded.demographic_parity_difference == 0.0


def test_fairness_undefined_rates_are_none_with_a_warning() -> None:
    truth = [0, 0, 1, 0]
    predicted = [1, 0, 1, 0]
    report = evaluate_fairness(
        truth, predicted, sensitive_features=["a", "a", "b", "b"], min_group_size=1
    )
    a = next(g for g in report.groups if g.group["group"] == "a")
    assert a.true_positive_rate is None
    assert a.precision == 0.0
    assert report.equal_opportunity_difference == 0.0
    assert any("true_positive_rate is undefined" in w for w in report.warnings)
    payload = report.to_dict()
    assert payload["groups"][0]["true_positive_rate"] is None
    assert report.to_json()


def test_fairness_without_any_positive_label_is_defined() -> None:
    report = evaluate_fairness([0, 0, 0], [0, 0, 0], sensitive_features=["a", "b", "b"])
    assert report.demographic_parity_difference == 0.0
    assert report.demographic_parity_ratio is None
    assert report.four_fifths_violation is None
    assert report.equal_opportunity_difference is None


def test_fairness_string_labels_with_pos_label() -> None:
    report = evaluate_fairness(
        ["yes", "no", "yes", "no"],
        ["yes", "yes", "no", "no"],
        sensitive_features=pd.Series(["x", "x", "y", "y"], name="site"),
        pos_label="yes",
        min_group_size=1,
    )
    assert report.attributes == ("site",)
    assert [g.selection_rate for g in report.groups] == [1.0, 0.0]


@pytest.mark.parametrize(
    ("truth", "predicted", "features", "message"),
    [
        ([0, 1, 2], [0, 1, 1], ["a"] * 3, "binary labels"),
        ([0, 1], [0, 1, 1], ["a"] * 2, "lengths differ"),
        ([0, 1], [0, 1], ["a"] * 3, "has 3 rows; expected 2"),
        ([0.0, float("nan")], [0, 1], ["a"] * 2, "missing value"),
        ([], [], [], "empty"),
        ([0, 2], [0, 2], ["a", "b"], "pos_label 1 is not among"),
    ],
)
def test_fairness_rejects_bad_input(
    truth: list[float], predicted: list[int], features: list[str], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        evaluate_fairness(truth, predicted, sensitive_features=features)
