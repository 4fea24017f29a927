"""Schemas: inferred from data, validated against data, compared with each other."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from steward.core import InvalidInputError, canonical_json, sha256_hex
from steward.quality._engine import DEFAULT_MEMORY_BUDGET, map_columns
from steward.quality._errors import DataQualityError
from steward.quality._input import as_table, category_counts, numeric_values
from steward.quality._schema_diff import SchemaDiff, diff_columns
from steward.quality._schema_types import ColumnSchema, type_kind
from steward.quality._validation import ValidationPolicy, ValidationReport, validate_source

__all__ = ["SCHEMA_FORMAT", "Schema"]

SCHEMA_FORMAT = "steward.schema/1"


@dataclass(frozen=True)
class Schema:
    """The expected shape of a table: columns, types, nullability, ranges, categories, key.

    Infer one from trusted data, store it (JSON, versioned by ``fingerprint``),
    then validate new data against it before using the data.

    Example:
        >>> schema = Schema.infer({"age": [30, 41, 55], "plan": ["a", "b", "a"]})
        >>> report = schema.validate({"age": [30, 400, 41], "plan": ["a", "z", "b"]})
        >>> sorted(issue.check for issue in report.issues)
        ['out_of_range', 'unseen_category']

    Attributes:
        columns: one :class:`ColumnSchema` per column, in table order.
        key: columns whose combined values must be unique (may be empty).
    """

    columns: tuple[ColumnSchema, ...]
    key: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [column.name for column in self.columns]
        if len(set(names)) != len(names):
            raise InvalidInputError(f"schema has duplicate column names: {names}")
        unknown = [name for name in self.key if name not in names]
        if unknown:
            raise InvalidInputError(f"key names unknown column(s) {unknown}; columns: {names}")

    @classmethod
    def infer(
        cls,
        data: Any,
        *,
        key: Sequence[str] = (),
        columns: Sequence[str] | None = None,
        range_margin: float = 0.1,
        null_rate_margin: float = 0.05,
        max_categories: int = 50,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
    ) -> Schema:
        """Infer a schema from data believed to be good.

        Args:
            data: a table (pandas, pyarrow, dict of columns, Parquet/CSV path).
            key: columns whose combined values must be unique.
            columns: columns to include (default: all).
            range_margin: numeric ranges grow by this share of (max - min) on each
                side (integers round outward); a constant column grows by this
                share of its absolute value.
            null_rate_margin: columns with nulls accept up to the observed rate
                plus this; columns without nulls are non-nullable.
            max_categories: string/boolean columns with at most this many
                distinct values get an allowed-categories list.
            memory_budget: bytes of raw column data read at once.

        Raises:
            InvalidInputError: bad arguments, unknown columns or unreadable data.
        """
        if not 0 <= range_margin or not math.isfinite(range_margin):
            raise InvalidInputError(f"range_margin must be >= 0; got {range_margin}")
        if not 0 <= null_rate_margin <= 1:
            raise InvalidInputError(f"null_rate_margin must be in [0, 1]; got {null_rate_margin}")
        source = as_table(data, role="data")
        names = list(columns) if columns is not None else list(source.names)
        unknown = [name for name in [*names, *key] if name not in source.names]
        if unknown:
            raise InvalidInputError(f"data has no column(s) {unknown}; it has {list(source.names)}")

        def infer_column(name: str, array: pa.ChunkedArray) -> ColumnSchema:
            return _infer_column(name, array, range_margin, null_rate_margin, max_categories)

        inferred = map_columns(source, names, infer_column, n_jobs=1, memory_budget=memory_budget)
        return cls(tuple(inferred[name] for name in names), tuple(key))

    def __getitem__(self, name: str) -> ColumnSchema:
        for column in self.columns:
            if column.name == name:
                return column
        raise InvalidInputError(f"schema has no column {name!r}; it has {list(self.names)}")

    @property
    def names(self) -> tuple[str, ...]:
        """Column names, in order."""
        return tuple(column.name for column in self.columns)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the canonical JSON form: the schema's version identity."""
        return sha256_hex(canonical_json(self.to_dict()))

    def validate(
        self,
        data: Any,
        *,
        raise_on_error: bool = False,
        allow_extra_columns: bool = True,
        out_of_range_error_share: float = 0.01,
        unseen_error_share: float = 0.01,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
    ) -> ValidationReport:
        """Check ``data`` against this schema and report every issue (see ``ValidationReport``).

        Args:
            data: a table (pandas, pyarrow, dict of columns, Parquet/CSV path).
            raise_on_error: raise :class:`DataQualityError` (carrying the report)
                when any issue is an error, to halt a pipeline.
            allow_extra_columns: unknown columns are warnings, not errors.
            out_of_range_error_share: out-of-range share above which it is an error.
            unseen_error_share: unseen-category share above which it is an error.
            memory_budget: bytes of raw column data read at once.

        Raises:
            DataQualityError: ``raise_on_error`` and the data has errors.
            InvalidInputError: the data cannot be read.
        """
        policy = ValidationPolicy(allow_extra_columns, out_of_range_error_share, unseen_error_share)
        source = as_table(data, role="data")
        report = validate_source(
            self.columns,
            self.key,
            source,
            policy,
            memory_budget=memory_budget,
            fingerprint=self.fingerprint,
        )
        if raise_on_error and not report.ok:
            raise DataQualityError(report)
        return report

    def diff(self, other: Schema) -> SchemaDiff:
        """List what changed from this schema to ``other``, each change breaking or compatible."""
        return diff_columns(self.columns, other.columns, self.key, other.key)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (format ``steward.schema/1``)."""
        return {
            "format": SCHEMA_FORMAT,
            "key": list(self.key),
            "columns": [column.to_dict() for column in self.columns],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """Serialize to JSON text."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        """Rebuild a schema from :meth:`to_dict` output.

        Raises:
            InvalidInputError: not a schema of a format this version reads.
        """
        if not isinstance(data, Mapping) or data.get("format") != SCHEMA_FORMAT:
            found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise InvalidInputError(f"not a {SCHEMA_FORMAT} document (format: {found!r})")
        columns = data.get("columns")
        if not isinstance(columns, list):
            raise InvalidInputError("schema document has no 'columns' list")
        return cls(tuple(ColumnSchema.from_dict(c) for c in columns), tuple(data.get("key", ())))

    @classmethod
    def from_json(cls, text: str) -> Schema:
        """Parse JSON text written by :meth:`to_json`.

        Raises:
            InvalidInputError: the text is not JSON or not a schema.
        """
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"schema is not valid JSON: {exc}") from exc

    def save(self, path: str | Path) -> None:
        """Write the schema as JSON."""
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        """Read a schema written by :meth:`save`.

        Raises:
            InvalidInputError: the file is missing or not a schema.
        """
        source = Path(path)
        if not source.is_file():
            raise InvalidInputError(f"no schema file at {str(source)!r}")
        return cls.from_json(source.read_text(encoding="utf-8"))


def _infer_column(
    name: str,
    array: pa.ChunkedArray,
    range_margin: float,
    null_rate_margin: float,
    max_categories: int,
) -> ColumnSchema:
    rows = len(array)
    type_name = str(array.type)
    kind = type_kind(type_name)
    nulls = int(array.null_count)
    if pa.types.is_floating(array.type):
        nulls += int(pc.sum(pc.is_nan(array)).as_py() or 0)
    nullable = nulls > 0
    max_null_rate = min(1.0, nulls / rows + null_rate_margin) if nullable and rows else 0.0
    minimum = maximum = None
    if kind in ("integer", "float", "decimal"):
        minimum, maximum = _range(array, kind, range_margin)
    categories = None
    if kind in ("string", "boolean"):
        keys, _, _ = category_counts(array)
        if len(keys) <= max_categories:
            categories = tuple(sorted(keys, key=str))
    unique = False
    if kind in ("integer", "string") and rows - array.null_count >= 2:
        unique = int(pc.count_distinct(array).as_py()) == rows - array.null_count
    return ColumnSchema(
        name, type_name, nullable, max_null_rate, minimum, maximum, categories, unique
    )


def _range(array: pa.ChunkedArray, kind: str, margin: float) -> tuple[float | None, float | None]:
    values, _ = numeric_values(array)
    if values.size == 0:
        return None, None
    low, high = float(values.min()), float(values.max())
    span = high - low if high > low else abs(low)
    low, high = low - margin * span, high + margin * span
    if kind == "integer":
        low, high = float(np.floor(low)), float(np.ceil(high))
    return low, high
