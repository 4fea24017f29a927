"""Entity frames: the rows (join keys + event time) features are retrieved for.

An entity frame may be a pyarrow Table or RecordBatch, a pandas DataFrame, or
anything exporting the Arrow C stream.  Its timestamp column is normalized to
UTC: timezone-aware values are converted, **naive values are taken as UTC**,
dates are midnight UTC, nanoseconds are truncated to microseconds.  A column
that mixes naive and aware values is refused, as are strings and numbers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from steward.features._errors import EntityFrameError

__all__ = ["EntityFrame", "to_entity_frame"]

_NAIVE_US = pa.timestamp("us")


@dataclass(frozen=True)
class EntityFrame:
    """The user's table as given, plus the normalized columns retrieval joins on.

    ``keys`` has ``__row`` (input position), each join key, and ``__ts`` (naive UTC
    microseconds).  ``min_ts``/``max_ts`` bound the event times (None when empty).
    """

    table: pa.Table
    keys: pa.Table
    min_ts: dt.datetime | None
    max_ts: dt.datetime | None


def _to_arrow(entity_df: Any, timestamp_column: str) -> pa.Table:
    if isinstance(entity_df, pa.Table):
        return entity_df
    if isinstance(entity_df, pa.RecordBatch):
        return pa.Table.from_batches([entity_df])
    if type(entity_df).__module__.startswith("pandas"):
        return _from_pandas(entity_df, timestamp_column)
    if hasattr(entity_df, "__arrow_c_stream__"):
        return pa.table(entity_df)
    raise EntityFrameError(
        f"entity frame of type {type(entity_df).__name__} is not supported; pass a pyarrow "
        "Table or a pandas DataFrame"
    )


def _from_pandas(frame: Any, timestamp_column: str) -> pa.Table:
    # Only an object column can mix naive and aware datetimes; typed columns cannot.
    if timestamp_column in frame.columns and frame[timestamp_column].dtype == object:
        values = frame[timestamp_column].dropna()
        aware = {
            isinstance(v, dt.datetime) and v.tzinfo is not None
            for v in values
            if isinstance(v, dt.datetime)
        }
        if len(aware) > 1:
            raise EntityFrameError(
                f"entity column {timestamp_column!r} mixes timezone-naive and timezone-aware "
                "timestamps; make them all aware (naive values are read as UTC)"
            )
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise EntityFrameError(f"entity frame cannot be read as Arrow: {exc}") from exc


def _normalize_timestamps(column: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    kind = column.type
    if pa.types.is_date(kind):
        column = column.cast(pa.timestamp("s"))
        kind = column.type
    if not pa.types.is_timestamp(kind):
        raise EntityFrameError(
            f"entity column {name!r} is {kind}, not a timestamp; convert it first "
            "(e.g. pandas.to_datetime(df[col], utc=True))"
        )
    if kind.unit != "us":
        # Truncating nanoseconds can only make an event earlier: never a leak.
        column = column.cast(pa.timestamp("us", kind.tz), safe=False)
    if kind.tz is not None:
        # Arrow keeps instants as UTC epochs: dropping the zone keeps the UTC wall time.
        column = column.cast(_NAIVE_US)
    return column


def to_entity_frame(
    entity_df: Any, join_keys: Sequence[str], timestamp_column: str = "event_timestamp"
) -> EntityFrame:
    """Validate and normalize an entity frame for retrieval.

    Raises:
        EntityFrameError: a join key or the timestamp column is missing, holds nulls,
            or the timestamps are not timestamps (or mix naive and aware values).
    """
    table = _to_arrow(entity_df, timestamp_column)
    missing = [c for c in (*join_keys, timestamp_column) if c not in table.column_names]
    if missing:
        raise EntityFrameError(
            f"entity frame lacks column(s) {missing}; the requested views join on "
            f"{list(join_keys)} and time on {timestamp_column!r} (pass timestamp_column= "
            f"to use another); it has {table.column_names}"
        )
    columns: dict[str, pa.ChunkedArray] = {
        "__row": pa.chunked_array([pa.array(range(table.num_rows), pa.int64())])
    }
    for key in join_keys:
        column = table.column(key)
        if column.null_count:
            raise EntityFrameError(
                f"entity column {key!r} has {column.null_count} null value(s); every row "
                "needs its join keys"
            )
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        columns[key] = column
    stamps = _normalize_timestamps(table.column(timestamp_column), timestamp_column)
    if stamps.null_count:
        raise EntityFrameError(
            f"entity column {timestamp_column!r} has {stamps.null_count} null timestamp(s)"
        )
    columns["__ts"] = stamps
    keys = pa.table(columns)
    bounds = pc.min_max(stamps)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    return EntityFrame(table, keys, low, high)


def check_key_types(frame: EntityFrame, key: str, source_type: str, view: str) -> None:
    """Refuse joining a text key to a numeric one (DuckDB would fail or silently cast).

    Raises:
        EntityFrameError: the entity frame's key is text and the source's numeric, or back.
    """
    entity_type = frame.keys.column(key).type
    entity_text = pa.types.is_string(entity_type) or pa.types.is_large_string(entity_type)
    source_text = source_type == "VARCHAR"
    if entity_text != source_text:
        raise EntityFrameError(
            f"join key {key!r} is {entity_type} in the entity frame but {source_type} in the "
            f"source of view {view!r}; convert the entity column to match"
        )
