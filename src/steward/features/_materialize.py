"""Materialization: the latest feature values per entity, from the offline sources to online.

For a plain view and an event-time window ``[start, end]``, one DuckDB query
picks each entity's latest source row in the window (latest event time, then
latest created time; a ``row_number`` ranking per entity, which DuckDB spills
to disk past its memory limit) and streams the result in record batches of
``batch_rows``; each batch is written to the online store, which keeps a row
only when it is newer than the stored one. Window views are materialized as of
``end``: the aggregates of every entity with an event in the widest window
before ``end`` (or since ``start`` minus that window), stamped with ``end``.

What makes a run safe to fail and to repeat:

- a view's batches are written in one online transaction (``OnlineStore.begin``):
  committed together at the end of the view's run, rolled back when anything
  fails before that, so a failed run leaves the online store as it was;
- the online store only ever moves forward in event time, so running the same
  materialization twice writes nothing the second time;
- the watermark — the event time up to which the online store is complete — is
  advanced only after the online commit, in the same transaction that records
  the run and its audit event, and only when the window started at or before the
  previous watermark (no gap); a failed run is recorded as failed and leaves it
  as it was. (Should recording a run fail after its online commit, the rows stay
  online — true values, newer than what they replaced — and the watermark stays
  behind them, so the next run repeats the window.)

Ties: among an entity's source rows with the same event time (and the same
created time, or none), the first in the source's order wins — see
``ViewRead.order`` — as in point-in-time retrieval, and as the online store keeps
the row it got first.

A profile of the materialized values (a sample of at most 100,000 rows, PII
features left out) is stored with each run, as the drift baseline of what
serving sees.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sqlalchemy.dialects import postgresql, sqlite

from steward.core import InvalidInputError, new_id
from steward.features._definitions import Definitions, FeatureView
from steward.features._engine import DuckEngine
from steward.features._errors import UnknownFeatureError
from steward.features._online import OnlineStore, OnlineTransaction
from steward.features._sample import ValueSample
from steward.features._sources import SQL_TYPES, ViewRead, quote, read_view, timestamp_sql
from steward.features._tables import feature_materializations, feature_watermarks
from steward.features._windows import timestamp_literal, utc_naive, window_sql
from steward.quality import ReferenceProfile
from steward.store import Store

__all__ = [
    "MATERIALIZE_SCOPE",
    "MaterializeReport",
    "ViewMaterialization",
    "materialize_views",
    "read_watermark",
    "utc",
]

MATERIALIZE_SCOPE = "features:materialize"
_EVENT = "__ts"
_CREATED = "__created"
_COUNT = "__n"
_MICROSECOND = timedelta(microseconds=1)


def utc(value: datetime | None, name: str) -> datetime | None:
    """Return ``value`` as an aware UTC datetime; a naive one is taken as UTC.

    Raises:
        InvalidInputError: ``value`` is not a datetime.
    """
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{name} must be a datetime, got {type(value).__name__} {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class ViewMaterialization:
    """What one view's materialization read, wrote and recorded.

    Attributes:
        view: the feature view.
        start: the event-time window's start (None: from the first event).
        end: the window's end, inclusive (window views: the instant aggregated as of).
        rows_read: source rows in the window (window views: entities aggregated).
        rows_written: rows the online store took (newer than what it held).
        watermark: the view's watermark after the run (None: not complete anywhere yet).
        seconds: wall time of the run.
        profiled_rows: rows in the stored profile's sample (0: no profile).
    """

    view: str
    start: datetime | None
    end: datetime
    rows_read: int
    rows_written: int
    watermark: datetime | None
    seconds: float
    profiled_rows: int

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (times as ISO 8601)."""
        return {
            "view": self.view,
            "start": None if self.start is None else self.start.isoformat(),
            "end": self.end.isoformat(),
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "watermark": None if self.watermark is None else self.watermark.isoformat(),
            "seconds": round(self.seconds, 3),
            "profiled_rows": self.profiled_rows,
        }


