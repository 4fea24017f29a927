"""Model performance per segment, and business cost from a cost matrix.

A model can look fine on average and fail for one region or customer type;
:func:`evaluate_segments` computes any metric per segment, with counts, and
flags segments that do noticeably worse than the whole population.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from rich.table import Table
from rich.text import Text

from steward.core import InvalidInputError
from steward.quality._groups import check_lengths, encode_groups, labels_array
from steward.quality._input import Category
from steward.quality._render import fmt, html_page, html_table

__all__ = ["CostMatrix", "SegmentMetrics", "SegmentReport", "evaluate_segments"]

Metric = Callable[[npt.NDArray[Any], npt.NDArray[Any]], float]
Task = Literal["classification", "regression"]
REPORT_FORMAT = "steward.segment-report/1"


@dataclass(frozen=True)
class CostMatrix:
    """What each decision costs: ``costs[i][j]`` for truth ``labels[i]``, prediction ``labels[j]``.

    Calling it returns the expected (mean) cost per prediction, so it also works
    as a segment metric (lower is better).

    Example:
        >>> cost = CostMatrix.binary(false_positive=5.0, false_negative=100.0)
        >>> cost([1, 0, 1, 0], [1, 1, 0, 0])
        26.25
    """

    labels: tuple[Any, ...]
    costs: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        size = len(self.labels)
        if size < 2 or len(set(self.labels)) != size:
            raise InvalidInputError(f"cost matrix needs 2+ distinct labels; got {self.labels}")
        if len(self.costs) != size or any(len(row) != size for row in self.costs):
            raise InvalidInputError(f"cost matrix must be {size}x{size} for labels {self.labels}")
        if not all(np.isfinite(value) for row in self.costs for value in row):
            raise InvalidInputError("cost matrix entries must be finite numbers")

    @classmethod
    def binary(
        cls,
        *,
        false_positive: float,
        false_negative: float,
        true_positive: float = 0.0,
        true_negative: float = 0.0,
        labels: tuple[Any, Any] = (0, 1),
    ) -> CostMatrix:
        """Build a 2x2 matrix; ``labels`` is (negative, positive)."""
        return cls(
            labels,
            (
                (float(true_negative), float(false_positive)),
                (float(false_negative), float(true_positive)),
            ),
        )

    def total_cost(self, y_true: Any, y_pred: Any) -> float:
        """Sum of the cost of every prediction.

        Raises:
            InvalidInputError: lengths differ or a label is not in the matrix.
        """
        truth, predicted = labels_array(y_true, "y_true"), labels_array(y_pred, "y_pred")
        check_lengths(len(truth), y_pred=predicted)
        index = {label: i for i, label in enumerate(self.labels)}
        unknown = (set(np.unique(truth).tolist()) | set(np.unique(predicted).tolist())) - set(index)
        if unknown:
            raise InvalidInputError(
                f"labels {sorted(unknown, key=str)} are not in the cost matrix {self.labels}"
            )
        matrix = np.asarray(self.costs, dtype=np.float64)
        rows = np.fromiter((index[v] for v in truth.tolist()), dtype=np.int64, count=len(truth))
        cols = np.fromiter((index[v] for v in predicted.tolist()), dtype=np.int64, count=len(truth))
        return float(matrix[rows, cols].sum())

    def __call__(self, y_true: Any, y_pred: Any) -> float:
        """Expected cost per prediction (mean)."""
        count = len(y_true)
        if count == 0:
            raise InvalidInputError("cannot compute a cost over zero predictions")
        return self.total_cost(y_true, y_pred) / count


def _accuracy(t: npt.NDArray[Any], p: npt.NDArray[Any], positive: Any) -> float:
    return float(np.mean(t == p))


def _counts(t: npt.NDArray[Any], p: npt.NDArray[Any], positive: Any) -> tuple[int, int, int]:
    actual, selected = t == positive, p == positive
    tp = int(np.count_nonzero(actual & selected))
    return tp, int(np.count_nonzero(selected)) - tp, int(np.count_nonzero(actual)) - tp


def _precision(t: npt.NDArray[Any], p: npt.NDArray[Any], positive: Any) -> float:
    tp, fp, _ = _counts(t, p, positive)
    return tp / (tp + fp) if tp + fp else float("nan")


def _recall(t: npt.NDArray[Any], p: npt.NDArray[Any], positive: Any) -> float:
    tp, _, fn = _counts(t, p, positive)
    return tp / (tp + fn) if tp + fn else float("nan")


def _f1(t: npt.NDArray[Any], p: npt.NDArray[Any], positive: Any) -> float:
    tp, fp, fn = _counts(t, p, positive)
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")


def _mae(t: npt.NDArray[Any], p: npt.NDArray[Any], positive: Any) -> float:
    return float(np.mean(np.abs(t - p)))


def _rmse(t: npt.NDArray[Any], p: npt.NDArray[Any], positive: Any) -> float:
    return float(np.sqrt(np.mean((t - p) ** 2)))


def _bias(t: npt.NDArray[Any], p: npt.NDArray[Any], positive: Any) -> float:
    return float(np.mean(p - t))


def _r2(t: npt.NDArray[Any], p: npt.NDArray[Any], positive: Any) -> float:
    total = float(np.sum((t - np.mean(t)) ** 2))
    return 1.0 - float(np.sum((t - p) ** 2)) / total if total else float("nan")


HIGHER, LOWER, NEAR_ZERO = 1, -1, 0
BUILTIN_METRICS: Mapping[str, tuple[Callable[..., float], int]] = {
    "accuracy": (_accuracy, HIGHER),
    "precision": (_precision, HIGHER),
    "recall": (_recall, HIGHER),
    "f1": (_f1, HIGHER),
    "mae": (_mae, LOWER),
    "rmse": (_rmse, LOWER),
    "bias": (_bias, NEAR_ZERO),
    "r2": (_r2, HIGHER),
}
"""Built-in metric name → (function, direction: 1 higher is better, -1 lower, 0 nearer zero)."""

_DEFAULTS: Mapping[Task, tuple[str, ...]] = {
    "classification": ("accuracy", "precision", "recall", "f1"),
    "regression": ("mae", "rmse", "bias", "r2"),
}


@dataclass(frozen=True)
class SegmentMetrics:
    """Metric values of one segment (None where undefined, e.g. recall without positives)."""

    segment: Mapping[str, Category | None]
    count: int
    values: Mapping[str, float | None]
    worse: tuple[str, ...] = ()
    small: bool = False

    @property
    def name(self) -> str:
        """The segment's values joined, e.g. ``"north, retail"``."""
        return ", ".join(str(value) for value in self.segment.values()) or "overall"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "segment": dict(self.segment),
            "count": self.count,
            "values": dict(self.values),
            "worse": list(self.worse),
            "small": self.small,
        }


