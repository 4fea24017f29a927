"""Data checks of the demo: schema validation, drift between time slices, fairness."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from steward.demo._fraud import FEATURES, LABEL, PROTECTED
from steward.quality import DriftDetector, Schema, evaluate_fairness

__all__ = ["check_data", "check_fairness"]


def check_data(early: pa.Table, late: pa.Table, say: Callable[[str], None]) -> dict[str, Any]:
    """Validate both slices against a schema inferred on ``early``; measure drift to ``late``."""
    columns = [*FEATURES, "merchant_category", LABEL]
    schema = Schema.infer(early.select(columns))
    own = schema.validate(early.select(columns))
    later = schema.validate(late.select(columns))
    say(f"schema inferred on training data: {len(columns)} columns; valid: {own.ok}")
    say(f"late slice vs that schema: {len(later.errors)} errors, {len(later.warnings)} warnings")
    report = DriftDetector().fit(early.select(columns)).score(late.select(columns))
    drifted = ", ".join(report.drifted_columns) or "none"
    count = f"{len(report.drifted_columns)}/{len(report)}"
    say(f"drift early → late: {count} columns drifted ({drifted})")
    return {
        "schema_fingerprint": schema.fingerprint,
        "training_valid": own.ok,
        "late_errors": len(later.errors),
        "late_warnings": len(later.warnings),
        "drifted_columns": list(report.drifted_columns),
        "dataset_drift": report.dataset_drift,
        "drift": [
            {"column": c.column, "method": c.method, "statistic": c.statistic, "drifted": c.drifted}
            for c in report
        ],
    }


def check_fairness(
    holdout: pa.Table, predictions: np.ndarray, say: Callable[[str], None]
) -> dict[str, Any]:
    """Fairness of the chosen model's decisions across the protected attribute."""
    report = evaluate_fairness(
        holdout[LABEL].to_numpy(), predictions, sensitive_features=holdout[PROTECTED].to_numpy()
    )
    say(
        f"fairness by {PROTECTED}: disparate impact {report.disparate_impact_ratio:.3f}, "
        f"four-fifths rule {'violated' if report.four_fifths_violation else 'met'}"
    )
    return {
        "attribute": PROTECTED,
        "disparate_impact_ratio": report.disparate_impact_ratio,
        "four_fifths_violation": report.four_fifths_violation,
        "demographic_parity_difference": report.demographic_parity_difference,
        "equalized_odds_difference": report.equalized_odds_difference,
        "groups": [
            {
                "group": "/".join(str(v) for v in g.group.values()),
                "count": g.count,
                "selection_rate": g.selection_rate,
                "true_positive_rate": g.true_positive_rate,
                "false_positive_rate": g.false_positive_rate,
            }
            for g in report.groups
        ],
    }
