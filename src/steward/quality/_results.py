"""Drift results: one :class:`ColumnDrift` per column and the dataset-level :class:`DriftReport`."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from rich.table import Table
from rich.text import Text

from steward.core import NotFoundError
from steward.quality._input import Category, ColumnKind
from steward.quality._render import fmt, html_page, html_table, pct, svg_overlay

__all__ = ["ColumnDrift", "ColumnStatus", "DriftReport", "Histogram"]

ColumnStatus = Literal["ok", "empty_reference", "empty_current", "type_mismatch"]
"""``ok``: compared; ``empty_*``: one side has no non-missing values, so no statistic;
``type_mismatch``: current values cannot be read as the reference's kind (counted as drift)."""

REPORT_FORMAT = "steward.drift-report/1"


@dataclass(frozen=True)
class Histogram:
    """Reference and current shares over the same bins, for charts (at most ~12 bins)."""

    labels: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "labels": list(self.labels),
            "reference": list(self.reference),
            "current": list(self.current),
        }


@dataclass(frozen=True)
class ColumnDrift:
    """How one column's current distribution compares with its reference.

    Attributes:
        column: the column name.
        kind: "numeric" or "categorical".
        method: the statistic used ("ks", "chi2", "psi", "kl", "js",
            "wasserstein", "wasserstein_norm"; "none" when nothing was computed).
        statistic: the statistic's value; None when nothing was computed.
        p_value: the p-value for "ks" and "chi2"; None for distances.
        threshold: the p-value below which (tests) or distance at or above which
            (distances) the column counts as drifted.
        drifted: the distribution verdict (``type_mismatch`` counts as drifted).
        status: why a statistic may be missing (see :data:`ColumnStatus`).
        reference_count / current_count: non-missing values compared.
        reference_missing_rate / current_missing_rate: share of rows missing
            (null, NaN or ±inf).
        missing_shift: the missing rate moved by at least the detector's
            ``missing_rate_threshold``.
        unseen_share: categorical: share of current values in categories the
            reference never had; numeric: share outside the reference [min, max].
        unseen_examples: up to 10 unseen categories, most frequent first.
        approximate: the statistic used a sketched reference (see ``ks_error``
            and ``wasserstein_error`` on the column's profile).
        histogram: shares per bin or category, for charts.
    """

    column: str
    kind: ColumnKind
    method: str
    statistic: float | None
    p_value: float | None
    threshold: float
    drifted: bool
    status: ColumnStatus = "ok"
    reference_count: int = 0
    current_count: int = 0
    reference_missing_rate: float = 0.0
    current_missing_rate: float = 0.0
    missing_shift: bool = False
    unseen_share: float = 0.0
    unseen_examples: tuple[Category, ...] = ()
    approximate: bool = False
    histogram: Histogram | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "column": self.column,
            "kind": self.kind,
            "method": self.method,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "status": self.status,
            "reference_count": self.reference_count,
            "current_count": self.current_count,
            "reference_missing_rate": self.reference_missing_rate,
            "current_missing_rate": self.current_missing_rate,
            "missing_shift": self.missing_shift,
            "unseen_share": self.unseen_share,
            "unseen_examples": list(self.unseen_examples),
            "approximate": self.approximate,
            "histogram": None if self.histogram is None else self.histogram.to_dict(),
        }


