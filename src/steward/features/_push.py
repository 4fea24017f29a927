"""Push: fresh rows written straight to the online store and kept in the offline push log.

A push carries rows shaped like the view's source: its join keys, its event
timestamp, its created timestamp (optional: the push time when absent), and
every feature (a window view takes the raw columns it aggregates). Columns are
cast to the types the source holds them as, so that retrieval reads the source
and the log as one relation. The order is log first, then online, then audit:
a push that fails after the log was written can be repeated (the duplicate row
is the same fact; online it is not newer than itself), and training never
misses a value that serving saw.

For a plain view the rows go online as they are (the store keeps each entity's
newest). For a window view the pushed entities' aggregates are recomputed as of
the latest pushed event time, over the source and the log, and written online.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from difflib import get_close_matches
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from steward.core import InvalidInputError
from steward.features._definitions import FeatureView
from steward.features._engine import DuckEngine
from steward.features._online import OnlineStore
from steward.features._pushlog import append_push_log
from steward.features._sources import source_sql
from steward.features._windows import compute_window_aggregates
from steward.store import Store

__all__ = ["PUSH_SCOPE", "PushResult", "Pusher", "push_rows", "source_arrow_schema"]

PUSH_SCOPE = "features:push"
_AS_OF = "__as_of"


@dataclass(frozen=True)
class PushResult:
    """What a push did: rows logged, rows the online store took, the log file written."""

    rows: int
    written: int
    file: Path | None


def source_arrow_schema(engine: DuckEngine, view: FeatureView) -> pa.Schema:
    """Return the Arrow schema the view's source is read with (no rows are read).

    Raises:
        SourceSchemaError: the source's files are missing.
    """
    conn = engine.cursor()
    try:
        schema = (
            conn.sql(f"SELECT * FROM {source_sql(view.source)} LIMIT 0").to_arrow_table().schema
        )
    finally:
        conn.close()
    # DuckDB labels zoned times with the session's zone; the log keeps them in UTC.
    return pa.schema(
        field.with_type(pa.timestamp(field.type.unit, tz="UTC"))
        if pa.types.is_timestamp(field.type) and field.type.tz is not None
        else field
        for field in schema
    )


def _as_table(rows: Any) -> pa.Table:
    if isinstance(rows, pa.Table):
        return rows
    if isinstance(rows, pa.RecordBatch):
        return pa.Table.from_batches([rows])
    if type(rows).__name__ == "DataFrame" and hasattr(rows, "columns"):
        return pa.Table.from_pandas(rows, preserve_index=False)
    if isinstance(rows, Mapping | str | bytes) or not isinstance(rows, Sequence):
        raise InvalidInputError(
            "rows must be a list of dicts, a pyarrow Table or a pandas DataFrame; "
            f"got {type(rows).__name__}"
        )
    first: set[str] = set()
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise InvalidInputError(f"row {index} is a {type(row).__name__}, not a dict")
        keys = set(row)
        if index == 0:
            first = keys
        elif keys != first:
            raise InvalidInputError(
                f"row {index} has the columns {sorted(keys)} but row 0 has {sorted(first)}; "
                "every pushed row carries the same columns"
            )
    try:
        return pa.Table.from_pylist(list(rows))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidInputError(f"rows mix values of different types in a column: {exc}") from None


def _check_columns(view: FeatureView, table: pa.Table) -> list[str]:
    columns = list(view.source_columns())
    created = view.source.created_timestamp_field
    given = table.column_names
    missing = [c for c in columns if c not in given and c != created]
    if missing:
        raise InvalidInputError(
            f"pushed rows for view {view.name!r} lack the column(s) {missing}; a push carries "
            f"the source's columns: {columns}"
        )
    unknown = [c for c in given if c not in columns]
    if unknown:
        hints = [
            f"{c!r} (did you mean {close[0]!r}?)"
            if (close := get_close_matches(c, columns, n=1, cutoff=0.6))
            else repr(c)
            for c in unknown
        ]
        raise InvalidInputError(
            f"pushed rows for view {view.name!r} have unknown column(s) {', '.join(hints)}; "
            f"its source's columns are {columns}"
        )
    return columns


def _cast(view: FeatureView, table: pa.Table, schema: pa.Schema, at: datetime) -> pa.Table:
    # Every column as the source types it; a missing created time is the push time.
    columns = _check_columns(view, table)
    out: dict[str, pa.ChunkedArray | pa.Array] = {}
    for name in columns:
        target = schema.field(name).type if name in schema.names else None
        if name not in table.column_names:
            column: Any = pa.array([at] * table.num_rows, pa.timestamp("us", tz="UTC"))
        else:
            column = table.column(name)
        if target is not None and column.type != target:
            try:
                column = column.cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise InvalidInputError(
                    f"pushed column {name!r} of view {view.name!r} is {column.type}, which "
                    f"does not convert to the source's {target}: {exc}"
                ) from None
        required = name in view.join_keys or name == view.source.timestamp_field
        if required and column.null_count:
            raise InvalidInputError(
                f"pushed column {name!r} of view {view.name!r} is null in "
                f"{column.null_count} row(s); every row needs its keys and event time"
            )
        out[name] = column
    return pa.table(out)


def push_rows(
    *,
    store: Store,
    online: OnlineStore,
    engine: DuckEngine,
    view: FeatureView,
    rows: Any,
    schema: pa.Schema,
    offline_dir: Path,
    push_log: Callable[[str], list[str]],
) -> PushResult:
    """Log and serve pushed rows (see the module docstring); audit the push.

    Raises:
        InvalidInputError: the rows lack or add columns, hold nulls in keys or event
            times, or have values that do not convert to the source's types.
        BackendUnavailableError: the log or the online store cannot be written.
    """
    at = store.clock.now()
    given = _as_table(rows)
    if given.num_rows == 0:
        return PushResult(0, 0, None)
    table = _cast(view, given, schema, at)
    path = append_push_log(offline_dir, view.name, table, at=at)
    if view.is_window:
        written = _serve_window(online, engine, view, table, push_log(view.name))
    else:
        served = [*view.join_keys, view.source.timestamp_field]
        created = view.source.created_timestamp_field
        written = online.write_batch(
            view.name,
            table.select([*served, *([created] if created else []), *view.feature_names]),
            join_keys=view.join_keys,
            event_timestamp=view.source.timestamp_field,
            created_timestamp=created,
        )
    with store.unit_of_work() as uow:
        uow.audit(
            "features.push",
            "feature_view",
            view.name,
            {"rows": table.num_rows, "written": written, "file": path.name},
        )
    return PushResult(table.num_rows, written, path)


class Pusher:
    """Pushes rows for one feature store, caching each view's source schema per version."""

    def __init__(
        self,
        store: Store,
        online: Callable[[], OnlineStore],
        engine: DuckEngine,
        offline_dir: Path,
        push_log: Callable[[str], list[str]],
    ) -> None:
        self._store = store
        self._online = online
        self._engine = engine
        self._offline_dir = offline_dir
        self._push_log = push_log
        self._schemas: dict[str, tuple[int | None, pa.Schema]] = {}

    def push(self, view: FeatureView, version: int | None, rows: Any) -> PushResult:
        """Push ``rows`` to ``view`` (see :func:`push_rows`); authorize first.

        Raises:
            PermissionDeniedError: the caller lacks ``features:push`` on the view.
            InvalidInputError: the rows do not fit the view's source.
            SourceSchemaError: the view's source files are missing.
            BackendUnavailableError: the log or the online store cannot be written.
        """
        self._store.authorize(PUSH_SCOPE, resource=f"feature_view:{view.name}")
        cached = self._schemas.get(view.name)
        if cached is None or cached[0] != version:
            cached = self._schemas[view.name] = (version, source_arrow_schema(self._engine, view))
        return push_rows(
            store=self._store,
            online=self._online(),
            engine=self._engine,
            view=view,
            rows=rows,
            schema=cached[1],
            offline_dir=self._offline_dir,
            push_log=self._push_log,
        )


def _serve_window(
    online: OnlineStore, engine: DuckEngine, view: FeatureView, table: pa.Table, files: list[str]
) -> int:
    # The pushed entities' aggregates as of the newest pushed event, source and log together.
    as_of = pc.max(table.column(view.source.timestamp_field)).as_py()  # naive: UTC
    keys = table.select(list(view.join_keys)).group_by(list(view.join_keys)).aggregate([])
    entity_keys = [tuple(row.values()) for row in keys.to_pylist()]
    aggregates = compute_window_aggregates(
        view, entity_keys, as_of, engine=engine, extra_files=files
    )
    stamp = pa.array([as_of] * aggregates.num_rows, pa.timestamp("us", tz="UTC"))
    return online.write_batch(
        view.name,
        aggregates.append_column(_AS_OF, stamp),
        join_keys=view.join_keys,
        event_timestamp=_AS_OF,
    )
