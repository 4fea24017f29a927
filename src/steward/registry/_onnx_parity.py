"""Parity: how closely an ONNX graph reproduces a scikit-learn model on a sample.

Classifiers: labels must be identical and every probability within
``atol + rtol * |p|`` of ``predict_proba``; regressors: every prediction within
``atol + rtol * |y|``.  A value that is NaN on one side only is infinitely far; NaN
on both sides is equal.  Distances are per row (the largest over a row's values),
so a report can name the rows that are off and by how much.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from steward.registry._onnx_inputs import onnx_inputs

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ParityReport", "measure_parity"]

WORST_ROWS = 10
LISTED_MISMATCHES = 100


@dataclass(frozen=True)
class ParityReport:
    """How closely the ONNX graph reproduced the model's predictions on a sample.

    Attributes:
        passed: every label identical and every value within tolerance.
        rows_checked: rows of the sample compared.
        label_mismatches: positions (0-based) of rows whose labels differ, the first 100.
        max_abs_diff: largest absolute distance between a probability (classifiers) or
            prediction (regressors) and its ONNX counterpart; ``inf`` when one side is NaN.
        atol: absolute tolerance used.
        worst_rows: up to 10 ``(row, distance)`` pairs, farthest first (rows at distance 0
            are left out).
        rtol: relative tolerance used (a value may be off by ``atol + rtol * |expected|``).
        rows_out_of_tolerance: rows with at least one value beyond the tolerance.
        label_mismatch_count: rows whose labels differ (all of them, not only those listed).
        compared: what was compared: ``("label", "probabilities")``, ``("label",)`` for a
            classifier without ``predict_proba``, or ``("prediction",)``.
        problem: why nothing could be compared (the graph's outputs do not have the
            shape of the model's), else ``None``.
    """

    passed: bool
    rows_checked: int
    label_mismatches: list[int]
    max_abs_diff: float
    atol: float
    worst_rows: list[tuple[int, float]]
    rtol: float = 0.0
    rows_out_of_tolerance: int = 0
    label_mismatch_count: int = 0
    compared: tuple[str, ...] = ()
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready view (``inf`` distances become ``None``)."""
        return {
            "passed": self.passed,
            "rows_checked": self.rows_checked,
            "compared": list(self.compared),
            "label_mismatch_count": self.label_mismatch_count,
            "label_mismatches": list(self.label_mismatches),
            "rows_out_of_tolerance": self.rows_out_of_tolerance,
            "max_abs_diff": _finite_or_none(self.max_abs_diff),
            "atol": self.atol,
            "rtol": self.rtol,
            "worst_rows": [[row, _finite_or_none(dist)] for row, dist in self.worst_rows],
            "problem": self.problem,
        }

    def summary(self) -> str:
        """Say in one line whether parity held and, if not, which rows and how far off.

        Example: ``parity failed on 200 rows: 1 label differs (row 7); 3 rows beyond
        1e-05 (max |diff| 0.42 at row 7; worst rows 7: 0.42, 12: 3.1e-05, 40: 2e-05)``
        """
        tolerance = f"{self.atol:g}" + (f" + {self.rtol:g}*|expected|" if self.rtol else "")
        values = "probabilities" if "probabilities" in self.compared else "predictions"
        if self.passed:
            if self.compared == ("label",):
                return f"parity passed on {self.rows_checked} rows: labels identical"
            labels = "labels identical, " if "label" in self.compared else ""
            return (
                f"parity passed on {self.rows_checked} rows: {labels}{values} within "
                f"{tolerance} (max |diff| {self.max_abs_diff:.3g})"
            )
        parts = [self.problem] if self.problem else []
        if self.label_mismatch_count:
            rows = ", ".join(str(r) for r in self.label_mismatches[:WORST_ROWS])
            more = ", ..." if self.label_mismatch_count > WORST_ROWS else ""
            noun = "label differs" if self.label_mismatch_count == 1 else "labels differ"
            word = "row" if self.label_mismatch_count == 1 else "rows"
            parts.append(f"{self.label_mismatch_count} {noun} ({word} {rows}{more})")
        if self.rows_out_of_tolerance and self.worst_rows:
            worst = ", ".join(f"{row}: {dist:.3g}" for row, dist in self.worst_rows)
            parts.append(
                f"{self.rows_out_of_tolerance} rows beyond {tolerance} (max |diff| "
                f"{self.max_abs_diff:.3g} at row {self.worst_rows[0][0]}; worst rows {worst})"
            )
        return f"parity failed on {self.rows_checked} rows: " + "; ".join(parts)


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


class _Incomparable(Exception):
    """The graph's outputs do not have the shape of the model's."""


def measure_parity(
    model: Any,
    kind: str,
    reference: pd.DataFrame | np.ndarray,
    session: Any,
    *,
    atol: float,
    rtol: float,
) -> ParityReport:
    """Run ``session`` on ``reference`` and compare with ``model``'s predictions.

    Args:
        model: the fitted scikit-learn model.
        kind: ``"classifier"`` or ``"regressor"``.
        reference: the sample, as the model takes it.
        session: an onnxruntime ``InferenceSession`` of the compiled graph.
        atol: absolute tolerance.
        rtol: relative tolerance.
    """
    rows = len(reference)
    inputs = session.get_inputs()
    feeds = onnx_inputs(reference, [i.name for i in inputs], {i.name: i.type for i in inputs})
    outputs = session.run(None, feeds)
    try:
        return _compare(model, kind, reference, outputs, atol=atol, rtol=rtol)
    except _Incomparable as exc:
        return ParityReport(
            passed=False,
            rows_checked=rows,
            label_mismatches=[],
            max_abs_diff=math.inf,
            atol=float(atol),
            worst_rows=[],
            rtol=float(rtol),
            rows_out_of_tolerance=rows,
            problem=str(exc),
        )


def _compare(
    model: Any,
    kind: str,
    reference: pd.DataFrame | np.ndarray,
    outputs: list[Any],
    *,
    atol: float,
    rtol: float,
) -> ParityReport:
    rows = len(reference)
    if kind == "regressor":
        expected = np.asarray(model.predict(reference), dtype=np.float64).reshape(rows, -1)
        got = _shaped(outputs[0], expected.shape, "predictions")
        return _report(rows, None, (expected, got), atol, rtol, ("prediction",))
    mismatched = _label_mismatches(np.asarray(model.predict(reference)), outputs[0], rows)
    if not hasattr(model, "predict_proba") or len(outputs) < 2:
        return _report(rows, mismatched, None, atol, rtol, ("label",))
    expected = np.asarray(model.predict_proba(reference), dtype=np.float64).reshape(rows, -1)
    got = _shaped(outputs[1], expected.shape, "probabilities")
    return _report(rows, mismatched, (expected, got), atol, rtol, ("label", "probabilities"))


def _shaped(output: object, shape: tuple[int, ...], what: str) -> np.ndarray:
    values = np.asarray(output)
    if values.dtype == object or values.size != math.prod(shape):
        raise _Incomparable(
            f"the ONNX graph returns {what} of shape {values.shape} ({values.dtype}) where "
            f"scikit-learn gives {shape}"
        )
    return values.astype(np.float64).reshape(shape)


def _label_mismatches(expected: np.ndarray, output: object, rows: int) -> np.ndarray:
    got = np.asarray(output).reshape(-1)
    expected = expected.reshape(-1)
    if got.shape != (rows,) or expected.shape != (rows,):
        raise _Incomparable(
            f"the ONNX graph returns labels of shape {got.shape} where scikit-learn gives "
            f"{expected.shape}"
        )
    if expected.dtype.kind in "iufb" and got.dtype.kind in "iufb":
        return np.asarray(expected.astype(np.float64) != got.astype(np.float64))
    return np.asarray(expected.astype(str) != got.astype(str))


def _report(
    rows: int,
    mismatched: np.ndarray | None,
    values: tuple[np.ndarray, np.ndarray] | None,
    atol: float,
    rtol: float,
    compared: tuple[str, ...],
) -> ParityReport:
    label_rows = [] if mismatched is None else np.flatnonzero(mismatched).tolist()
    distance = np.zeros(rows)
    beyond = np.zeros(rows, dtype=bool)
    if values is not None:
        expected, got = values
        diff = np.abs(got - expected)
        diff[np.isnan(got) & np.isnan(expected)] = 0.0
        diff[np.isnan(diff)] = np.inf  # NaN on one side only
        tolerance = atol + rtol * np.abs(np.nan_to_num(expected))
        distance = diff.max(axis=1)
        beyond = (diff > tolerance).any(axis=1)
    order = np.argsort(-distance, kind="stable")[:WORST_ROWS]
    worst = [(int(r), float(distance[r])) for r in order if distance[r] > 0]
    return ParityReport(
        passed=not label_rows and not beyond.any(),
        rows_checked=rows,
        label_mismatches=label_rows[:LISTED_MISMATCHES],
        max_abs_diff=float(distance.max(initial=0.0)),
        atol=float(atol),
        worst_rows=worst,
        rtol=float(rtol),
        rows_out_of_tolerance=int(beyond.sum()),
        label_mismatch_count=len(label_rows),
        compared=compared,
    )