@dataclass(frozen=True)
class MaterializeReport:
    """The outcome of one ``materialize`` call: one entry per view, in order."""

    views: tuple[ViewMaterialization, ...]

    @property
    def rows_read(self) -> int:
        """Source rows read over all views."""
        return sum(v.rows_read for v in self.views)

    @property
    def rows_written(self) -> int:
        """Rows the online store took over all views."""
        return sum(v.rows_written for v in self.views)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "views": [v.as_dict() for v in self.views],
        }


def read_watermark(conn: sa.Connection, view: str) -> datetime | None:
    """Return the view's watermark, or None when no run has completed it yet."""
    value = conn.execute(
        sa.select(feature_watermarks.c.watermark).where(feature_watermarks.c.view == view)
    ).scalar()
    return value if isinstance(value, datetime) else None


# -- queries ----------------------------------------------------------------------------------


def _value_sql(view: FeatureView, read: ViewRead, name: str) -> str:
    feature = view.feature(name)
    if feature.dtype == "timestamp":
        return timestamp_sql(name, read.schema.columns[name])
    return f"CAST({quote(name)} AS {SQL_TYPES[feature.dtype]})"


def latest_rows_sql(read: ViewRead, start: datetime | None, end: datetime) -> str:
    """Return SQL of each entity's latest row in ``[start, end]``, plus its row count.

    Output columns: the join keys, ``__ts``, ``__created``, one per feature (named
    as the feature), ``__n`` (source rows of that entity in the window). Latest means
    the greatest event time, then the greatest created time (none counts as oldest),
    then the first in the source's order (see ``_sources``).
    """
    view = read.view
    keys = ", ".join(quote(k) for k in view.join_keys)
    ts = read.timestamp()
    created = read.created() or "CAST(NULL AS TIMESTAMP)"
    values = ", ".join(f"{_value_sql(view, read, n)} AS {quote(n)}" for n in read.features)
    # (start - 1 µs, end] is [start, end]; the bounds are on the raw column, so Parquet
    # row groups outside the window are skipped by their statistics.
    after = None if start is None else utc_naive(start) - _MICROSECOND
    where = [read.time_filter(after, utc_naive(end))]
    where += [f"{quote(k)} IS NOT NULL" for k in view.join_keys]
    # A window ranking (partitioned, spilled to disk past the memory limit) measured twice
    # as fast here as a max_by hash aggregate over a packed struct of the row.
    return (
        f"SELECT {keys}, {ts} AS {_EVENT}, {created} AS {_CREATED}, {values}, "
        f"count(*) OVER (PARTITION BY {keys}) AS {_COUNT} "
        f"FROM {read.ordered} WHERE {' AND '.join(where)} "
        f"QUALIFY row_number() OVER (PARTITION BY {keys} "
        f"ORDER BY {ts} DESC, {created} DESC NULLS LAST, __order) = 1"
    )


def _window_rows(
    conn: Any, read: ViewRead, start: datetime | None, end: datetime
) -> tuple[str, str]:
    # The entities to refresh, in a temp table: those with an event in the widest window
    # before `end` (and, with a start, since `start` minus that window, so that an
    # entity whose windows have emptied since the last run is set back to zero).
    view = read.view
    keys = ", ".join(quote(k) for k in view.join_keys)
    widest = max(agg.window for agg in view.aggregations)
    after = None if start is None else utc_naive(start) - widest
    where = [read.time_filter(after, utc_naive(end))]
    where += [f"{quote(k)} IS NOT NULL" for k in view.join_keys]
    table = f"__materialize_{new_id()}"
    conn.sql(
        f"CREATE TEMP TABLE {table} AS SELECT row_number() OVER () - 1 AS __row, *, "
        f"{timestamp_literal(end)} AS {_EVENT} FROM "
        f"(SELECT DISTINCT {keys} FROM {read.relation} WHERE {' AND '.join(where)})"
    )
    inner = window_sql(read, table, "__w", (end, end))
    names = ", ".join(f"w.__w{i} AS {quote(n)}" for i, n in enumerate(read.features))
    entity_keys = ", ".join(f"e.{quote(k)}" for k in view.join_keys)
    query = (
        f"SELECT {entity_keys}, e.{_EVENT}, {names}, 1 AS {_COUNT} FROM {table} e "
        f"LEFT JOIN ({inner}) w ON w.__row = e.__row"
    )
    return query, table