@dataclass(frozen=True)
class DriftReport:
    """Drift of every compared column, and the dataset-level verdict.

    Columns of the reference that the current data lacks are listed in
    ``missing_columns``; columns only the current data has, in
    ``extra_columns``.  Neither is silently dropped: both appear in every
    rendering and make :attr:`complete` false.

    Attributes:
        columns: per-column results, in reference column order.
        reference_rows / current_rows: table sizes.
        drift_share: share of drifted columns at which the dataset counts as drifted.
        missing_columns / extra_columns: the column-set mismatch, if any.
        skipped_columns: reference columns with no drift statistic (e.g. nested types) → why.
    """

    columns: tuple[ColumnDrift, ...]
    reference_rows: int
    current_rows: int
    drift_share: float = 0.5
    missing_columns: tuple[str, ...] = ()
    extra_columns: tuple[str, ...] = ()
    skipped_columns: Mapping[str, str] = field(default_factory=dict)

    def __getitem__(self, column: str) -> ColumnDrift:
        for result in self.columns:
            if result.column == column:
                return result
        raise NotFoundError(
            f"no drift result for column {column!r}; columns: {[c.column for c in self.columns]}"
        )

    def __contains__(self, column: object) -> bool:
        return any(result.column == column for result in self.columns)

    def __iter__(self) -> Iterator[ColumnDrift]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        """Names of the columns whose distribution drifted."""
        return tuple(result.column for result in self.columns if result.drifted)

    @property
    def missing_shift_columns(self) -> tuple[str, ...]:
        """Names of the columns whose missing rate moved past the threshold."""
        return tuple(result.column for result in self.columns if result.missing_shift)

    @property
    def share_drifted(self) -> float:
        """Drifted columns over compared columns (0.0 when none were compared)."""
        return len(self.drifted_columns) / len(self.columns) if self.columns else 0.0

    @property
    def dataset_drift(self) -> bool:
        """Whether the share of drifted columns reaches ``drift_share``."""
        return bool(self.columns) and self.share_drifted >= self.drift_share

    @property
    def complete(self) -> bool:
        """Whether the current data had every reference column."""
        return not self.missing_columns

    def summary(self) -> str:
        """One line: how many columns drifted, and any column-set mismatch."""
        text = (
            f"{len(self.drifted_columns)} of {len(self.columns)} columns drifted "
            f"({pct(self.share_drifted)}; dataset drift at {pct(self.drift_share)}: "
            f"{'yes' if self.dataset_drift else 'no'})"
        )
        if self.missing_columns:
            text += f"; missing in current: {', '.join(self.missing_columns)}"
        if self.extra_columns:
            text += f"; only in current: {', '.join(self.extra_columns)}"
        if self.missing_shift_columns:
            text += f"; missing-rate shift: {', '.join(self.missing_shift_columns)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (format ``steward.drift-report/1``)."""
        return {
            "format": REPORT_FORMAT,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "drift_share": self.drift_share,
            "dataset_drift": self.dataset_drift,
            "n_columns": len(self.columns),
            "n_drifted": len(self.drifted_columns),
            "share_drifted": self.share_drifted,
            "drifted_columns": list(self.drifted_columns),
            "missing_shift_columns": list(self.missing_shift_columns),
            "missing_columns": list(self.missing_columns),
            "extra_columns": list(self.extra_columns),
            "skipped_columns": dict(self.skipped_columns),
            "columns": [result.to_dict() for result in self.columns],
        }

    def to_json(self, indent: int | None = None) -> str:
        """Serialize to JSON text."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def __rich__(self) -> Table:
        table = Table(title="Data drift", caption=self.summary(), caption_justify="left")
        for header in ("column", "kind", "method", "statistic", "p-value", "threshold"):
            table.add_column(header, justify="right" if header[0] in "spt" else "left")
        for header in ("drift", "missing ref → cur", "unseen", "status"):
            table.add_column(header)
        for r in self.columns:
            verdict = Text("drift", style="bold red") if r.drifted else Text("ok", style="green")
            missing = f"{pct(r.reference_missing_rate)} → {pct(r.current_missing_rate)}"
            table.add_row(
                r.column,
                r.kind,
                r.method,
                fmt(r.statistic),
                fmt(r.p_value),
                fmt(r.threshold),
                verdict,
                Text(missing, style="yellow" if r.missing_shift else ""),
                pct(r.unseen_share) if r.unseen_share else "",
                "" if r.status == "ok" else r.status,
            )
        return table

    def to_html(self) -> str:
        """Render a standalone HTML page; drifted columns get a histogram overlay."""
        headers = ["column", "kind", "method", "statistic", "p-value", "threshold", "drift"]
        headers += ["missing ref → cur", "unseen", "status", "reference (bars) vs current (line)"]
        rows = []
        for r in self.columns:
            chart = ""
            if r.drifted and r.histogram is not None:
                h = r.histogram
                chart = svg_overlay(h.labels, h.reference, h.current)
            verdict = (
                "<span class='bad'>drift</span>" if r.drifted else "<span class='ok'>ok</span>"
            )
            missing_class = " warn" if r.missing_shift else ""
            rows.append(
                [
                    f"<td>{html.escape(r.column)}</td><td>{r.kind}</td>",
                    f"<td>{html.escape(r.method)}</td><td class='num'>{fmt(r.statistic)}</td>",
                    f"<td class='num'>{fmt(r.p_value)}</td><td class='num'>{fmt(r.threshold)}</td>",
                    f"<td>{verdict}</td>",
                    f"<td class='num{missing_class}'>{pct(r.reference_missing_rate)} → "
                    f"{pct(r.current_missing_rate)}</td>",
                    f"<td class='num'>{pct(r.unseen_share) if r.unseen_share else ''}</td>",
                    f"<td>{'' if r.status == 'ok' else r.status}</td><td>{chart}</td>",
                ]
            )
        return html_page("Data drift", self.summary(), html_table(headers, rows))
