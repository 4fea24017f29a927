"""Group fairness of a binary classifier's decisions.

Per group: selection rate P(ŷ=1), true positive rate, false positive rate,
precision and accuracy.  Between groups (largest minus smallest, or smallest
over largest for ratios):

- demographic parity difference / ratio: of selection rates;
- disparate impact ratio: smallest selection rate over the largest (or over
  ``reference_group``'s); the four-fifths rule flags a ratio below 0.8;
- equal opportunity difference: of true positive rates;
- equalized odds difference: the larger of the TPR and FPR differences.

These equal Fairlearn's ``demographic_parity_difference``/``ratio``,
``equal_opportunity_difference`` and ``equalized_odds_difference`` (default
``between_groups``, ``worst_case``).  One deliberate difference: a rate whose
denominator is zero (a group without positives has no TPR) is reported as
None and left out of the differences, with a warning, where Fairlearn uses 0.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Group as RichGroup
from rich.table import Table
from rich.text import Text

from steward.core import InvalidInputError
from steward.quality._groups import Groups, check_lengths, encode_groups, labels_array
from steward.quality._input import Category
from steward.quality._render import fmt, html_page, html_table

__all__ = ["FairnessReport", "GroupMetrics", "evaluate_fairness"]

FOUR_FIFTHS = 0.8
REPORT_FORMAT = "steward.fairness-report/1"
_RATES = ("selection_rate", "true_positive_rate", "false_positive_rate", "precision", "accuracy")


@dataclass(frozen=True)
class GroupMetrics:
    """Decision rates of one group (None where a denominator is zero).

    Attributes:
        group: attribute name → value (several for intersectional groups).
        count: rows in the group.
        positives: rows whose true label is positive.
        small: fewer rows than ``min_group_size``: rates are unreliable.
    """

    group: Mapping[str, Category | None]
    count: int
    positives: int
    selection_rate: float
    true_positive_rate: float | None
    false_positive_rate: float | None
    precision: float | None
    accuracy: float
    small: bool = False

    @property
    def name(self) -> str:
        """The group's values joined, e.g. ``"f, 40+"``."""
        return ", ".join(str(value) for value in self.group.values())

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "group": dict(self.group),
            "count": self.count,
            "positives": self.positives,
            **{rate: getattr(self, rate) for rate in _RATES},
            "small": self.small,
        }


