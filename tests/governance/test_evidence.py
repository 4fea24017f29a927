"""Data checks on real data: datasets logged in a run, read back through the registry.

Each test trains a scikit-learn model in a tracked run that logs its train,
holdout and recent data as Parquet files, registers the version and asks for a
promotion under a policy with the data checks (fairness, proxies, drift, card
completeness, signature compatibility). The data is built so that every check
passes for one version and fails for another; the numbers stored on the request
are compared with the same statistics computed here from the same files.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from steward.core import FrozenClock
from steward.governance import PromotionRequest
from steward.quality import DriftDetector, detect_proxies, evaluate_fairness
from steward.registry import Stage
from steward.sdk import Steward

POLICY = """\
policy: data-checks
gates:
  high:
    production:
      checks:
        - {check: fairness, attribute: group, metric: disparate_impact, dataset: holdout, min: 0.8}
        - {check: prohibited_attributes, attributes: [group], proxy_threshold: 0.5}
        - {check: drift, reference: train, current: recent, max_drifted_share: 0.0}
        - {check: card_completeness, min: 0.9}
        - {check: signature_compatible, allow: compatible}
"""
CARD = {
    "intended_use": "Rank loan applications for manual review.",
    "out_of_scope_use": "Automatic decisions.",
    "limitations": "Synthetic data only.",
    "ethical_considerations": "group is never an input; fairness is checked per version.",
}
ROWS = 2_000


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 5, 4, 9, 0, tzinfo=UTC))


def _data(
    seed: int, *, shift: float = 0.0, bias: float = 0.0, proxy: str | None = None
) -> pd.DataFrame:
    """Applicants: two inputs, a third that is noise or a proxy for ``group``, a label.

    ``bias`` moves ``income`` up for group a and down for group b, so that a model
    that approves on income approves the groups at different rates; ``shift``
    moves every input (drift); ``proxy`` names a column that encodes the group.
    """
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b"], ROWS)
    sign = np.where(group == "a", 1.0, -1.0)
    income = rng.normal(shift + bias * sign, 1.0)
    debt = rng.normal(shift, 1.0, ROWS)
    frame = pd.DataFrame({"income": income, "debt": debt})
    if proxy is None:
        frame["region"] = rng.normal(shift, 1.0, ROWS)
    else:
        frame[proxy] = shift + sign + rng.normal(0.0, 0.1, ROWS)
    frame["group"] = group
    frame["approved"] = (income - debt + rng.normal(0.0, 0.5, ROWS) > 0).astype(np.int64)
    return frame


def _fit(frame: pd.DataFrame) -> tuple[LogisticRegression, list[str]]:
    """Fit ``approved`` on every column but the group and the label; return the inputs too."""
    inputs = [c for c in frame.columns if c not in ("group", "approved")]
    return LogisticRegression().fit(frame[inputs], frame["approved"]), inputs


def _train(
    st: Steward, folder: Path, datasets: dict[str, pd.DataFrame], *, card: bool
) -> tuple[str, LogisticRegression]:
    """Log the datasets as files in a run, fit on ``train``, register the version."""
    folder.mkdir(parents=True)
    train = datasets["train"]
    model, inputs = _fit(train)
    with st.start_run("loans", tags={"label_column": "approved"}) as run:
        for role, frame in datasets.items():
            path = folder / f"{role}.parquet"
            frame.to_parquet(path)
            run.log_dataset(str(path), name=f"applicants-{folder.name}", role=role)
        holdout = datasets["holdout"]
        run.log_metric("holdout.accuracy", model.score(holdout[inputs], holdout["approved"]))
        version = run.register_model(model, name="loans", sample_input=train[inputs].head(50))
    if card:
        st.registry.update_card(version.ref, CARD)
    return version.ref, model


@pytest.fixture
def governed(st: Steward, tmp_path: Path) -> Steward:
    """``loans:1`` in production (inputs income, debt, region), then the policy."""
    ref, _ = _train(
        st,
        tmp_path / "v1",
        {"train": _data(1), "holdout": _data(2), "recent": _data(3)},
        card=True,
    )
    st.registry.update_model("loans", risk_tier="high", owners=["dana"])
    st.registry.transition(ref, "production", reason="first model, before any policy")
    st.promotions.apply_policy("policy.yaml", text=POLICY)
    return st


def _by_kind(request: PromotionRequest) -> dict[str, dict[str, Any]]:
    return {c["kind"]: c for c in request.checks}


def _predicted(model: LogisticRegression, frame: pd.DataFrame) -> Any:
    return model.predict(frame[list(model.feature_names_in_)])


def test_data_checks_pass_on_data_built_to_pass(governed: Steward, tmp_path: Path) -> None:
    data = {"train": _data(11), "holdout": _data(12), "recent": _data(13)}
    ref, model = _train(governed, tmp_path / "v2", data, card=True)
    request = governed.promotions.request(ref, "production", reason="retrained")

    assert request.status == "executed", request.outcome
    stored = governed.promotions.get(request.id)
    assert stored.checks == request.checks
    checks = _by_kind(stored)
    assert all(c["passed"] for c in checks.values()), checks

    holdout = data["holdout"]
    expected = evaluate_fairness(
        holdout["approved"], _predicted(model, holdout), sensitive_features=holdout["group"]
    )
    fairness = checks["fairness"]
    assert fairness["observed"] == pytest.approx(expected.disparate_impact_ratio)
    assert fairness["observed"] >= 0.8
    assert fairness["threshold"] == {"min": 0.8, "max": None}
    assert fairness["evidence"]["rows"] == ROWS
    assert fairness["evidence"]["label"] == "approved"
    assert fairness["evidence"]["metrics"]["demographic_parity_difference"] == pytest.approx(
        expected.demographic_parity_difference
    )

    proxies = checks["prohibited_attributes"]
    assert set(proxies["evidence"]["scores"]) == {"income", "debt", "region"}
    assert proxies["observed"] == pytest.approx(max(proxies["evidence"]["scores"].values()))
    assert proxies["observed"] < 0.5

    drift = checks["drift"]
    assert drift["observed"] == 0.0
    assert drift["evidence"]["drifted"] == []
    assert drift["detail"] == "0 of 3 columns drifted"

    assert checks["card_completeness"]["observed"] == 1.0
    assert checks["card_completeness"]["evidence"]["missing_sections"] == []
    assert checks["signature_compatible"]["observed"] == "compatible"
    assert governed.registry.get_version(ref).stage is Stage.PRODUCTION


def test_data_checks_fail_on_data_built_to_fail(governed: Steward, tmp_path: Path) -> None:
    data = {
        "train": _data(21, proxy="zone"),
        "holdout": _data(22, bias=1.5, proxy="zone"),
        "recent": _data(23, shift=3.0, proxy="zone"),
    }
    ref, model = _train(governed, tmp_path / "v2", data, card=False)
    request = governed.promotions.request(ref, "production", reason="retrained")

    assert request.status == "checks_failed"
    stored = governed.promotions.get(request.id)
    assert stored.checks == request.checks
    checks = _by_kind(stored)
    assert not any(c["passed"] for c in checks.values()), checks

    holdout = data["holdout"]
    expected = evaluate_fairness(
        holdout["approved"], _predicted(model, holdout), sensitive_features=holdout["group"]
    )
    fairness = checks["fairness"]
    assert fairness["observed"] == pytest.approx(expected.disparate_impact_ratio)
    assert fairness["observed"] < 0.5  # group b is approved at under half group a's rate
    assert "disparate_impact by group" in fairness["detail"]

    proxies = checks["prohibited_attributes"]
    train = data["train"]
    direct = detect_proxies(train[["group", "income", "debt", "zone"]], protected="group")
    zone = next(a for a in direct.associations if a.column == "zone")
    assert proxies["evidence"]["scores"]["zone"] == pytest.approx(
        max(zone.association, zone.uncertainty_coefficient)
    )
    assert proxies["observed"] > 0.9
    assert "proxies above threshold: zone" in proxies["detail"]

    drift = checks["drift"]
    direct_drift = (
        DriftDetector(columns=["income", "debt", "zone"]).fit(train).score(data["recent"])
    )
    assert drift["observed"] == 1.0
    assert sorted(drift["evidence"]["drifted"]) == sorted(direct_drift.drifted_columns)
    assert sorted(drift["evidence"]["drifted"]) == ["debt", "income", "zone"]

    card = checks["card_completeness"]
    assert card["observed"] < 0.9
    assert {"out_of_scope_use", "limitations", "ethical_considerations"} <= set(
        card["evidence"]["missing_sections"]
    )

    signature = checks["signature_compatible"]
    assert signature["observed"] == "breaking"
    assert any("region" in reason for reason in signature["evidence"]["reasons"])
    assert governed.registry.get_version(ref).stage is Stage.REGISTERED


def test_recent_data_given_with_the_request_replaces_the_runs(
    governed: Steward, tmp_path: Path
) -> None:
    data = {"train": _data(31), "holdout": _data(32), "recent": _data(33)}
    ref, _ = _train(governed, tmp_path / "v2", data, card=True)
    later = tmp_path / "later.csv"
    _data(34, shift=3.0).to_csv(later, index=False)

    plan = governed.promotions.plan(ref, "production", data={"recent": later})

    drift = next(c for c in plan.checks if c.kind == "drift")
    assert not drift.passed
    assert drift.observed == 1.0
    assert drift.evidence["current"] == "recent"


def test_data_logged_from_memory_is_missing_evidence(governed: Steward) -> None:
    frame = _data(41)
    model, inputs = _fit(frame)
    assert inputs == ["income", "debt", "region"]
    with governed.start_run("loans", tags={"label_column": "approved"}) as run:
        for role in ("train", "holdout", "recent"):
            run.log_dataset(frame, name="applicants-memory", role=role)
        version = run.register_model(model, name="loans", sample_input=frame[inputs].head(50))

    plan = governed.promotions.plan(version.ref, "production")

    checks = {c.kind: c for c in plan.checks}
    for kind in ("fairness", "prohibited_attributes", "drift"):
        assert not checks[kind].passed
        assert checks[kind].detail.startswith("no evidence:"), checks[kind].detail