@dataclass(frozen=True)
class SegmentReport:
    """Per-segment metrics next to the overall ones; ``flagged`` segments do worse."""

    attributes: tuple[str, ...]
    metrics: tuple[str, ...]
    overall: SegmentMetrics
    segments: tuple[SegmentMetrics, ...]
    tolerance: float

    @property
    def flagged(self) -> tuple[SegmentMetrics, ...]:
        """Segments (not small) worse than overall by more than ``tolerance`` on some metric."""
        return tuple(s for s in self.segments if s.worse and not s.small)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (format ``steward.segment-report/1``)."""
        return {
            "format": REPORT_FORMAT,
            "attributes": list(self.attributes),
            "metrics": list(self.metrics),
            "tolerance": self.tolerance,
            "overall": self.overall.to_dict(),
            "segments": [segment.to_dict() for segment in self.segments],
            "flagged": [segment.name for segment in self.flagged],
        }

    def to_json(self, indent: int | None = None) -> str:
        """Serialize to JSON text."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def __rich__(self) -> Table:
        caption = f"{len(self.flagged)} segment(s) worse than overall by > {self.tolerance:.0%}"
        table = Table(title=f"Performance by {', '.join(self.attributes)}", caption=caption)
        table.add_column("segment")
        table.add_column("count", justify="right")
        for metric in self.metrics:
            table.add_column(metric, justify="right")
        for segment in (*self.segments, self.overall):
            cells = [
                Text(fmt(segment.values[m], 3), style="bold red" if m in segment.worse else "")
                for m in self.metrics
            ]
            label = Text(segment.name, style="bold" if segment is self.overall else "")
            if segment.small:
                label.append(" (small)", style="yellow")
            table.add_row(label, f"{segment.count:,}", *cells)
        return table

    def to_html(self) -> str:
        """Render a standalone HTML page."""
        rows = []
        for segment in (*self.segments, self.overall):
            cells = "".join(
                f"<td class='num{' bad' if m in segment.worse else ''}'>"
                f"{fmt(segment.values[m], 3)}</td>"
                for m in self.metrics
            )
            rows.append(
                [
                    f"<td>{html.escape(segment.name)}</td>"
                    f"<td class='num'>{segment.count:,}</td>{cells}"
                ]
            )
        summary = (
            f"{len(self.flagged)} segment(s) worse than overall by more than {self.tolerance:.0%}"
        )
        return html_page(
            "Segment performance", summary, html_table(["segment", "count", *self.metrics], rows)
        )


