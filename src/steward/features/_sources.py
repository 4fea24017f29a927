"""Sources as DuckDB relations: how a view's rows are read, typed, stamped and ordered.

Every timestamp is normalized to a naive ``TIMESTAMP`` holding UTC wall time
(microseconds): naive source columns are taken as UTC, ``TIMESTAMPTZ`` columns
are converted through their epoch (whatever the session's time zone), nanosecond columns
are rounded *up* to the next microsecond, so that a value stamped even a
nanosecond after an event is never taken as known at that event.

Ties: when an entity has several rows with the same event time (and the same
created time, or no created-time column), the *first* row in the source's order
wins, in point-in-time retrieval and in materialization alike, as the online
store keeps the row it got first. The order, ``__order`` in
:attr:`ViewRead.ordered`, is a BIGINT:

- a file source: the files in path order (as a folder or glob lists them), then
  the rows in file order: ``file_index << 40 | file_row_number``;
- the offline push log after every source row, pushes in the order they came:
  ``1 << 62 | file_index << 40 | file_row_number``;
- a query source has no order of its own: a hash of the whole row stands in, a
  choice that is arbitrary but the same on every read of the same data.

(At most 2^22 files and 2^40 rows per file keep these apart.) A source whose
duplicates differ should have a created-time column: a later created time wins
everywhere, including online across separate runs and pushes.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from steward.features._definitions import FeatureView, FileSource, Source
from steward.features._errors import SourceSchemaError

__all__ = [
    "ORDER_COLUMN",
    "SQL_TYPES",
    "SourceSchema",
    "ViewRead",
    "check_view_schema",
    "describe_source",
    "parquet_pattern",
    "quote",
    "read_view",
    "source_sql",
    "sql_literal",
    "timestamp_sql",
]

_INTEGERS = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}
    | {"UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
)
_NUMBERS = _INTEGERS | {"FLOAT", "DOUBLE"}
_TIMESTAMPS = frozenset(
    {"TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "TIMESTAMP WITH TIME ZONE"}
    | {"TIMESTAMPTZ_NS", "DATE"}
)
ORDER_COLUMN = "__order"
_FILE_ORDER = f"(CAST(file_index AS BIGINT) << 40) + file_row_number AS {ORDER_COLUMN}"
_PUSH_ORDER = f"(CAST(1 AS BIGINT) << 62) + {_FILE_ORDER}"
# DuckDB type of each feature dtype, as it comes out of retrieval.
SQL_TYPES = {
    "float64": "DOUBLE",
    "float32": "FLOAT",
    "int64": "BIGINT",
    "int32": "INTEGER",
    "bool": "BOOLEAN",
    "string": "VARCHAR",
    "timestamp": "TIMESTAMP",
}


def quote(name: str) -> str:
    """Quote an identifier for DuckDB: ``quote('a"b')`` → ``"a""b"``."""
    return '"' + name.replace('"', '""') + '"'


def sql_literal(text: str) -> str:
    """Quote a string literal for DuckDB: ``sql_literal("it's")`` → ``'it''s'``."""
    return "'" + text.replace("'", "''") + "'"


def _is_number(sql_type: str) -> bool:
    return sql_type in _NUMBERS or sql_type.startswith("DECIMAL")


def parquet_pattern(path: str) -> str:
    """Return what ``read_parquet`` reads for a path: a folder becomes ``folder/**/*.parquet``."""
    if "://" not in path and os.path.isdir(path):
        return str(Path(path) / "**" / "*.parquet")
    return path


def _file_relation(source: FileSource) -> str:
    pattern = parquet_pattern(source.path)
    if "://" not in pattern and not glob.glob(pattern, recursive=True):
        raise SourceSchemaError(
            f"source {source.name!r}: path {source.path!r} matches no Parquet files; "
            "write the data first or fix the path in the definitions"
        )
    return f"read_parquet({sql_literal(pattern)}, union_by_name = true)"


def source_sql(
    source: Source, extra_files: list[str] | None = None, *, ordered: bool = False
) -> str:
    """Return a SQL relation (usable after ``FROM``) over the source's rows.

    ``extra_files`` (Parquet files with the same columns, e.g. the offline push
    log) are unioned in by column name. With ``ordered``, the relation has one
    more column, ``__order``, the rows' order for breaking ties (module docstring).

    Raises:
        SourceSchemaError: a file source's path matches no files.
    """
    if isinstance(source, FileSource):
        relation = _file_relation(source)
        if ordered:
            relation = f"(SELECT *, {_FILE_ORDER} FROM {relation})"
    elif ordered:
        relation = (
            f"(SELECT *, CAST(hash(__query) >> 2 AS BIGINT) AS {ORDER_COLUMN} "
            f"FROM ({source.query}) __query)"
        )
    else:
        relation = f"({source.query})"
    if not extra_files:
        return relation
    listed = ", ".join(sql_literal(f) for f in extra_files)
    pushed = f"read_parquet([{listed}], union_by_name = true)"
    return (
        f"(SELECT * FROM {relation} UNION ALL BY NAME "
        f"SELECT *{', ' + _PUSH_ORDER if ordered else ''} FROM {pushed})"
    )


@dataclass(frozen=True)
class SourceSchema:
    """Column name → DuckDB type of a source, as read."""

    source: str
    columns: dict[str, str]

    def type_of(self, column: str, role: str) -> str:
        """Return the type of ``column``, or raise naming its ``role`` and the columns there are."""
        try:
            return self.columns[column]
        except KeyError:
            known = ", ".join(sorted(self.columns))
            raise SourceSchemaError(
                f"source {self.source!r} has no column {column!r} ({role}); its columns: {known}"
            ) from None


def describe_source(
    conn: duckdb.DuckDBPyConnection, source: Source, extra_files: list[str] | None = None
) -> SourceSchema:
    """Read the source's column types without reading its rows.

    Raises:
        SourceSchemaError: the files are missing or unreadable, or the query fails.
    """
    relation = source_sql(source, extra_files)
    try:
        rows = conn.sql(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    except duckdb.Error as exc:
        raise SourceSchemaError(
            f"source {source.name!r} cannot be read: {str(exc).splitlines()[0]}"
        ) from exc
    return SourceSchema(source.name, {str(row[0]): str(row[1]) for row in rows})


def timestamp_sql(column: str, sql_type: str) -> str:
    """Return SQL that normalizes ``column`` to a naive UTC ``TIMESTAMP`` (see the module doc)."""
    name = quote(column)
    if sql_type in ("TIMESTAMP_NS", "TIMESTAMPTZ_NS"):
        return f"make_timestamp((epoch_ns({name}) + 999) // 1000)"
    if sql_type == "TIMESTAMP WITH TIME ZONE":
        return f"make_timestamp(epoch_us({name}))"
    return f"CAST({name} AS TIMESTAMP)"


def _typed_literal(value: dt.datetime, sql_type: str) -> str:
    # ``value`` is naive UTC; a zoned column gets the same instant spelled with +00:00.
    text = value.isoformat(sep=" ", timespec="microseconds")
    if sql_type in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ_NS"):
        kind = "TIMESTAMPTZ" if sql_type == "TIMESTAMP WITH TIME ZONE" else sql_type
        return f"CAST('{text}+00:00' AS {kind})"
    if sql_type == "TIMESTAMP_NS":
        return f"CAST('{text}' AS TIMESTAMP_NS)"
    return f"TIMESTAMP '{text}'"


def _check_timestamp(schema: SourceSchema, column: str, role: str) -> None:
    sql_type = schema.type_of(column, role)
    if sql_type not in _TIMESTAMPS:
        raise SourceSchemaError(
            f"source {schema.source!r}: {role} {column!r} is {sql_type}; it must be a "
            "timestamp (or date) column"
        )


def _compatible(dtype: str, sql_type: str) -> bool:
    if dtype in ("float64", "float32"):
        return _is_number(sql_type)
    if dtype in ("int64", "int32"):
        return sql_type in _INTEGERS
    if dtype == "bool":
        return sql_type == "BOOLEAN"
    if dtype == "string":
        return sql_type == "VARCHAR"
    return sql_type in _TIMESTAMPS


def check_view_schema(view: FeatureView, schema: SourceSchema) -> None:
    """Check that the source holds every column the view reads, with a compatible type.

    Raises:
        SourceSchemaError: a column is missing or has a type the view cannot serve.
    """
    source = view.source
    _check_timestamp(schema, source.timestamp_field, "timestamp_field")
    if source.created_timestamp_field:
        _check_timestamp(schema, source.created_timestamp_field, "created_timestamp_field")
    for key in view.join_keys:
        schema.type_of(key, f"join key of view {view.name!r}")
    for feature in view.features:
        sql_type = schema.type_of(feature.name, f"feature of view {view.name!r}")
        if not _compatible(feature.dtype, sql_type):
            raise SourceSchemaError(
                f"view {view.name!r}: feature {feature.name!r} is declared {feature.dtype} "
                f"but source {schema.source!r} holds it as {sql_type}; fix the dtype or the data"
            )
    for agg in view.aggregations:
        sql_type = schema.type_of(agg.column, f"aggregated by view {view.name!r}")
        if agg.function not in ("count", "count_distinct") and not _is_number(sql_type):
            raise SourceSchemaError(
                f"view {view.name!r}: {agg.function} of {agg.column!r} needs a numeric "
                f"column, but source {schema.source!r} holds it as {sql_type}"
            )


@dataclass(frozen=True)
class ViewRead:
    """One view as a query reads it: which features, from which relation, with which types.

    Attributes:
        view: the feature view.
        features: the features the query reads.
        relation: the source's rows (the push log's included).
        schema: the source's column types.
        ordered: the same rows with their tie-breaking order, ``__order`` (module docstring).
    """

    view: FeatureView
    features: tuple[str, ...]
    relation: str
    schema: SourceSchema
    ordered: str

    def timestamp(self) -> str:
        """SQL of the view's normalized event time."""
        field = self.view.source.timestamp_field
        return timestamp_sql(field, self.schema.columns[field])

    def time_filter(self, after: dt.datetime | None, until: dt.datetime | None) -> str:
        """SQL keeping rows whose normalized event time is in ``(after, until]`` (naive UTC).

        The bounds compare the raw column with literals of its own type, so
        DuckDB can skip whole Parquet row groups by their statistics.  Either
        bound may be None (unbounded); rows without an event time never pass.
        """
        field = self.view.source.timestamp_field
        sql_type = self.schema.columns[field]
        column = quote(field) if sql_type != "DATE" else self.timestamp()
        parts = [f"{column} IS NOT NULL"]
        for op, value in (("<=", until), (">", after)):
            if value is not None:
                parts.append(f"{column} {op} {_typed_literal(value, sql_type)}")
        return " AND ".join(parts)

    def created(self) -> str | None:
        """SQL of the view's normalized created time, if the source has one."""
        field = self.view.source.created_timestamp_field
        return None if field is None else timestamp_sql(field, self.schema.columns[field])


def read_view(
    conn: duckdb.DuckDBPyConnection,
    view: FeatureView,
    features: tuple[str, ...],
    extra_files: list[str] | None = None,
) -> ViewRead:
    """Describe the view's source and check it still matches the view.

    Raises:
        SourceSchemaError: the source is missing, unreadable, or its columns do not match.
    """
    schema = describe_source(conn, view.source, extra_files)
    check_view_schema(view, schema)
    return ViewRead(
        view,
        features,
        source_sql(view.source, extra_files),
        schema,
        source_sql(view.source, extra_files, ordered=True),
    )
