"""Writes to one run: its start (written behind), params, tags, notes, metrics, its end.

Every write goes through :func:`~steward.tracking._starts.run_unit`, which hands
over the run's start when it is still in memory; :func:`write_start` writes it
first in the same transaction. A run that starts, logs its metrics and ends is
thus one transaction: the run row (already ended), params, tags, metric values,
latest values and the ``run.start`` and ``run.end`` events, all on the driver's
cursor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from steward.core import ConflictError, InvalidInputError
from steward.store import Store, UnitOfWork
from steward.tracking._access import WRITE_SCOPE, run_resource
from steward.tracking._common import require_run
from steward.tracking._models import RunStatus
from steward.tracking._starts import RunStart, run_unit
from steward.tracking._statements import (
    END_RUN,
    INSERT_ENVIRONMENT,
    INSERT_LATEST_METRICS,
    INSERT_METRICS,
    INSERT_PARAMS,
    INSERT_RUN,
    INSERT_TAGS,
    UPSERT_LATEST_METRICS,
)
from steward.tracking._tables import params, run_tags, runs
from steward.tracking._validation import check_key, check_tags, decode_param, encode_param

__all__ = ["Ending", "RunWrites", "write_start"]

Encoded = dict[str, tuple[str, str, float | None]]  # key -> (text, type, number)
MetricRow = tuple[str, float, int, int]  # key, value, step, ts_ms
# status, end time, error, wall seconds, cpu seconds
Ending = tuple[str, Any, str | None, float | None, float | None]


def write_start(uow: UnitOfWork, start: RunStart | None, ending: Ending | None = None) -> bool:
    """Write a run's start in ``uow`` (already ended when ``ending`` is given).

    The ``run.start`` event is stamped when written; its details keep the start
    time. Returns False when there is no start to write.
    """
    if start is None:
        return False
    conn = uow.conn
    if start.environment_content is not None:
        INSERT_ENVIRONMENT(conn, [(start.environment_digest, start.environment_content)])
    status, end_time, error, wall, cpu = ending or (RunStatus.RUNNING.value, None, None, None, None)
    row = (start.run_id, start.experiment_id, start.name, status, start.parent_id, start.actor)
    INSERT_RUN(
        conn,
        [
            (
                *row,
                start.start_time,
                end_time,
                error,
                wall,
                cpu,
                start.seed,
                start.environment_digest,
                "",
            )
        ],
    )
    INSERT_PARAMS(conn, [(start.run_id, k, t, kind, n) for k, (t, kind, n) in start.params.items()])
    INSERT_TAGS(conn, [(start.run_id, k, v) for k, v in start.tags.items()])
    uow.audit(
        "run.start",
        "run",
        start.run_id,
        {
            "experiment": start.experiment_name,
            "parent": start.parent_id,
            "params": {k: v[0] for k, v in start.params.items()},
            "seed": start.seed,
            "started": start.start_time.isoformat(timespec="microseconds"),
        },
    )
    return True


def insert_metrics(
    conn: Connection, run_id: str, rows: list[MetricRow], *, fresh: bool
) -> dict[str, Any] | None:
    """Insert metric values and update the latest value per key; return what was logged.

    ``fresh``: the run was written in this transaction, so it has no latest values yet.
    """
    if not rows:
        return None
    INSERT_METRICS(conn, [(run_id, k, v, s, t) for k, v, s, t in rows])
    latest: dict[str, tuple[float, int, int]] = {}
    for key, value, step, ts in rows:
        if key not in latest or (step, ts) >= latest[key][1:]:
            latest[key] = (value, step, ts)
    statement = INSERT_LATEST_METRICS if fresh else UPSERT_LATEST_METRICS
    statement(conn, [(run_id, k, v, s, t) for k, (v, s, t) in latest.items()])
    return {"values": len(rows), "keys": sorted(latest)}


class RunWrites:
    """Params, tags, notes, metric flushes and ends of runs (part of the tracking service)."""

    store: Store

    def _encode_params(self, values: Mapping[str, Any]) -> Encoded:
        return {check_key("param", k): encode_param(k, v) for k, v in values.items()}

    def _insert_params(self, conn: Connection, run_id: str, encoded: Encoded) -> Encoded:
        if not encoded:
            return {}
        existing = {
            r.key: (r.value, r.type)
            for r in conn.execute(
                sa.select(params.c.key, params.c.value, params.c.type).where(
                    params.c.run_id == run_id, params.c.key.in_(list(encoded))
                )
            )
        }
        new = {}
        for key, (text, kind, number) in encoded.items():
            if key in existing:
                if existing[key] != (text, kind):
                    old = decode_param(*existing[key])
                    raise ConflictError(
                        f"param {key!r} of run {run_id} is already {old!r}; params are immutable, "
                        f"cannot set {decode_param(text, kind)!r}"
                    )
                continue
            new[key] = (text, kind, number)
        INSERT_PARAMS(conn, [(run_id, k, t, kind, n) for k, (t, kind, n) in new.items()])
        return new

    def _authorize_run_write(self, run_id: str) -> None:
        """Check the caller may write to a run: once per handle and per flush, not per value."""
        self.store.authorize(WRITE_SCOPE, resource=run_resource(run_id))

    def _log_params(self, run_id: str, values: Mapping[str, Any]) -> None:
        self._authorize_run_write(run_id)
        encoded = self._encode_params(values)
        with run_unit(self.store, run_id) as (uow, start):
            write_start(uow, start)
            require_run(uow.conn, run_id, running=True)
            new = self._insert_params(uow.conn, run_id, encoded)
            if new:
                uow.audit(
                    "run.params.log", "run", run_id, {"params": {k: v[0] for k, v in new.items()}}
                )

    def _set_tags(self, run_id: str, values: Mapping[str, str]) -> None:
        self._authorize_run_write(run_id)
        checked = check_tags(values)
        with run_unit(self.store, run_id) as (uow, start):
            write_start(uow, start)
            require_run(uow.conn, run_id)
            if checked:
                uow.conn.execute(
                    run_tags.delete().where(
                        run_tags.c.run_id == run_id, run_tags.c.key.in_(list(checked))
                    )
                )
                INSERT_TAGS(uow.conn, [(run_id, k, v) for k, v in checked.items()])
            uow.audit("run.tags.set", "run", run_id, {"tags": checked})

    def set_tags(self, run_id: str, values: Mapping[str, str]) -> None:
        """Set tags on any run (running or ended).

        Raises:
            NotFoundError: no run has that id.
            PermissionDeniedError: the caller lacks ``models:write``.
        """
        self._set_tags(run_id, values)

    def add_note(self, run_id: str, text: str) -> None:
        """Append a note to a run.

        Raises:
            InvalidInputError: the note is empty.
            NotFoundError: no run has that id.
            PermissionDeniedError: the caller lacks ``models:write``.
        """
        self._authorize_run_write(run_id)
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError("a note must be non-empty text")
        with run_unit(self.store, run_id) as (uow, start):
            write_start(uow, start)
            require_run(uow.conn, run_id)
            current = uow.conn.execute(
                sa.select(runs.c.notes).where(runs.c.id == run_id)
            ).scalar_one()
            notes = f"{current}\n{text}" if current else text
            uow.conn.execute(runs.update().where(runs.c.id == run_id).values(notes=notes))
            uow.audit("run.note", "run", run_id, {"text": text[:1000]})

    def _write_metrics(self, run_id: str, rows: list[MetricRow]) -> None:
        """Write metric values (and the run's start, when still in memory)."""
        self._authorize_run_write(run_id)
        with run_unit(self.store, run_id) as (uow, start):
            fresh = write_start(uow, start)
            if rows and not fresh:
                require_run(uow.conn, run_id)
            logged = insert_metrics(uow.conn, run_id, rows, fresh=fresh)
            if logged is not None:
                uow.audit("run.metrics.log", "run", run_id, logged)

    def _end_run(
        self,
        run_id: str,
        status: RunStatus,
        *,
        rows: list[MetricRow],
        error: str | None,
        wall_seconds: float,
        cpu_seconds: float,
    ) -> None:
        """End a run with its last metric values: one transaction, one ``run.end`` event.

        A run whose start is still in memory is inserted already ended.
        """
        self._authorize_run_write(run_id)
        with run_unit(self.store, run_id) as (uow, start):
            ending = (status.value, uow.clock.now(), error, wall_seconds, cpu_seconds)
            fresh = write_start(uow, start, ending)
            if not fresh:
                updated = END_RUN(uow.conn, (*ending, run_id))
                if updated.rowcount == 0:  # missing, or ended meanwhile (by another handle)
                    row = require_run(uow.conn, run_id)
                    raise ConflictError(
                        f"run {run_id} is already {row.status}; only a running run can be ended"
                    )
            logged = insert_metrics(uow.conn, run_id, rows, fresh=fresh)
            details: dict[str, Any] = {"status": status.value, "error": (error or "")[-500:]}
            if logged is not None:
                details["metrics"] = logged
            uow.audit("run.end", "run", run_id, details)