def evaluate_segments(
    y_true: Any,
    y_pred: Any,
    *,
    segments: Any,
    metrics: Sequence[str] | Mapping[str, Metric] | None = None,
    task: Task = "classification",
    greater_is_better: Mapping[str, bool] | None = None,
    pos_label: Any = 1,
    tolerance: float = 0.1,
    min_segment_size: int = 30,
) -> SegmentReport:
    """Compute metrics per segment and flag segments that do worse than overall.

    Example:
        >>> report = evaluate_segments(
        ...     [1, 0, 1, 1], [1, 0, 0, 0], segments=["n", "n", "s", "s"], min_segment_size=1
        ... )
        >>> [s.name for s in report.flagged]
        ['s']

    Args:
        y_true: true labels (classification) or values (regression).
        y_pred: predicted labels or values.
        segments: one attribute (1-D) or several (a table: their combinations).
        metrics: built-in names (see ``BUILTIN_METRICS``), or name → callable
            ``f(y_true, y_pred) -> float`` (e.g. a scikit-learn metric or a
            :class:`CostMatrix`); default: four per ``task``.
        task: picks the default metrics.
        greater_is_better: direction of custom metrics (default True, except a
            ``CostMatrix``, where lower is better).
        pos_label: the positive label for precision, recall and f1.
        tolerance: relative shortfall from the overall value that flags a segment
            ("bias" is judged by its distance from zero).
        min_segment_size: smaller segments are marked small and never flagged.

    Raises:
        InvalidInputError: unknown metric, mismatched lengths or missing labels.
    """
    truth, predicted = labels_array(y_true, "y_true"), labels_array(y_pred, "y_pred")
    check_lengths(len(truth), y_pred=predicted)
    if len(truth) == 0:
        raise InvalidInputError("no rows to evaluate")
    resolved = _resolve_metrics(metrics, task, greater_is_better or {}, pos_label)
    groups = encode_groups(segments, len(truth), what="segments")
    overall_values = {name: _safe(f, truth, predicted) for name, (f, _) in resolved.items()}
    overall = SegmentMetrics({}, len(truth), overall_values)
    results = []
    for g in range(len(groups.keys)):
        rows = np.flatnonzero(groups.ids == g)
        values = {name: _safe(f, truth[rows], predicted[rows]) for name, (f, _) in resolved.items()}
        worse = tuple(
            name
            for name, (_, direction) in resolved.items()
            if _is_worse(values[name], overall_values[name], direction, tolerance)
        )
        small = rows.size < min_segment_size
        results.append(SegmentMetrics(groups.label(g), int(rows.size), values, worse, small))
    return SegmentReport(groups.attributes, tuple(resolved), overall, tuple(results), tolerance)


def _resolve_metrics(
    metrics: Sequence[str] | Mapping[str, Metric] | None,
    task: Task,
    greater: Mapping[str, bool],
    pos_label: Any,
) -> dict[str, tuple[Metric, int]]:
    if task not in _DEFAULTS:
        raise InvalidInputError(f"task must be one of {tuple(_DEFAULTS)}; got {task!r}")
    if metrics is None:
        metrics = _DEFAULTS[task]
    if isinstance(metrics, Mapping):
        resolved: dict[str, tuple[Metric, int]] = {}
        for name, func in metrics.items():
            if not callable(func):
                raise InvalidInputError(f"metric {name!r} is not callable")
            default = not isinstance(func, CostMatrix)
            resolved[str(name)] = (func, HIGHER if greater.get(name, default) else LOWER)
        return resolved
    unknown = [name for name in metrics if name not in BUILTIN_METRICS]
    if unknown or isinstance(metrics, str):
        raise InvalidInputError(
            f"unknown metric(s) {unknown or metrics}; built-in: {list(BUILTIN_METRICS)}"
        )
    return {
        name: (partial(BUILTIN_METRICS[name][0], positive=pos_label), BUILTIN_METRICS[name][1])
        for name in metrics
    }


def _safe(func: Metric, truth: npt.NDArray[Any], predicted: npt.NDArray[Any]) -> float | None:
    value = float(func(truth, predicted))
    return value if np.isfinite(value) else None


def _is_worse(value: float | None, overall: float | None, direction: int, tolerance: float) -> bool:
    if value is None or overall is None:
        return False
    if direction == NEAR_ZERO:
        value, overall, direction = abs(value), abs(overall), LOWER
    margin = tolerance * abs(overall)
    return value < overall - margin if direction == HIGHER else value > overall + margin