# -- the run ----------------------------------------------------------------------------------


@dataclass
class _Run:
    view: FeatureView
    start: datetime | None  # the window read; None from the first event
    end: datetime
    started_at: datetime
    began: float
    rows_read: int = 0
    rows_written: int = 0


def _progress(enabled: bool) -> Progress:
    console = Console(stderr=True)
    if not (enabled and console.is_terminal):
        return Progress(console=console, disable=True)
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,} rows"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def materialize_views(
    *,
    store: Store,
    online: OnlineStore,
    engine: DuckEngine,
    definitions: Definitions,
    push_log: Callable[[str], list[str]],
    start: datetime | None = None,
    end: datetime | None = None,
    incremental: bool = False,
    views: Sequence[str] | None = None,
    progress: bool = True,
    batch_rows: int = 100_000,
) -> MaterializeReport:
    """Write the latest feature values of each view into the online store (module docstring).

    Raises:
        InvalidInputError: the window is empty or in the future, ``start`` is given with
            ``incremental``, or ``batch_rows`` is not positive.
        UnknownFeatureError: a named view is not registered, or none are.
        PermissionDeniedError: the caller lacks ``features:materialize`` on a view.
        SourceSchemaError: a source is missing or no longer matches its view.
        BackendUnavailableError: the online store cannot be written.
    """
    now = store.clock.now()
    start, end = utc(start, "start"), utc(end, "end") or now
    if incremental and start is not None:
        raise InvalidInputError(
            "incremental materialization starts at each view's watermark; drop start (--start)"
        )
    if start is not None and start > end:
        raise InvalidInputError(f"start {start.isoformat()} is after end {end.isoformat()}")
    if end > now:
        raise InvalidInputError(
            f"end {end.isoformat()} is in the future (now {now.isoformat()}); the watermark "
            "would claim events that have not happened yet"
        )
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise InvalidInputError(f"batch_rows must be a positive int, got {batch_rows!r}")
    if isinstance(views, str):
        views = [views]
    chosen = [definitions.view(name) for name in dict.fromkeys(views)] if views else []
    if not views:
        chosen = [definitions.views[name] for name in sorted(definitions.views)]
    if not chosen:
        raise UnknownFeatureError(
            "no feature views are registered; define them and run `steward features apply`"
        )
    for view in chosen:
        store.authorize(MATERIALIZE_SCOPE, resource=f"feature_view:{view.name}")
    results = []
    with _progress(progress) as bar:
        for view in chosen:
            with store.database.read() as conn:
                watermark = read_watermark(conn, view.name)
            window_start = watermark if incremental else start
            run = _Run(view, window_start, end, store.clock.now(), time.perf_counter())
            task = bar.add_task(view.name, total=None)

            def advance(rows: int, task: Any = task) -> None:
                bar.update(task, advance=rows)

            results.append(
                _materialize_view(store, online, engine, push_log, run, batch_rows, advance)
            )
            bar.remove_task(task)
    return MaterializeReport(tuple(results))


def _batches(conn: Any, read: ViewRead, run: _Run, batch_rows: int) -> Iterator[pa.RecordBatch]:
    if read.view.is_window:
        query, table = _window_rows(conn, read, run.start, run.end)
        try:
            yield from conn.sql(query).to_arrow_reader(batch_rows)
        finally:
            conn.sql(f"DROP TABLE IF EXISTS {table}")
        return
    yield from conn.sql(latest_rows_sql(read, run.start, run.end)).to_arrow_reader(batch_rows)


def _materialize_view(
    store: Store,
    online: OnlineStore,
    engine: DuckEngine,
    push_log: Callable[[str], list[str]],
    run: _Run,
    batch_rows: int,
    advance: Callable[[int], None],
) -> ViewMaterialization:
    view = run.view
    conn = engine.cursor()
    try:
        read = read_view(conn, view, view.feature_names, push_log(view.name))
        transaction = online.begin(view.name)
        try:
            profile = _write_batches(conn, read, run, transaction, batch_rows, advance)
            run.rows_written = transaction.commit()
        except BaseException as exc:
            try:
                transaction.rollback()
            except Exception as secondary:  # the online store may be what failed
                exc.add_note(f"the online transaction could not be rolled back: {secondary}")
            raise
    except Exception as exc:
        try:
            _record_failure(store, run, exc)
        except Exception as secondary:  # the metadata store may be what failed
            exc.add_note(f"the failed run could not be recorded: {secondary}")
        raise
    finally:
        conn.close()
    return _record_success(store, run, profile)


