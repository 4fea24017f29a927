"""Evaluating a gate's automated checks against the evidence of one model version.

The numbers come from an :class:`Evidence` source (the promotion service builds
one from the registry, tracking and ``steward.quality``); each check turns them
into a :class:`CheckResult` holding the inputs, the observed value, the
threshold and the verdict, which is what gets stored as evidence. A check whose
evidence is missing fails, saying what was missing: a gate never passes by
default.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from steward.governance._policy import Gate
from steward.governance._policy_checks import (
    BeatsChampionCheck,
    CardCompletenessCheck,
    Check,
    DriftCheck,
    FairnessCheck,
    MetricCheck,
    ProhibitedAttributesCheck,
    SignatureCheck,
)

__all__ = ["CheckResult", "DriftEvidence", "Evidence", "FairnessEvidence", "run_checks"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}


@dataclass(frozen=True)
class FairnessEvidence:
    """Fairness metrics of a version's predictions on one dataset, by one attribute."""

    metrics: Mapping[str, float | None]
    rows: int
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftEvidence:
    """Drift between two datasets: which columns drifted, out of how many."""

    drifted: Sequence[str]
    columns: int
    detail: Mapping[str, Any] = field(default_factory=dict)


class Evidence(Protocol):
    """What checks read about one candidate version. ``None`` means "not available"."""

    def metric(self, name: str, dataset: str | None) -> float | None:
        """The candidate's metric, on a dataset role when given."""
        ...

    def champion_metric(self, name: str, dataset: str | None, alias: str) -> float | None:
        """The same metric of the version holding ``alias`` (``None``: no such version)."""
        ...

    def has_champion(self, alias: str) -> bool:
        """Whether some version of the model holds ``alias``."""
        ...

    def fairness(self, attribute: str, dataset: str) -> FairnessEvidence | None:
        """Fairness of the candidate's predictions on ``dataset`` by ``attribute``."""
        ...

    def card_completeness(self) -> tuple[float, Sequence[str]] | None:
        """Completeness score (0..1) of the model card and the sections missing."""
        ...

    def signature_change(self) -> tuple[str, Sequence[str]] | None:
        """Change vs the version in the target stage: (level, reasons); ``None``: none there."""
        ...

    def input_columns(self) -> Sequence[str] | None:
        """Names of the candidate's input columns (from its signature)."""
        ...

    def proxy_scores(self, attributes: Sequence[str], dataset: str) -> Mapping[str, float] | None:
        """Strongest association of each input with any of ``attributes`` on ``dataset``."""
        ...

    def drift(self, reference: str, current: str) -> DriftEvidence | None:
        """Drift between two dataset roles of the candidate's run."""
        ...


@dataclass(frozen=True)
class CheckResult:
    """The verdict of one check with the numbers it was made on."""

    kind: str
    description: str
    passed: bool
    observed: Any = None
    threshold: Any = None
    detail: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, stored as the promotion request's evidence."""
        return {
            "kind": self.kind,
            "description": self.description,
            "passed": self.passed,
            "observed": _json_number(self.observed),
            "threshold": _json_number(self.threshold),
            "detail": self.detail,
            "evidence": dict(self.evidence),
        }


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def run_checks(gate: Gate, evidence: Evidence) -> list[CheckResult]:
    """Evaluate every check of ``gate``; a check that cannot be evaluated fails."""
    return [_evaluate(check, evidence) for check in gate.checks]


def _evaluate(check: Check, evidence: Evidence) -> CheckResult:
    if isinstance(check, MetricCheck):
        return _metric(check, evidence)
    if isinstance(check, BeatsChampionCheck):
        return _champion(check, evidence)
    if isinstance(check, FairnessCheck):
        return _fairness(check, evidence)
    if isinstance(check, CardCompletenessCheck):
        return _card(check, evidence)
    if isinstance(check, SignatureCheck):
        return _signature(check, evidence)
    if isinstance(check, ProhibitedAttributesCheck):
        return _prohibited(check, evidence)
    return _drift(check, evidence)


def _missing(check: Check, what: str) -> CheckResult:
    return CheckResult(check.check, check.describe(), False, detail=f"no evidence: {what}")


def _metric(check: MetricCheck, evidence: Evidence) -> CheckResult:
    value = evidence.metric(check.metric, check.dataset)
    if value is None:
        on = f" on dataset role {check.dataset!r}" if check.dataset else ""
        return _missing(check, f"metric {check.metric!r} was not logged{on}")
    passed = math.isfinite(value) and _OPS[check.op](value, check.value)
    return CheckResult(
        "metric",
        check.describe(),
        passed,
        observed=value,
        threshold=check.value,
        detail=f"{check.metric} = {value:.6g}",
    )


