"""Prepared statements for hot paths: SQL written once per dialect, run on the driver's cursor.

SQLAlchemy's statement execution costs ~70 µs of Python per call (compile-cache
lookup, parameter processing, result set-up); the driver itself needs a few. On
paths that run several statements per user call (starting and ending a run,
appending audit events), that overhead was most of the time. A prepared
statement renders its SQL from the table definition once per dialect, applies
each column type's own bind processing (so ``UTCDateTime`` values are stored
exactly as through the ORM path), and executes on a DBAPI cursor of the
connection, inside the connection's current transaction.

What the driver raises is translated into SQLAlchemy's exceptions
(``sqlalchemy.exc.IntegrityError``, ...), as Core would. The statements bypass
SQLAlchemy's execution events, so ``echo=True`` does not show them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.engine.interfaces import DBAPICursor

__all__ = ["PreparedInsert", "PreparedStatement"]

_Processor = Callable[[Any], Any] | None


def _marker(dialect: Dialect) -> str:
    return "?" if dialect.paramstyle == "qmark" else "%s"


class _Binder:
    """Applies the columns' bind processing to positional rows; plain columns pass as they are."""

    __slots__ = ("processed", "size")

    def __init__(self, columns: Sequence[sa.Column[Any]], dialect: Dialect) -> None:
        processors = [col.type.dialect_impl(dialect).bind_processor(dialect) for col in columns]
        self.size = len(processors)
        self.processed = [(i, p) for i, p in enumerate(processors) if p is not None]

    def __call__(self, row: Sequence[Any]) -> tuple[Any, ...] | list[Any]:
        if len(row) != self.size:
            raise ValueError(
                f"a row of {len(row)} values is {'shorter' if len(row) < self.size else 'longer'} "
                f"than the {self.size} columns"
            )
        if not self.processed:
            return row if type(row) is tuple else tuple(row)
        values = list(row)
        for i, process in self.processed:
            if values[i] is not None:
                values[i] = process(values[i])
        return values


def _execute(conn: Connection, sql: str, values: Any, *, many: bool) -> DBAPICursor:
    """Run ``sql`` on a cursor of the connection's DBAPI connection (same transaction)."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if many:
            cursor.executemany(sql, values)
        else:
            cursor.execute(sql, values)
    except conn.dialect.loaded_dbapi.Error as exc:
        cursor.close()
        raise sa.exc.DBAPIError.instance(
            sql, values, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect, ismulti=many
        ) from exc
    return cursor


class PreparedInsert:
    """``INSERT INTO table (columns...)`` for positional rows.

    Example:
        >>> insert = PreparedInsert(metrics, ["run_id", "key", "value"])  # doctest: +SKIP
        >>> insert(conn, [("r1", "auc", 0.9), ("r1", "loss", 0.1)])  # doctest: +SKIP
    """

    def __init__(self, table: sa.Table, columns: Sequence[str], *, suffix: str = "") -> None:
        self.table = table
        self.columns = [table.c[name] for name in columns]
        self.suffix = suffix
        self._by_dialect: dict[str, tuple[str, _Binder]] = {}

    def _prepare(self, dialect: Dialect) -> tuple[str, _Binder]:
        prepared = self._by_dialect.get(dialect.name)
        if prepared is None:
            quote = dialect.identifier_preparer.quote
            names = ", ".join(quote(col.name) for col in self.columns)
            marks = ", ".join(_marker(dialect) for _ in self.columns)
            sql = f"INSERT INTO {quote(self.table.name)} ({names}) VALUES ({marks}){self.suffix}"
            prepared = self._by_dialect[dialect.name] = (sql, _Binder(self.columns, dialect))
        return prepared

    def __call__(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` (each in the order of ``columns``) in one driver call."""
        if not rows:
            return
        sql, bind = self._prepare(conn.dialect)
        values = [bind(row) for row in rows]
        many = len(values) > 1
        _execute(conn, sql, values if many else values[0], many=many).close()


class PreparedStatement:
    """Any SQL with ``{}`` placeholders for parameters, typed by the columns they bind to.

    Calling it returns the driver's cursor: ``fetchone()``, ``fetchall()``, ``rowcount``.

    Example:
        >>> end = PreparedStatement(
        ...     "UPDATE runs SET status = {} WHERE id = {}", [runs.c.status, runs.c.id]
        ... )  # doctest: +SKIP
        >>> end(conn, ("finished", run_id)).rowcount  # doctest: +SKIP
    """

    def __init__(self, template: str, columns: Sequence[sa.Column[Any]]) -> None:
        self.template = template
        self.columns = list(columns)
        self._by_dialect: dict[str, tuple[str, _Binder]] = {}

    def __call__(self, conn: Connection, values: Sequence[Any]) -> DBAPICursor:
        """Execute with one set of ``values`` (in placeholder order); return the cursor."""
        dialect = conn.dialect
        prepared = self._by_dialect.get(dialect.name)
        if prepared is None:
            sql = self.template.format(*(_marker(dialect) for _ in self.columns))
            prepared = self._by_dialect[dialect.name] = (sql, _Binder(self.columns, dialect))
        sql, bind = prepared
        return _execute(conn, sql, bind(values), many=False)
