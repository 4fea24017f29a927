"""Time-window aggregates, point-in-time correct, written once for training and serving.

For an entity row stamped ``t``, an aggregation over window ``w`` reads the
events of that entity with event time in ``(t - w, t]``: never one after
``t``.  The SQL puts the entity rows and the events in one stream per entity,
ordered by time, and evaluates each aggregate as a ``RANGE`` window frame
ending at the current row; entity rows carry nulls, which aggregates skip, so
each entity row sees exactly the events before it (ties at ``t`` included:
a ``RANGE`` frame includes the current row's peers).

Empty windows give ``0`` for ``count``, ``count_distinct`` and ``sum``, null for
``mean``, ``min`` and ``max``.  Every source row is one event: window views do
not deduplicate by created time.

The same :func:`window_sql` serves :func:`compute_window_aggregates`, which the
online path uses to compute the aggregates as of "now".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from steward.features._definitions import Aggregation, FeatureView
from steward.features._engine import DuckEngine
from steward.features._errors import FeatureDefinitionError, UnknownFeatureError
from steward.features._sources import ViewRead, quote, read_view

__all__ = ["compute_window_aggregates", "interval_sql", "timestamp_literal", "window_sql"]

_FUNCTIONS = {
    "count": "count({col}) OVER {frame}",
    "count_distinct": "count(DISTINCT {col}) OVER {frame}",
    "sum": "CAST(coalesce(sum({col}) OVER {frame}, 0) AS DOUBLE)",
    "mean": "CAST(avg({col}) OVER {frame} AS DOUBLE)",
    "min": "CAST(min({col}) OVER {frame} AS DOUBLE)",
    "max": "CAST(max({col}) OVER {frame} AS DOUBLE)",
}


def utc_naive(value: dt.datetime) -> dt.datetime:
    """Return ``value`` as naive UTC wall time; a naive value is taken as UTC already."""
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def timestamp_literal(value: dt.datetime) -> str:
    """``TIMESTAMP '2025-01-01 00:00:00.000000'`` for a (UTC) datetime."""
    return f"TIMESTAMP '{utc_naive(value).isoformat(sep=' ', timespec='microseconds')}'"


def interval_sql(value: dt.timedelta) -> str:
    """An exact DuckDB interval: ``to_microseconds(86400000000)`` for one day."""
    return f"to_microseconds({value // dt.timedelta(microseconds=1)})"


def _frame(keys: str, window: dt.timedelta) -> str:
    # (t - w, t] on microsecond timestamps is [t - w + 1us, t].
    preceding = interval_sql(window - dt.timedelta(microseconds=1))
    return (
        f"(PARTITION BY {keys} ORDER BY __ts RANGE BETWEEN {preceding} PRECEDING AND CURRENT ROW)"
    )


def window_sql(
    read: ViewRead,
    entity: str,
    prefix: str,
    bounds: tuple[dt.datetime | None, dt.datetime | None] = (None, None),
) -> str:
    """Return SQL giving ``__row`` and one column ``{prefix}{i}`` per requested aggregate.

    ``entity`` is a relation with ``__row``, the view's join keys and ``__ts``
    (naive UTC); ``bounds`` (the entity rows' earliest and latest time) prune the
    events read.  Columns come in the order of ``read.features``.
    """
    view = read.view
    aggregations = [_aggregation(view, name) for name in read.features]
    keys = ", ".join(quote(k) for k in view.join_keys)
    columns = list(dict.fromkeys(agg.column for agg in aggregations))
    slot = {column: f"__a{i}" for i, column in enumerate(columns)}
    ts = read.timestamp()
    low, high = bounds
    after = None
    if low is not None:
        widest = max(agg.window for agg in aggregations)
        start = utc_naive(low)
        after = start - widest if start - dt.datetime.min > widest else None
    where = read.time_filter(after, None if high is None else utc_naive(high))
    events = ", ".join(f"{quote(c)} AS {slot[c]}" for c in columns)
    blanks = ", ".join(f"NULL AS {slot[c]}" for c in columns)
    outputs = ", ".join(
        _FUNCTIONS[agg.function].format(col=slot[agg.column], frame=_frame(keys, agg.window))
        + f" AS {prefix}{i}"
        for i, agg in enumerate(aggregations)
    )
    return (
        f"SELECT __row, {', '.join(f'{prefix}{i}' for i in range(len(aggregations)))} FROM ("
        f"SELECT __row, {outputs} FROM ("
        f"SELECT {keys}, {ts} AS __ts, {events}, CAST(NULL AS BIGINT) AS __row "
        f"FROM {read.relation} WHERE {where} "
        f"UNION ALL SELECT {keys}, __ts, {blanks}, __row FROM {entity})"
        ") WHERE __row IS NOT NULL"
    )


def _aggregation(view: FeatureView, name: str) -> Aggregation:
    for agg in view.aggregations:
        if agg.name == name:
            return agg
    raise UnknownFeatureError(f"window view {view.name!r} has no aggregation {name!r}")


def _entity_rows(
    view: FeatureView, entity_keys: Sequence[Sequence[Any]], as_of: dt.datetime
) -> pa.Table:
    width = len(view.join_keys)
    for keys in entity_keys:
        if len(keys) != width:
            raise FeatureDefinitionError(
                f"entity key {tuple(keys)!r} has {len(keys)} value(s); view {view.name!r} "
                f"joins on {list(view.join_keys)}"
            )
    columns: dict[str, Any] = {"__row": pa.array(range(len(entity_keys)), pa.int64())}
    for i, name in enumerate(view.join_keys):
        columns[name] = pa.array([keys[i] for keys in entity_keys])
    stamp = utc_naive(as_of)
    columns["__ts"] = pa.array([stamp] * len(entity_keys), pa.timestamp("us"))
    return pa.table(columns)


def compute_window_aggregates(
    view: FeatureView,
    entity_keys: Sequence[Sequence[Any]] | None,
    as_of: dt.datetime,
    *,
    engine: DuckEngine | None = None,
    extra_files: list[str] | None = None,
) -> pa.Table:
    """Compute a window view's aggregates for entities as of one instant.

    ``entity_keys`` holds one tuple per entity, in the order of ``view.join_keys``;
    ``None`` means every entity with an event in the widest window before ``as_of``.
    A naive ``as_of`` is taken as UTC.

    Returns:
        A table with the join keys, then one column per aggregation (view order),
        one row per entity in input order.

    Raises:
        FeatureDefinitionError: the view is not a window view, or a key tuple has the
            wrong width.
        SourceSchemaError: the source no longer matches the view.
    """
    if not view.is_window:
        raise FeatureDefinitionError(f"view {view.name!r} has no aggregations to compute")
    engine = engine or DuckEngine()
    conn = engine.cursor()
    try:
        read = read_view(conn, view, view.feature_names, extra_files)
        stamp = utc_naive(as_of)
        keys = ", ".join(quote(k) for k in view.join_keys)
        if entity_keys is None:
            widest = max(agg.window for agg in view.aggregations)
            recent = read.time_filter(stamp - widest, stamp)
            conn.sql(
                "CREATE OR REPLACE TEMP TABLE __entity AS SELECT "
                f"row_number() OVER () - 1 AS __row, *, {timestamp_literal(stamp)} AS __ts "
                f"FROM (SELECT DISTINCT {keys} "
                f"FROM {read.relation} WHERE {recent})"
            )
        else:
            conn.register("__entity_arrow", _entity_rows(view, entity_keys, stamp))
            conn.sql("CREATE OR REPLACE TEMP TABLE __entity AS SELECT * FROM __entity_arrow")
        inner = window_sql(read, "__entity", "__w", (stamp, stamp))
        names = ", ".join(f"w.__w{i} AS {quote(n)}" for i, n in enumerate(view.feature_names))
        table = conn.sql(
            f"SELECT {', '.join(f'e.{quote(k)}' for k in view.join_keys)}, {names} "
            f"FROM __entity e LEFT JOIN ({inner}) w ON w.__row = e.__row ORDER BY e.__row"
        ).to_arrow_table()
    finally:
        conn.close()
    return table