def _champion(check: BeatsChampionCheck, evidence: Evidence) -> CheckResult:
    value = evidence.metric(check.metric, check.dataset)
    if value is None:
        return _missing(check, f"the candidate has no metric {check.metric!r}")
    if not evidence.has_champion(check.alias):
        return CheckResult(
            check.check,
            check.describe(),
            True,
            observed=value,
            detail=f"no version holds @{check.alias} yet: nothing to beat",
        )
    best = evidence.champion_metric(check.metric, check.dataset, check.alias)
    if best is None:
        return _missing(check, f"the @{check.alias} version has no metric {check.metric!r}")
    gain = value - best if check.higher_is_better else best - value
    return CheckResult(
        check.check,
        check.describe(),
        math.isfinite(gain) and gain >= check.margin,
        observed=gain,
        threshold=check.margin,
        detail=f"candidate {value:.6g} vs @{check.alias} {best:.6g} (gain {gain:+.6g})",
        evidence={"candidate": value, "champion": best},
    )


def _fairness(check: FairnessCheck, evidence: Evidence) -> CheckResult:
    found = evidence.fairness(check.attribute, check.dataset)
    if found is None:
        return _missing(
            check, f"no {check.dataset!r} data with attribute {check.attribute!r} to measure"
        )
    key = "disparate_impact_ratio" if check.metric == "disparate_impact" else check.metric
    value = found.metrics.get(key)
    if value is None:
        return CheckResult(
            check.check,
            check.describe(),
            False,
            detail=f"{check.metric} is undefined on this data (e.g. a group never selected)",
            evidence={"rows": found.rows, **found.detail},
        )
    low_ok = check.min is None or value >= check.min
    high_ok = check.max is None or value <= check.max
    return CheckResult(
        check.check,
        check.describe(),
        low_ok and high_ok,
        observed=value,
        threshold={"min": check.min, "max": check.max},
        detail=f"{check.metric} by {check.attribute} = {value:.4g} over {found.rows:,} rows",
        evidence={"rows": found.rows, "metrics": dict(found.metrics), **found.detail},
    )


def _card(check: CardCompletenessCheck, evidence: Evidence) -> CheckResult:
    found = evidence.card_completeness()
    if found is None:
        return _missing(check, "the version has no model card")
    score, missing = found
    return CheckResult(
        check.check,
        check.describe(),
        score >= check.min,
        observed=score,
        threshold=check.min,
        detail=f"{score:.0%} complete" + (f"; missing: {', '.join(missing)}" if missing else ""),
        evidence={"missing_sections": list(missing)},
    )


def _signature(check: SignatureCheck, evidence: Evidence) -> CheckResult:
    change = evidence.signature_change()
    if change is None:
        return CheckResult(
            check.check, check.describe(), True, detail="no version in the target stage to compare"
        )
    level, reasons = change
    allowed = ("compatible",) if check.allow == "compatible" else ("compatible", "additive")
    return CheckResult(
        check.check,
        check.describe(),
        level in allowed,
        observed=level,
        threshold=check.allow,
        detail="; ".join(reasons) or level,
        evidence={"reasons": list(reasons)},
    )


def _prohibited(check: ProhibitedAttributesCheck, evidence: Evidence) -> CheckResult:
    columns = evidence.input_columns()
    if columns is None:
        return _missing(check, "the version has no input signature")
    banned = {name.lower() for name in check.attributes}
    used = sorted(column for column in columns if column.lower() in banned)
    if used:
        return CheckResult(
            check.check,
            check.describe(),
            False,
            observed=used,
            detail=f"prohibited attribute(s) among the inputs: {', '.join(used)}",
        )
    if check.proxy_threshold is None:
        return CheckResult(check.check, check.describe(), True, detail="none among the inputs")
    scores = evidence.proxy_scores(check.attributes, check.dataset)
    if scores is None:
        return _missing(
            check,
            f"no {check.dataset!r} data holding {', '.join(check.attributes)} to test for proxies",
        )
    proxies = {col: score for col, score in scores.items() if score > check.proxy_threshold}
    strongest = max(scores.values(), default=0.0)
    return CheckResult(
        check.check,
        check.describe(),
        not proxies,
        observed=strongest,
        threshold=check.proxy_threshold,
        detail=(
            "proxies above threshold: "
            + ", ".join(f"{col} ({score:.2f})" for col, score in sorted(proxies.items()))
            if proxies
            else f"strongest association {strongest:.2f}"
        ),
        evidence={"scores": dict(scores)},
    )


def _drift(check: DriftCheck, evidence: Evidence) -> CheckResult:
    found = evidence.drift(check.reference, check.current)
    if found is None:
        return _missing(
            check, f"the run logged no {check.reference!r} and {check.current!r} datasets"
        )
    share = len(found.drifted) / found.columns if found.columns else 0.0
    return CheckResult(
        check.check,
        check.describe(),
        share <= check.max_drifted_share,
        observed=share,
        threshold=check.max_drifted_share,
        detail=(
            f"{len(found.drifted)} of {found.columns} columns drifted"
            + (f": {', '.join(found.drifted)}" if found.drifted else "")
        ),
        evidence={"drifted": list(found.drifted), **found.detail},
    )