def _write_batches(
    conn: Any,
    read: ViewRead,
    run: _Run,
    transaction: OnlineTransaction,
    batch_rows: int,
    advance: Callable[[int], None],
) -> ReferenceProfile | None:
    # Every batch into the transaction, sampled for the profile; nothing is applied yet.
    view = run.view
    sample = ValueSample([f.name for f in view.output_features if not f.pii])
    created = view.source.created_timestamp_field is not None and not view.is_window
    for batch in _batches(conn, read, run, batch_rows):
        run.rows_read += int(pc.sum(batch.column(_COUNT)).as_py() or 0)
        batch = batch.drop_columns([_COUNT])
        if not created and _CREATED in batch.schema.names:
            batch = batch.drop_columns([_CREATED])
        staged = transaction.write_batch(
            batch,
            join_keys=view.join_keys,
            event_timestamp=_EVENT,
            created_timestamp=_CREATED if created else None,
        )
        sample.add(batch)
        advance(staged)
    return sample.profile()


def _record_success(
    store: Store, run: _Run, profile: ReferenceProfile | None
) -> ViewMaterialization:
    view = run.view.name
    with store.unit_of_work() as uow:
        previous = read_watermark(uow.conn, view)
        contiguous = run.start is None or (previous is not None and run.start <= previous)
        watermark = previous
        if contiguous and (previous is None or run.end > previous):
            watermark = run.end
            _set_watermark(uow.conn, view, run.end, uow.clock.now())
        seconds = time.perf_counter() - run.began
        uow.conn.execute(
            feature_materializations.insert(),
            {
                "id": new_id(),
                "view": view,
                "started_at": run.started_at,
                "finished_at": uow.clock.now(),
                "start_time": run.start,
                "end_time": run.end,
                "rows_read": run.rows_read,
                "rows_written": run.rows_written,
                "watermark": watermark,
                "status": "succeeded",
                "profile": None if profile is None else profile.to_json(),
                "error": None,
            },
        )
        result = ViewMaterialization(
            view,
            run.start,
            run.end,
            run.rows_read,
            run.rows_written,
            watermark,
            seconds,
            0 if profile is None else profile.rows,
        )
        uow.audit("features.materialize", "feature_view", view, result.as_dict())
    return result


def _set_watermark(conn: sa.Connection, view: str, value: datetime, now: datetime) -> None:
    # An upsert that never moves the watermark back, even against a concurrent run.
    from_dialect: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = from_dialect(feature_watermarks).values(view=view, watermark=value, updated_at=now)
    newer = statement.excluded.watermark > feature_watermarks.c.watermark
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[feature_watermarks.c.view],
            set_={
                "watermark": sa.case(
                    (newer, statement.excluded.watermark), else_=feature_watermarks.c.watermark
                ),
                "updated_at": statement.excluded.updated_at,
            },
        )
    )


def _record_failure(store: Store, run: _Run, error: BaseException) -> None:
    message = f"{type(error).__name__}: {error}"[:2_000]
    with store.unit_of_work() as uow:
        watermark = read_watermark(uow.conn, run.view.name)
        uow.conn.execute(
            feature_materializations.insert(),
            {
                "id": new_id(),
                "view": run.view.name,
                "started_at": run.started_at,
                "finished_at": uow.clock.now(),
                "start_time": run.start,
                "end_time": run.end,
                "rows_read": run.rows_read,
                "rows_written": run.rows_written,
                "watermark": watermark,
                "status": "failed",
                "profile": None,
                "error": message,
            },
        )
        uow.audit(
            "features.materialize.failed",
            "feature_view",
            run.view.name,
            {
                "start": None if run.start is None else run.start.isoformat(),
                "end": run.end.isoformat(),
                "rows_written": run.rows_written,
                "error": message,
            },
        )
