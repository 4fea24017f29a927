r"""Proxy detection: which features reveal a protected attribute.

For each candidate column, its association with the protected attribute:

=====================  ======================  ==========================================
protected \\ feature    categorical             numeric
=====================  ======================  ==========================================
categorical            Cramér's V              correlation ratio η (feature by group)
numeric                correlation ratio η     absolute Spearman correlation
=====================  ======================  ==========================================

All are in [0, 1].  Every pair also gets its mutual information (numbers cut
into quantile bins) and the *uncertainty coefficient* — the share of the
protected attribute's entropy the feature explains — which catches
relationships the coefficients above miss (e.g. non-monotone ones).  A column
is a likely proxy when either the association or the uncertainty coefficient
reaches the threshold.  Rows where either value is missing are left out.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from rich.table import Table
from rich.text import Text
from scipy import stats

from steward.core import InvalidInputError
from steward.quality._input import ColumnKind, arrow_kind, as_table, float_values
from steward.quality._render import fmt, html_page, html_table

__all__ = ["ProxyAssociation", "ProxyReport", "detect_proxies"]

REPORT_FORMAT = "steward.proxy-report/1"
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ProxyAssociation:
    """How strongly one feature is associated with the protected attribute.

    Attributes:
        column: the feature.
        kind: the feature's kind ("numeric" or "categorical").
        method: "cramers_v", "correlation_ratio" or "spearman".
        association: the coefficient, in [0, 1].
        mutual_information: in nats.
        uncertainty_coefficient: mutual information over the protected
            attribute's entropy, in [0, 1].
        rows: rows where both values are present.
        proxy: association or uncertainty coefficient reaches the threshold.
    """

    column: str
    kind: ColumnKind
    method: str
    association: float
    mutual_information: float
    uncertainty_coefficient: float
    rows: int
    proxy: bool

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "column": self.column,
            "kind": self.kind,
            "method": self.method,
            "association": self.association,
            "mutual_information": self.mutual_information,
            "uncertainty_coefficient": self.uncertainty_coefficient,
            "rows": self.rows,
            "proxy": self.proxy,
        }


@dataclass(frozen=True)
class ProxyReport:
    """Associations of every candidate feature with the protected attribute, strongest first."""

    protected: str
    threshold: float
    associations: tuple[ProxyAssociation, ...]

    @property
    def proxies(self) -> tuple[str, ...]:
        """Columns flagged as likely proxies."""
        return tuple(a.column for a in self.associations if a.proxy)

    def summary(self) -> str:
        """One line naming the likely proxies."""
        if not self.proxies:
            return f"no likely proxies of {self.protected!r} at threshold {self.threshold}"
        return f"likely proxies of {self.protected!r}: {', '.join(self.proxies)}"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (format ``steward.proxy-report/1``)."""
        return {
            "format": REPORT_FORMAT,
            "protected": self.protected,
            "threshold": self.threshold,
            "proxies": list(self.proxies),
            "associations": [a.to_dict() for a in self.associations],
        }

    def to_json(self, indent: int | None = None) -> str:
        """Serialize to JSON text."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def __rich__(self) -> Table:
        table = Table(title=f"Proxies of {self.protected}", caption=self.summary())
        for header in ("column", "method", "association", "uncertainty coef.", "proxy"):
            table.add_column(header, justify="right" if header[0] in "au" else "left")
        for a in self.associations:
            flag = Text("proxy", style="bold red") if a.proxy else Text("")
            table.add_row(
                a.column, a.method, fmt(a.association, 3), fmt(a.uncertainty_coefficient, 3), flag
            )
        return table

    def to_html(self) -> str:
        """Render a standalone HTML page."""
        rows = [
            [
                f"<td>{html.escape(a.column)}</td><td>{a.method}</td>",
                f"<td class='num'>{fmt(a.association, 3)}</td>",
                f"<td class='num'>{fmt(a.uncertainty_coefficient, 3)}</td>",
                f"<td class='bad'>{'proxy' if a.proxy else ''}</td>",
            ]
            for a in self.associations
        ]
        headers = ["column", "method", "association", "uncertainty coef.", "proxy"]
        return html_page(f"Proxies of {self.protected}", self.summary(), html_table(headers, rows))


@dataclass(frozen=True, eq=False)
class _Column:
    kind: ColumnKind
    present: npt.NDArray[np.bool_]
    values: FloatArray  # numbers (numeric) or category codes (categorical); NaN-free where present


def detect_proxies(
    data: Any,
    *,
    protected: str,
    columns: Sequence[str] | None = None,
    column_types: Mapping[str, ColumnKind] | None = None,
    threshold: float = 0.3,
    bins: int = 10,
) -> ProxyReport:
    """Measure how strongly each feature is associated with a protected attribute.

    Example:
        >>> data = {"sex": ["f", "m"] * 50, "title": ["ms", "mr"] * 50, "x": list(range(100))}
        >>> detect_proxies(data, protected="sex").proxies
        ('title',)

    Args:
        data: a table (pandas, pyarrow, dict of columns, Parquet/CSV path).
        protected: the protected attribute's column.
        columns: candidate features (default: every other column).
        column_types: force "numeric" or "categorical" for some columns.
        threshold: association (or uncertainty coefficient) flagging a proxy.
        bins: quantile bins for numbers in the mutual information.

    Raises:
        InvalidInputError: unknown columns, an unsupported type, or bad arguments.
    """
    if not 0 < threshold <= 1:
        raise InvalidInputError(f"threshold must be in (0, 1]; got {threshold}")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise InvalidInputError(f"bins must be an int >= 2; got {bins!r}")
    source = as_table(data, role="data")
    candidates = [n for n in (columns or source.names) if n != protected]
    missing = [n for n in [protected, *candidates] if n not in source.names]
    if missing:
        raise InvalidInputError(f"data has no column(s) {missing}; it has {list(source.names)}")
    types = dict(column_types or {})
    arrays = source.read([protected])
    target = _prepare(protected, arrays[protected], types.get(protected))
    results = []
    for name in candidates:
        feature = _prepare(name, source.read([name])[name], types.get(name))
        results.append(_associate(name, target, feature, threshold, bins))
    results.sort(key=lambda a: (-a.association, a.column))
    return ProxyReport(protected, threshold, tuple(results))


def _prepare(name: str, array: pa.ChunkedArray, kind: ColumnKind | None) -> _Column:
    resolved = kind or arrow_kind(array.type)
    if resolved is None:
        raise InvalidInputError(f"column {name!r} has unsupported type {array.type}")
    if resolved == "numeric":
        try:
            values = float_values(array)
        except InvalidInputError as exc:
            raise InvalidInputError(f"column {name!r}: {exc}") from exc
        return _Column("numeric", np.isfinite(values), values)
    if pa.types.is_floating(array.type):
        array = pc.if_else(pc.is_nan(array), pa.scalar(None, array.type), array)
    encoded = pc.dictionary_encode(array)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.unify_dictionaries().combine_chunks()
    present = np.asarray(encoded.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    codes = np.asarray(
        encoded.indices.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.float64
    )
    return _Column("categorical", present, codes)


def _associate(
    name: str, target: _Column, feature: _Column, threshold: float, bins: int
) -> ProxyAssociation:
    both = target.present & feature.present
    t, f = target.values[both], feature.values[both]
    rows = int(both.sum())
    if rows < 2:
        return ProxyAssociation(name, feature.kind, "none", 0.0, 0.0, 0.0, rows, False)
    if target.kind == "categorical" and feature.kind == "categorical":
        method, value = "cramers_v", _cramers_v(_codes(t), _codes(f))
    elif target.kind == "categorical":
        method, value = "correlation_ratio", _correlation_ratio(_codes(t), f)
    elif feature.kind == "categorical":
        method, value = "correlation_ratio", _correlation_ratio(_codes(f), t)
    else:
        method, value = "spearman", _spearman(t, f)
    t_codes = _codes(t) if target.kind == "categorical" else _quantile_codes(t, bins)
    f_codes = _codes(f) if feature.kind == "categorical" else _quantile_codes(f, bins)
    mi, entropy = _mutual_information(t_codes, f_codes)
    coefficient = min(1.0, mi / entropy) if entropy > 0 else 0.0
    proxy = value >= threshold or coefficient >= threshold
    return ProxyAssociation(name, feature.kind, method, value, mi, coefficient, rows, proxy)


def _codes(values: FloatArray) -> IntArray:
    _, inverse = np.unique(values, return_inverse=True)
    return inverse.astype(np.int64).reshape(-1)


def _quantile_codes(values: FloatArray, bins: int) -> IntArray:
    edges = np.unique(np.quantile(values, np.arange(1, bins) / bins))
    return np.searchsorted(edges, values, side="right").astype(np.int64)


def _table(a: IntArray, b: IntArray) -> npt.NDArray[np.float64]:
    rows, cols = int(a.max()) + 1, int(b.max()) + 1
    return np.bincount(a * cols + b, minlength=rows * cols).reshape(rows, cols).astype(np.float64)


def _cramers_v(a: IntArray, b: IntArray) -> float:
    table = _table(a, b)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    k = min(table.shape) - 1
    if k == 0:
        return 0.0
    chi2 = stats.chi2_contingency(table, correction=False).statistic
    return float(min(1.0, np.sqrt(chi2 / table.sum() / k)))


def _correlation_ratio(groups: IntArray, values: FloatArray) -> float:
    counts = np.bincount(groups).astype(np.float64)
    sums = np.bincount(groups, weights=values)
    present = counts > 0
    means = sums[present] / counts[present]
    overall = values.mean()
    total = float(np.sum((values - overall) ** 2))
    if total == 0:
        return 0.0
    between = float(np.sum(counts[present] * (means - overall) ** 2))
    return float(min(1.0, np.sqrt(between / total)))


def _spearman(a: FloatArray, b: FloatArray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(min(1.0, abs(stats.spearmanr(a, b).statistic)))


def _mutual_information(a: IntArray, b: IntArray) -> tuple[float, float]:
    joint = _table(a, b)
    joint /= joint.sum()
    pa_, pb = joint.sum(axis=1), joint.sum(axis=0)
    nonzero = joint > 0
    mi = float(np.sum(joint[nonzero] * np.log(joint[nonzero] / np.outer(pa_, pb)[nonzero])))
    entropy = float(-np.sum(pa_[pa_ > 0] * np.log(pa_[pa_ > 0])))
    return max(mi, 0.0), entropy
