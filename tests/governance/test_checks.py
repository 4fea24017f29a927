"""Gate checks turn evidence into verdicts, and missing evidence never passes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from steward.governance import (
    DriftEvidence,
    FairnessEvidence,
    parse_policy,
    run_checks,
)

POLICY = parse_policy(
    """
policy: p
gates:
  high:
    production:
      checks:
        - "holdout auc >= 0.85"
        - {check: beats_champion, metric: auc, dataset: holdout, margin: 0.01}
        - {check: beats_champion, metric: loss, higher_is_better: false}
        - {check: fairness, attribute: gender, min: 0.8}
        - {check: card_completeness, min: 0.75}
        - {check: signature_compatible}
        - {check: prohibited_attributes, attributes: [race], proxy_threshold: 0.5}
        - {check: drift, max_drifted_share: 0.25}
"""
)
GATE = POLICY.gate("high", "production")


@dataclass
class Facts:
    """Evidence as plain data: what a promotion service would have gathered."""

    metrics: dict[tuple[str, str | None], float] = field(default_factory=dict)
    champion: dict[tuple[str, str | None], float] | None = None
    fairness_by: dict[str, FairnessEvidence] = field(default_factory=dict)
    card: tuple[float, Sequence[str]] | None = None
    change: tuple[str, Sequence[str]] | None = None
    columns: Sequence[str] | None = None
    proxies: Mapping[str, float] | None = None
    drifted: DriftEvidence | None = None

    def metric(self, name: str, dataset: str | None) -> float | None:
        return self.metrics.get((name, dataset))

    def champion_metric(self, name: str, dataset: str | None, alias: str) -> float | None:
        return None if self.champion is None else self.champion.get((name, dataset))

    def has_champion(self, alias: str) -> bool:
        return self.champion is not None

    def fairness(self, attribute: str, dataset: str) -> FairnessEvidence | None:
        return self.fairness_by.get(attribute)

    def card_completeness(self) -> tuple[float, Sequence[str]] | None:
        return self.card

    def signature_change(self) -> tuple[str, Sequence[str]] | None:
        return self.change

    def input_columns(self) -> Sequence[str] | None:
        return self.columns

    def proxy_scores(self, attributes: Sequence[str], dataset: str) -> Mapping[str, float] | None:
        return self.proxies

    def drift(self, reference: str, current: str) -> DriftEvidence | None:
        return self.drifted


def good() -> Facts:
    return Facts(
        metrics={("auc", "holdout"): 0.9, ("loss", None): 0.2},
        champion={("auc", "holdout"): 0.88, ("loss", None): 0.25},
        fairness_by={"gender": FairnessEvidence({"disparate_impact_ratio": 0.91}, rows=5_000)},
        card=(0.8, ["limitations"]),
        change=("additive", ["new optional column 'age'"]),
        columns=["amount", "age", "zip"],
        proxies={"amount": 0.1, "age": 0.2, "zip": 0.3},
        drifted=DriftEvidence(drifted=["amount"], columns=10),
    )


def test_all_pass_on_good_evidence() -> None:
    results = run_checks(GATE, good())
    assert [r.passed for r in results] == [True] * 8, [r.detail for r in results if not r.passed]
    assert results[0].observed == 0.9
    assert results[1].observed == pytest.approx(0.02)
    assert results[1].evidence == {"candidate": 0.9, "champion": 0.88}
    assert results[2].observed == pytest.approx(0.05)  # lower is better: 0.25 - 0.2
    assert results[4].detail == "80% complete; missing: limitations"


@pytest.mark.parametrize(
    ("change", "index", "detail"),
    [
        (
            lambda f: (
                f.metrics.update({("auc", "holdout"): 0.84}),
                f.champion.update({("auc", "holdout"): 0.8}),
            ),
            0,
            "auc = 0.84",
        ),
        (lambda f: f.champion.update({("auc", "holdout"): 0.895}), 1, "gain +0.005"),
        (lambda f: f.metrics.update({("loss", None): 0.3}), 2, "gain -0.05"),
        (
            lambda f: f.fairness_by.update(
                {"gender": FairnessEvidence({"disparate_impact_ratio": 0.7}, rows=900)}
            ),
            3,
            "= 0.7 over 900 rows",
        ),
        (lambda f: setattr(f, "card", (0.5, ["limitations", "ethics"])), 4, "limitations, ethics"),
        (lambda f: setattr(f, "change", ("breaking", ["column 'zip' removed"])), 5, "removed"),
        (lambda f: setattr(f, "columns", ["amount", "Race"]), 6, "among the inputs: Race"),
        (lambda f: f.proxies.update({"zip": 0.7}), 6, "zip (0.70)"),
        (lambda f: setattr(f, "drifted", DriftEvidence(["a", "b", "c"], 10)), 7, "3 of 10"),
    ],
)
def test_each_check_fails_on_bad_numbers(change, index: int, detail: str) -> None:
    facts = good()
    change(facts)
    results = run_checks(GATE, facts)
    failed = [i for i, r in enumerate(results) if not r.passed]
    assert failed == [index]
    assert detail in results[index].detail


def test_missing_evidence_fails_with_a_reason() -> None:
    results = run_checks(GATE, Facts())
    assert not any(r.passed for r in results[:1] + results[3:5] + results[6:])
    assert results[0].detail == "no evidence: metric 'auc' was not logged on dataset role 'holdout'"
    assert "no 'holdout' data with attribute 'gender'" in results[3].detail
    assert results[4].detail == "no evidence: the version has no model card"
    # No version holds the alias and none is in the target stage: nothing to beat or compare.
    assert results[5].passed and "no version in the target stage" in results[5].detail


def test_first_version_has_no_champion_to_beat() -> None:
    facts = good()
    facts.champion = None
    results = run_checks(GATE, facts)
    assert results[1].passed and "nothing to beat" in results[1].detail


def test_nan_metric_never_passes() -> None:
    facts = good()
    facts.metrics[("auc", "holdout")] = float("nan")
    result = run_checks(GATE, facts)[0]
    assert not result.passed
    assert result.to_dict()["observed"] == "nan"  # JSON-safe evidence


def test_undefined_fairness_metric_fails() -> None:
    facts = good()
    facts.fairness_by["gender"] = FairnessEvidence({"disparate_impact_ratio": None}, rows=40)
    result = run_checks(GATE, facts)[3]
    assert not result.passed and "undefined" in result.detail
