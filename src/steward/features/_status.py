"""Freshness and statistics per view: watermark, lag against the SLA, runs, rows, profile.

A view's *lag* is how far its online values may trail reality: now minus its
watermark (the event time up to which the online store is complete). A view
with a ``freshness_sla`` is ``fresh`` while the lag is within it and ``stale``
past it; one never materialized is ``never``; one without an SLA is ``no_sla``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa

from steward.core import NotFoundError
from steward.features._definitions import Definitions
from steward.features._tables import feature_materializations, feature_watermarks
from steward.quality import ReferenceProfile
from steward.store import Store

__all__ = ["Freshness", "ViewProfile", "ViewStatus", "read_profile", "view_statuses"]

Freshness = Literal["fresh", "stale", "never", "no_sla"]
_RUNS = feature_materializations.c


@dataclass(frozen=True)
class ViewStatus:
    """Where one view's online values stand.

    Attributes:
        view: the feature view.
        kind: ``features`` (latest values) or ``window`` (aggregates).
        owner: the view's owner.
        watermark: event time up to which the online store is complete (None: never).
        lag: now minus the watermark.
        freshness_sla: the lag the view promises to stay within, if it declares one.
        freshness: ``fresh``, ``stale``, ``never`` or ``no_sla`` (module docstring).
        runs: materialization runs recorded, failed ones included.
        rows_written: rows written online over every successful run.
        last_run_at: when the last run finished.
        last_status: ``succeeded`` or ``failed``.
        last_rows_written: rows the last run wrote.
        last_error: the last run's error, if it failed.
        profiled_rows: rows sampled into the last successful run's profile (0: none).
    """

    view: str
    kind: Literal["features", "window"]
    owner: str
    watermark: datetime | None
    lag: timedelta | None
    freshness_sla: timedelta | None
    freshness: Freshness
    runs: int
    rows_written: int
    last_run_at: datetime | None
    last_status: str | None
    last_rows_written: int | None
    last_error: str | None
    profiled_rows: int

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (times ISO 8601, durations in seconds)."""

        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        def seconds(value: timedelta | None) -> float | None:
            return None if value is None else value.total_seconds()

        return {
            "view": self.view,
            "kind": self.kind,
            "owner": self.owner,
            "watermark": iso(self.watermark),
            "lag_seconds": seconds(self.lag),
            "freshness_sla_seconds": seconds(self.freshness_sla),
            "freshness": self.freshness,
            "runs": self.runs,
            "rows_written": self.rows_written,
            "last_run_at": iso(self.last_run_at),
            "last_status": self.last_status,
            "last_rows_written": self.last_rows_written,
            "last_error": self.last_error,
            "profiled_rows": self.profiled_rows,
        }


def _freshness(lag: timedelta | None, sla: timedelta | None) -> Freshness:
    if lag is None:
        return "never"
    if sla is None:
        return "no_sla"
    return "fresh" if lag <= sla else "stale"


def _latest_runs(conn: sa.Connection, status: str | None = None) -> dict[str, Any]:
    # The newest run of each view (of one status, when given).
    newest = sa.select(_RUNS.view, sa.func.max(_RUNS.finished_at).label("at")).group_by(_RUNS.view)
    if status is not None:
        newest = newest.where(_RUNS.status == status)
    latest = newest.subquery()
    query = sa.select(feature_materializations).join(
        latest, sa.and_(_RUNS.view == latest.c.view, _RUNS.finished_at == latest.c.at)
    )
    if status is not None:
        query = query.where(_RUNS.status == status)
    return {row.view: row for row in conn.execute(query)}


def view_statuses(store: Store, definitions: Definitions) -> list[ViewStatus]:
    """Return the status of every registered view, by name (module docstring)."""
    now = store.clock.now()
    with store.database.read() as conn:
        marks = dict(
            conn.execute(sa.select(feature_watermarks.c.view, feature_watermarks.c.watermark)).all()
        )
        totals = {
            row.view: row
            for row in conn.execute(
                sa.select(
                    _RUNS.view,
                    sa.func.count().label("runs"),
                    sa.func.sum(
                        sa.case((_RUNS.status == "succeeded", _RUNS.rows_written), else_=0)
                    ).label("rows"),
                ).group_by(_RUNS.view)
            )
        }
        last = _latest_runs(conn)
        good = _latest_runs(conn, "succeeded")
    statuses = []
    for name in sorted(definitions.views):
        view = definitions.views[name]
        watermark = marks.get(name)
        lag = None if watermark is None else now - watermark
        run, total, success = last.get(name), totals.get(name), good.get(name)
        statuses.append(
            ViewStatus(
                view=name,
                kind="window" if view.is_window else "features",
                owner=view.owner,
                watermark=watermark,
                lag=lag,
                freshness_sla=view.freshness_sla,
                freshness=_freshness(lag, view.freshness_sla),
                runs=int(total.runs) if total else 0,
                rows_written=int(total.rows or 0) if total else 0,
                last_run_at=run.finished_at if run else None,
                last_status=run.status if run else None,
                last_rows_written=int(run.rows_written) if run else None,
                last_error=run.error if run else None,
                profiled_rows=_profiled_rows(success.profile if success else None),
            )
        )
    return statuses


def _profiled_rows(text: str | None) -> int:
    if not text:
        return 0
    rows = json.loads(text).get("rows", 0)
    return int(rows) if isinstance(rows, int) else 0


@dataclass(frozen=True)
class ViewProfile:
    """The profile stored with a view's last successful materialization, and that run.

    Attributes:
        view: the feature view.
        profile: the materialized values' profile (a sample of at most 100,000 rows,
            PII features left out): the drift baseline of what serving sees.
        finished_at: when the run finished.
        start: the run's event-time window start (None: from the first event).
        end: the window's end.
        rows_read: source rows the run read.
        rows_written: rows the run wrote online.
    """

    view: str
    profile: ReferenceProfile
    finished_at: datetime
    start: datetime | None
    end: datetime
    rows_read: int
    rows_written: int

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict: the run, then the profile's rows, columns and skips."""
        return {
            "view": self.view,
            "finished_at": self.finished_at.isoformat(),
            "start": None if self.start is None else self.start.isoformat(),
            "end": self.end.isoformat(),
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "profiled_rows": self.profile.rows,
            "columns": self.profile.describe(),
            "skipped": dict(self.profile.skipped),
        }


def read_profile(store: Store, view: str) -> ViewProfile:
    """Return the profile of the view's last successful materialization (a drift baseline).

    Raises:
        NotFoundError: no successful run of the view recorded a profile.
    """
    with store.database.read() as conn:
        run = conn.execute(
            sa.select(feature_materializations)
            .where(_RUNS.view == view, _RUNS.status == "succeeded", _RUNS.profile.is_not(None))
            .order_by(_RUNS.finished_at.desc())
            .limit(1)
        ).first()
    if run is None or not run.profile:
        raise NotFoundError(
            f"view {view!r} has no materialization profile yet; run "
            f"`steward features materialize --view {view}`"
        )
    return ViewProfile(
        view=view,
        profile=ReferenceProfile.from_dict(json.loads(run.profile)),
        finished_at=run.finished_at,
        start=run.start_time,
        end=run.end_time,
        rows_read=int(run.rows_read),
        rows_written=int(run.rows_written),
    )
