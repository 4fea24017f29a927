"""Validate a table against a schema, column by column, and report every issue found.

Checks and their severity:

================  ======================================================  ==================
check             what                                                    severity
================  ======================================================  ==================
missing_column    a schema column is absent                               error
extra_column      a column the schema does not know                       warning (or error)
type              type differs: widened (see ``type_change``) / other     warning / error
nulls             nulls in a non-nullable column / above max_null_rate    error / warning
out_of_range      numbers outside [minimum, maximum]                      warning, error above
                                                                          the error share
unseen_category   values outside the allowed categories                   same as above
duplicate_values  repeats in a column marked unique                       warning
duplicate_key     repeated key (one or several columns)                   error
================  ======================================================  ==================
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rich.table import Table
from rich.text import Text

from steward.quality._engine import map_columns
from steward.quality._input import TableSource, category_counts, numeric_values
from steward.quality._render import html_page, html_table, pct
from steward.quality._schema_types import ColumnSchema, type_change, type_kind

__all__ = ["Issue", "Severity", "ValidationPolicy", "ValidationReport", "validate_source"]

Severity = Literal["error", "warning"]
_EXAMPLES = 5
REPORT_FORMAT = "steward.validation-report/1"


@dataclass(frozen=True)
class Issue:
    """One problem found by validation.

    Attributes:
        check: which check found it (see the module docstring).
        severity: "error" (the data should not be used) or "warning".
        column: the column, or None for table-level issues (a multi-column key).
        message: what is wrong, with the offending and the expected values.
        count: offending values or rows.
        share: ``count`` over the rows checked.
        examples: a few offending values.
    """

    check: str
    severity: Severity
    column: str | None
    message: str
    count: int = 0
    share: float = 0.0
    examples: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "check": self.check,
            "severity": self.severity,
            "column": self.column,
            "message": self.message,
            "count": self.count,
            "share": self.share,
            "examples": [_jsonable(value) for value in self.examples],
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else str(value)
    if isinstance(value, tuple | list):
        return [_jsonable(item) for item in value]
    return str(value)


@dataclass(frozen=True)
class ValidationReport:
    """Everything validation found; ``ok`` when there are no errors (warnings allowed).

    Attributes:
        issues: errors first, then warnings, in column order.
        rows: rows validated.
        schema_fingerprint: SHA-256 of the schema validated against.
    """

    issues: tuple[Issue, ...]
    rows: int
    schema_fingerprint: str = ""

    @property
    def errors(self) -> tuple[Issue, ...]:
        """Issues of severity "error"."""
        return tuple(issue for issue in self.issues if issue.severity == "error")

    @property
    def warnings(self) -> tuple[Issue, ...]:
        """Issues of severity "warning"."""
        return tuple(issue for issue in self.issues if issue.severity == "warning")

    @property
    def ok(self) -> bool:
        """True when validation found no errors."""
        return not self.errors

    def summary(self) -> str:
        """One line: rows checked and counts of errors and warnings."""
        verdict = "passed" if self.ok else "failed"
        return (
            f"validation {verdict}: {self.rows:,} rows, {len(self.errors)} error(s), "
            f"{len(self.warnings)} warning(s)"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (format ``steward.validation-report/1``)."""
        return {
            "format": REPORT_FORMAT,
            "ok": self.ok,
            "rows": self.rows,
            "schema_fingerprint": self.schema_fingerprint,
            "n_errors": len(self.errors),
            "n_warnings": len(self.warnings),
            "issues": [issue.to_dict() for issue in self.issues],
        }

    def to_json(self, indent: int | None = None) -> str:
        """Serialize to JSON text."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def __rich__(self) -> Table:
        table = Table(title="Data validation", caption=self.summary(), caption_justify="left")
        for header in ("severity", "check", "column", "count", "share", "message"):
            table.add_column(header, justify="right" if header in ("count", "share") else "left")
        for issue in self.issues:
            style = "bold red" if issue.severity == "error" else "yellow"
            table.add_row(
                Text(issue.severity, style=style),
                issue.check,
                issue.column or "",
                f"{issue.count:,}",
                pct(issue.share),
                issue.message,
            )
        return table

    def to_html(self) -> str:
        """Render a standalone HTML page."""
        rows = []
        for issue in self.issues:
            css = "bad" if issue.severity == "error" else "warn"
            rows.append(
                [
                    f"<td class='{css}'>{issue.severity}</td><td>{issue.check}</td>",
                    f"<td>{html.escape(issue.column or '')}</td>",
                    f"<td class='num'>{issue.count:,}</td><td class='num'>{pct(issue.share)}</td>",
                    f"<td>{html.escape(issue.message)}</td>",
                ]
            )
        headers = ["severity", "check", "column", "count", "share", "message"]
        return html_page("Data validation", self.summary(), html_table(headers, rows))


@dataclass(frozen=True)
class ValidationPolicy:
    """How strict validation is.

    Attributes:
        allow_extra_columns: unknown columns are warnings (True) or errors.
        out_of_range_error_share: out-of-range share above which it is an error.
        unseen_error_share: unseen-category share above which it is an error.
    """

    allow_extra_columns: bool = True
    out_of_range_error_share: float = 0.01
    unseen_error_share: float = 0.01


def validate_source(
    columns: Sequence[ColumnSchema],
    key: Sequence[str],
    source: TableSource,
    policy: ValidationPolicy,
    *,
    memory_budget: int,
    fingerprint: str = "",
) -> ValidationReport:
    """Check ``source`` against the column schemas and key; return every issue."""
    rows = source.num_rows
    present = set(source.names)
    expected = {column.name for column in columns}
    issues: list[Issue] = [
        Issue("missing_column", "error", c.name, f"column {c.name!r} ({c.type}) is missing")
        for c in columns
        if c.name not in present
    ]
    extra_severity: Severity = "warning" if policy.allow_extra_columns else "error"
    issues += [
        Issue("extra_column", extra_severity, name, f"column {name!r} is not in the schema")
        for name in source.names
        if name not in expected
    ]
    checked = [c for c in columns if c.name in present]
    by_name = {c.name: c for c in checked}
    found = map_columns(
        source,
        [c.name for c in checked],
        lambda name, array: _check_column(by_name[name], array, policy),
        n_jobs=1,
        memory_budget=memory_budget,
    )
    for column_issues in found.values():
        issues += column_issues
    if key and all(name in present for name in key):
        issues += _check_key(list(key), source)
    issues.sort(key=lambda issue: issue.severity != "error")
    return ValidationReport(tuple(issues), rows, fingerprint)


def _check_column(
    spec: ColumnSchema, array: pa.ChunkedArray, policy: ValidationPolicy
) -> list[Issue]:
    rows = len(array)
    actual = str(array.type)
    issues: list[Issue] = []
    change = type_change(spec.type, actual)
    if change != "same":
        severity: Severity = "warning" if change == "widened" else "error"
        issues.append(
            Issue(
                "type",
                severity,
                spec.name,
                f"{spec.name!r}: expected {spec.type}, got {actual} ({change})",
            )
        )
        if severity == "error":
            return issues
    issues += _check_nulls(spec, array, rows)
    kind = type_kind(actual)
    if (spec.minimum is not None or spec.maximum is not None) and kind in (
        "integer",
        "float",
        "decimal",
    ):
        issues += _check_range(spec, array, rows, policy)
    if spec.categories is not None and kind in ("string", "boolean", "integer"):
        issues += _check_categories(spec, array, rows, policy)
    if spec.unique:
        issues += _check_unique(spec, array, rows)
    return issues


def _null_count(array: pa.ChunkedArray) -> int:
    nulls = int(array.null_count)
    if pa.types.is_floating(array.type):
        nulls += int(pc.sum(pc.is_nan(array)).as_py() or 0)
    return nulls


def _check_nulls(spec: ColumnSchema, array: pa.ChunkedArray, rows: int) -> list[Issue]:
    nulls = _null_count(array)
    share = nulls / rows if rows else 0.0
    if nulls and not spec.nullable:
        message = f"{spec.name!r}: {nulls:,} null(s) in a non-nullable column"
        return [Issue("nulls", "error", spec.name, message, nulls, share)]
    if share > spec.max_null_rate:
        message = (
            f"{spec.name!r}: null rate {pct(share)} above the allowed {pct(spec.max_null_rate)}"
        )
        return [Issue("nulls", "warning", spec.name, message, nulls, share)]
    return []


def _severity(share: float, error_share: float) -> Severity:
    return "error" if share > error_share else "warning"


def _check_range(
    spec: ColumnSchema, array: pa.ChunkedArray, rows: int, policy: ValidationPolicy
) -> list[Issue]:
    values, _ = numeric_values(array)
    low = -np.inf if spec.minimum is None else spec.minimum
    high = np.inf if spec.maximum is None else spec.maximum
    outside = (values < low) | (values > high)
    count = int(np.count_nonzero(outside))
    if not count:
        return []
    share = count / rows
    examples = values[outside][:_EXAMPLES]
    shown = tuple(int(v) if float(v).is_integer() else float(v) for v in examples.tolist())
    message = (
        f"{spec.name!r}: {count:,} value(s) ({pct(share)}) outside [{spec.minimum}, {spec.maximum}]"
        f", e.g. {list(shown)}"
    )
    severity = _severity(share, policy.out_of_range_error_share)
    return [Issue("out_of_range", severity, spec.name, message, count, share, shown)]


def _check_categories(
    spec: ColumnSchema, array: pa.ChunkedArray, rows: int, policy: ValidationPolicy
) -> list[Issue]:
    allowed = set(spec.categories or ())
    keys, counts, _ = category_counts(array)
    unseen = sorted(
        ((key, int(count)) for key, count in zip(keys, counts, strict=True) if key not in allowed),
        key=lambda item: -item[1],
    )
    if not unseen:
        return []
    count = sum(c for _, c in unseen)
    share = count / rows
    shown = tuple(key for key, _ in unseen[:_EXAMPLES])
    message = (
        f"{spec.name!r}: {count:,} value(s) ({pct(share)}) in {len(unseen)} unseen "
        f"categor{'y' if len(unseen) == 1 else 'ies'}, e.g. {list(shown)}"
    )
    severity = _severity(share, policy.unseen_error_share)
    return [Issue("unseen_category", severity, spec.name, message, count, share, shown)]


def _check_unique(spec: ColumnSchema, array: pa.ChunkedArray, rows: int) -> list[Issue]:
    non_null = len(array) - array.null_count
    distinct = int(pc.count_distinct(array).as_py())
    duplicates = non_null - distinct
    if duplicates <= 0:
        return []
    counted = pc.value_counts(array)
    repeated = pc.filter(counted, pc.greater(counted.field("counts"), 1))
    shown = tuple(repeated.field("values").to_pylist()[:_EXAMPLES])
    message = (
        f"{spec.name!r}: {duplicates:,} repeated value(s) in a unique column, e.g. {list(shown)}"
    )
    return [
        Issue(
            "duplicate_values", "warning", spec.name, message, duplicates, duplicates / rows, shown
        )
    ]


def _check_key(key: list[str], source: TableSource) -> list[Issue]:
    arrays = source.read(key)
    table = pa.table({name: arrays[name] for name in key})
    groups = table.group_by(key).aggregate([([], "count_all")])
    counts = np.asarray(groups.column("count_all").to_numpy(), dtype=np.int64)
    repeated = counts > 1
    duplicates = int((counts[repeated] - 1).sum())
    if not duplicates:
        return []
    rows = groups.filter(pa.array(repeated)).slice(0, _EXAMPLES).select(key).to_pylist()
    shown = tuple(tuple(row[name] for name in key) if len(key) > 1 else row[key[0]] for row in rows)
    label = ", ".join(key)
    message = f"key ({label}): {duplicates:,} duplicate row(s), e.g. {list(shown)}"
    column = key[0] if len(key) == 1 else None
    share = duplicates / max(table.num_rows, 1)
    return [Issue("duplicate_key", "error", column, message, duplicates, share, shown)]
