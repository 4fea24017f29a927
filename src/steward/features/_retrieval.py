"""Point-in-time retrieval: the feature values known at each entity row's event time.

For an entity row ``(keys, t)`` and a plain view with TTL ``ttl``, the value is
the one of the source row with the same keys and the latest event time ``s``
with ``t - ttl < s <= t``; ties on ``s`` are broken by the created timestamp
(latest wins); no such row gives null.  Window views give their aggregates over
``(t - w, t]`` (see ``_windows``).

All requested views are answered by one DuckDB query over the Parquet files::

    WITH __v0 AS (<source rows, normalized time, deduplicated on (keys, time)>),
         __w1 AS (<window aggregates per entity row>)
    SELECT CASE WHEN __v0.__ts > e.__ts - <ttl> THEN __v0.__f0 END, ..., __w1.__w1_0, ...
    FROM __entity e
    ASOF LEFT JOIN __v0 ON e.customer_id = __v0.customer_id AND e.__ts >= __v0.__ts
    LEFT JOIN __w1 ON __w1.__row = e.__row
    ORDER BY e.__row

An ASOF join picks, per entity row, the latest source row at or before the event
time, so the TTL bound is a check on the one row picked: if it is too old, every
older one is too.  The entity frame goes in as Arrow and the features come out
as Arrow, appended to the caller's table in its row order; pandas is never
touched on this path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from steward.features._definitions import FeatureView
from steward.features._engine import DuckEngine
from steward.features._entity import EntityFrame, check_key_types, to_entity_frame
from steward.features._errors import EntityFrameError
from steward.features._sources import SQL_TYPES, ViewRead, quote, read_view, timestamp_sql
from steward.features._windows import interval_sql, timestamp_literal, window_sql

__all__ = ["output_names", "retrieve"]


def output_names(
    grouped: Mapping[str, Sequence[str]], full_feature_names: bool, taken: Sequence[str]
) -> dict[tuple[str, str], str]:
    """Name the output column of each ``(view, feature)``: ``feature`` or ``view__feature``.

    Raises:
        EntityFrameError: two features (or a feature and an entity column) would share a name.
    """
    names: dict[tuple[str, str], str] = {}
    owner: dict[str, str] = {column: "the entity frame" for column in taken}
    for view, features in grouped.items():
        for feature in features:
            name = f"{view}__{feature}" if full_feature_names else feature
            if name in owner:
                hint = "" if full_feature_names else "; pass full_feature_names=True"
                raise EntityFrameError(
                    f"output column {name!r} of {view}:{feature} clashes with a column of "
                    f"{owner[name]}{hint} or rename the entity column"
                )
            owner[name] = f"view {view!r}"
            names[(view, feature)] = name
    return names


def _plain_cte(read: ViewRead, frame: EntityFrame) -> str:
    view = read.view
    keys = ", ".join(quote(k) for k in view.join_keys)
    ts = read.timestamp()
    values = []
    for j, name in enumerate(read.features):
        feature = view.feature(name)
        if feature.dtype == "timestamp":
            expression = timestamp_sql(name, read.schema.columns[name])
        else:
            expression = f"CAST({quote(name)} AS {SQL_TYPES[feature.dtype]})"
        values.append(f"{expression} AS __f{j}")
    where = [f"{ts} IS NOT NULL"]
    if frame.max_ts is not None:
        where.append(f"{ts} <= {timestamp_literal(frame.max_ts)}")
    if frame.min_ts is not None and view.ttl is not None:
        where.append(f"{ts} > {timestamp_literal(frame.min_ts)} - {interval_sql(view.ttl)}")
    sql = (
        f"SELECT {keys}, {ts} AS __ts, {', '.join(values)} "
        f"FROM {read.relation} WHERE {' AND '.join(where)}"
    )
    created = read.created()
    if created is not None:
        sql += (
            f" QUALIFY row_number() OVER (PARTITION BY {keys}, {ts} "
            f"ORDER BY {created} DESC NULLS LAST) = 1"
        )
    return sql


def _query(reads: Sequence[ViewRead], frame: EntityFrame) -> str:
    ctes, selects, joins = [], [], []
    out = 0
    for i, read in enumerate(reads):
        view = read.view
        if view.is_window:
            alias = f"__w{i}"
            ctes.append(f"{alias} AS ({window_sql(read, '__entity', f'{alias}_', _bounds(frame))})")
            joins.append(f"LEFT JOIN {alias} ON {alias}.__row = e.__row")
            for j in range(len(read.features)):
                selects.append(f"{alias}.{alias}_{j} AS __o{out}")
                out += 1
            continue
        alias = f"__v{i}"
        ctes.append(f"{alias} AS ({_plain_cte(read, frame)})")
        on = [f"e.{quote(k)} = {alias}.{quote(k)}" for k in view.join_keys]
        joins.append(f"ASOF LEFT JOIN {alias} ON {' AND '.join(on)} AND e.__ts >= {alias}.__ts")
        fresh = "TRUE" if view.ttl is None else f"{alias}.__ts > e.__ts - {interval_sql(view.ttl)}"
        for j in range(len(read.features)):
            selects.append(f"CASE WHEN {fresh} THEN {alias}.__f{j} END AS __o{out}")
            out += 1
    return (
        f"WITH {', '.join(ctes)} SELECT {', '.join(selects)} FROM __entity e "
        f"{' '.join(joins)} ORDER BY e.__row"
    )


def _bounds(frame: EntityFrame) -> tuple[Any, Any]:
    return frame.min_ts, frame.max_ts


def retrieve(
    engine: DuckEngine,
    views: Sequence[tuple[FeatureView, tuple[str, ...]]],
    entity_df: Any,
    *,
    timestamp_column: str = "event_timestamp",
    full_feature_names: bool = False,
    extra_files: Mapping[str, list[str]] | None = None,
) -> pa.Table:
    """Return the entity frame with one column per requested feature, point-in-time correct.

    Raises:
        EntityFrameError: the frame lacks keys, has bad timestamps, or names would clash.
        SourceSchemaError: a source is missing or no longer matches its view.
    """
    join_keys = list(dict.fromkeys(k for view, _ in views for k in view.join_keys))
    frame = to_entity_frame(entity_df, join_keys, timestamp_column)
    grouped = {view.name: features for view, features in views}
    names = output_names(grouped, full_feature_names, frame.table.column_names)
    extra = extra_files or {}
    conn = engine.cursor()
    try:
        reads = [read_view(conn, v, f, extra.get(v.name)) for v, f in views]
        for read in reads:
            for key in read.view.join_keys:
                check_key_types(frame, key, read.schema.columns[key], read.view.name)
        conn.register("__entity", frame.keys)
        result = conn.sql(_query(reads, frame)).to_arrow_table()
    finally:
        conn.close()
    table = frame.table
    position = 0
    for view, features in views:
        for feature in features:
            column = result.column(position)
            target = view.feature(feature).arrow_type
            if column.type != target:
                column = column.cast(target)
            table = table.append_column(names[(view.name, feature)], column)
            position += 1
    return table