@dataclass(frozen=True)
class FairnessReport:
    """Per-group rates and the between-group fairness metrics (see the module docstring)."""

    attributes: tuple[str, ...]
    groups: tuple[GroupMetrics, ...]
    overall: GroupMetrics
    demographic_parity_difference: float
    demographic_parity_ratio: float | None
    disparate_impact_ratio: float | None
    four_fifths_violation: bool | None
    equal_opportunity_difference: float | None
    equalized_odds_difference: float | None
    min_group_size: int
    reference_group: Mapping[str, Category | None] | None = None
    warnings: tuple[str, ...] = ()

    def summary(self) -> str:
        """The headline metrics on one line."""
        verdict = {True: "VIOLATED", False: "met", None: "undefined"}[self.four_fifths_violation]
        return (
            f"demographic parity difference {fmt(self.demographic_parity_difference)}, "
            f"disparate impact {fmt(self.disparate_impact_ratio)} (four-fifths rule {verdict}), "
            f"equal opportunity difference {fmt(self.equal_opportunity_difference)}, "
            f"equalized odds difference {fmt(self.equalized_odds_difference)}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (format ``steward.fairness-report/1``)."""
        return {
            "format": REPORT_FORMAT,
            "attributes": list(self.attributes),
            "demographic_parity_difference": self.demographic_parity_difference,
            "demographic_parity_ratio": self.demographic_parity_ratio,
            "disparate_impact_ratio": self.disparate_impact_ratio,
            "four_fifths_violation": self.four_fifths_violation,
            "equal_opportunity_difference": self.equal_opportunity_difference,
            "equalized_odds_difference": self.equalized_odds_difference,
            "min_group_size": self.min_group_size,
            "reference_group": None if self.reference_group is None else dict(self.reference_group),
            "overall": self.overall.to_dict(),
            "groups": [group.to_dict() for group in self.groups],
            "warnings": list(self.warnings),
        }

    def to_json(self, indent: int | None = None) -> str:
        """Serialize to JSON text."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def _rows(self) -> list[tuple[GroupMetrics, bool]]:
        return [(group, False) for group in self.groups] + [(self.overall, True)]

    def __rich__(self) -> RichGroup:
        table = Table(title=f"Fairness by {', '.join(self.attributes)}")
        table.add_column("group")
        for header in ("count", "selection", "TPR", "FPR", "precision", "accuracy"):
            table.add_column(header, justify="right")
        for group, is_overall in self._rows():
            label = Text("overall", style="bold") if is_overall else Text(group.name)
            if group.small:
                label.append(" (small)", style="yellow")
            table.add_row(label, f"{group.count:,}", *(fmt(getattr(group, r), 3) for r in _RATES))
        style = "bold red" if self.four_fifths_violation else ""
        lines = [Text(self.summary(), style=style)]
        lines += [Text(f"warning: {warning}", style="yellow") for warning in self.warnings]
        return RichGroup(table, *lines)

    def to_html(self) -> str:
        """Render a standalone HTML page."""
        rows = []
        for group, is_overall in self._rows():
            name = "overall" if is_overall else html.escape(group.name)
            cells = "".join(f"<td class='num'>{fmt(getattr(group, r), 3)}</td>" for r in _RATES)
            small = " <span class='warn'>(small)</span>" if group.small else ""
            rows.append([f"<td>{name}{small}</td><td class='num'>{group.count:,}</td>{cells}"])
        headers = ["group", "count", "selection", "TPR", "FPR", "precision", "accuracy"]
        notes = "".join(f"<p class='warn'>{html.escape(w)}</p>" for w in self.warnings)
        return html_page("Fairness", self.summary(), html_table(headers, rows) + notes)


def evaluate_fairness(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    pos_label: Any = 1,
    min_group_size: int = 30,
    reference_group: Mapping[str, Any] | Any | None = None,
    exclude_small_groups: bool = False,
) -> FairnessReport:
    """Compute per-group decision rates and between-group fairness metrics.

    Example:
        >>> report = evaluate_fairness(
        ...     [1, 0, 1, 0], [1, 0, 0, 0],
        ...     sensitive_features=["a", "a", "b", "b"], min_group_size=1,
        ... )
        >>> report.demographic_parity_difference, report.four_fifths_violation
        (0.5, True)

    Args:
        y_true: true binary labels.
        y_pred: predicted binary labels (threshold scores first).
        sensitive_features: one attribute (1-D) or several (a table / dict of
            columns: groups are their combinations).
        pos_label: the label meaning "selected" / positive.
        min_group_size: groups with fewer rows are flagged small, with a warning.
        reference_group: the group disparate impact is measured against, e.g.
            ``{"sex": "m"}`` (a bare value for a single attribute); default:
            the group with the highest selection rate.
        exclude_small_groups: leave small groups out of the between-group metrics.

    Raises:
        InvalidInputError: lengths differ, labels are not binary or have
            missing values, or the reference group does not exist.
    """
    truth = labels_array(y_true, "y_true")
    predicted = labels_array(y_pred, "y_pred")
    check_lengths(len(truth), y_pred=predicted)
    if len(truth) == 0:
        raise InvalidInputError("y_true is empty; fairness needs at least one row")
    _check_binary(truth, predicted, pos_label)
    groups = encode_groups(sensitive_features, len(truth))
    actual, selected = truth == pos_label, predicted == pos_label
    metrics = _group_metrics(groups, actual, selected, min_group_size)
    overall = _metrics_of({}, actual, selected, small=False)
    warnings = [
        f"group ({g.name}) has {g.count} row(s), fewer than {min_group_size}: "
        "its rates are unreliable"
        for g in metrics
        if g.small
    ]
    used = [g for g in metrics if not (exclude_small_groups and g.small)] or metrics
    reference = _find_reference(groups.attributes, used, reference_group)
    selection = [g.selection_rate for g in used]
    dp_ratio = _ratio(min(selection), max(selection))
    impact = dp_ratio if reference is None else _impact(used, reference)
    tpr_diff = _spread(used, "true_positive_rate", warnings)
    fpr_diff = _spread(used, "false_positive_rate", warnings)
    odds = None if tpr_diff is None or fpr_diff is None else max(tpr_diff, fpr_diff)
    return FairnessReport(
        attributes=groups.attributes,
        groups=tuple(metrics),
        overall=overall,
        demographic_parity_difference=max(selection) - min(selection),
        demographic_parity_ratio=dp_ratio,
        disparate_impact_ratio=impact,
        four_fifths_violation=None if impact is None else impact < FOUR_FIFTHS,
        equal_opportunity_difference=tpr_diff,
        equalized_odds_difference=odds,
        min_group_size=min_group_size,
        reference_group=None if reference is None else reference.group,
        warnings=tuple(warnings),
    )


def _check_binary(truth: npt.NDArray[Any], predicted: npt.NDArray[Any], pos_label: Any) -> None:
    labels = set(np.unique(truth).tolist()) | set(np.unique(predicted).tolist())
    if len(labels) > 2:
        shown = sorted(labels, key=str)[:5]
        raise InvalidInputError(
            f"fairness metrics need binary labels; found {len(labels)} distinct, e.g. {shown}"
        )
    if len(labels) == 2 and pos_label not in labels:
        raise InvalidInputError(
            f"pos_label {pos_label!r} is not among the labels {sorted(labels, key=str)}"
        )


def _metrics_of(
    group: Mapping[str, Category | None],
    actual: npt.NDArray[np.bool_],
    selected: npt.NDArray[np.bool_],
    *,
    small: bool,
) -> GroupMetrics:
    tp = int(np.count_nonzero(actual & selected))
    fp = int(np.count_nonzero(~actual & selected))
    fn = int(np.count_nonzero(actual & ~selected))
    count = actual.size
    tn = count - tp - fp - fn
    return GroupMetrics(
        group=group,
        count=count,
        positives=tp + fn,
        selection_rate=(tp + fp) / count,
        true_positive_rate=_ratio(tp, tp + fn),
        false_positive_rate=_ratio(fp, fp + tn),
        precision=_ratio(tp, tp + fp),
        accuracy=(tp + tn) / count,
        small=small,
    )


def _group_metrics(
    groups: Groups, actual: npt.NDArray[np.bool_], selected: npt.NDArray[np.bool_], min_size: int
) -> list[GroupMetrics]:
    order = np.argsort(groups.ids, kind="stable")
    bounds = np.searchsorted(groups.ids[order], np.arange(len(groups.keys) + 1))
    metrics = []
    for g in range(len(groups.keys)):
        rows = order[bounds[g] : bounds[g + 1]]
        small = rows.size < min_size
        metrics.append(_metrics_of(groups.label(g), actual[rows], selected[rows], small=small))
    return metrics


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _spread(groups: list[GroupMetrics], rate: str, warnings: list[str]) -> float | None:
    values = [getattr(g, rate) for g in groups]
    undefined = [g.name for g, v in zip(groups, values, strict=True) if v is None]
    if undefined:
        warnings.append(
            f"{rate} is undefined for group(s) {undefined} and left out of the differences"
        )
    defined = [v for v in values if v is not None]
    return max(defined) - min(defined) if defined else None


def _find_reference(
    attributes: tuple[str, ...], groups: list[GroupMetrics], wanted: Mapping[str, Any] | Any | None
) -> GroupMetrics | None:
    if wanted is None:
        return None
    target = dict(wanted) if isinstance(wanted, Mapping) else {attributes[0]: wanted}
    for group in groups:
        if dict(group.group) == target:
            return group
    raise InvalidInputError(
        f"reference_group {target} is not among the groups {[dict(g.group) for g in groups]}"
    )


def _impact(groups: list[GroupMetrics], reference: GroupMetrics) -> float | None:
    others = [g.selection_rate for g in groups if g is not reference]
    if not others or reference.selection_rate == 0:
        return None
    return min(others) / reference.selection_rate
