"""Prepared statements of the run hot path: starting, ending and flushing a run.

Writing a run's start and end runs a handful of statements; on the driver's
cursor (``steward.store.PreparedInsert``) they cost a fraction of SQLAlchemy's
per-statement overhead. Everything else in tracking uses SQLAlchemy Core.
"""

from __future__ import annotations

from steward.store import PreparedInsert, PreparedStatement
from steward.tracking._tables import (
    environments,
    experiments,
    latest_metrics,
    metrics,
    params,
    run_tags,
    runs,
)

__all__ = [
    "END_RUN",
    "EXPERIMENT_BY_NAME_OR_ID",
    "INSERT_ENVIRONMENT",
    "INSERT_LATEST_METRICS",
    "INSERT_METRICS",
    "INSERT_PARAMS",
    "INSERT_RUN",
    "INSERT_TAGS",
    "UPSERT_LATEST_METRICS",
]

EXPERIMENT_BY_NAME_OR_ID = PreparedStatement(
    "SELECT id, name, archived_at FROM experiments WHERE name = {} OR id = {}",
    [experiments.c.name, experiments.c.id],
)

INSERT_RUN = PreparedInsert(
    runs,
    [
        "id",
        "experiment_id",
        "name",
        "status",
        "parent_run_id",
        "user",
        "start_time",
        "end_time",
        "error",
        "wall_seconds",
        "cpu_seconds",
        "seed",
        "environment_digest",
        "notes",
    ],
)

INSERT_PARAMS = PreparedInsert(params, ["run_id", "key", "value", "type", "num_value"])

INSERT_TAGS = PreparedInsert(run_tags, ["run_id", "key", "value"])

# Snapshots are keyed by content: another writer storing the same one first is fine.
INSERT_ENVIRONMENT = PreparedInsert(
    environments, ["digest", "content"], suffix=" ON CONFLICT (digest) DO NOTHING"
)

# Only a running run is ended: a second handle cannot overwrite a finished run's status.
END_RUN = PreparedStatement(
    "UPDATE runs SET status = {}, end_time = {}, error = {}, wall_seconds = {}, "
    "cpu_seconds = {} WHERE id = {} AND status = 'running'",
    [
        runs.c.status,
        runs.c.end_time,
        runs.c.error,
        runs.c.wall_seconds,
        runs.c.cpu_seconds,
        runs.c.id,
    ],
)

INSERT_METRICS = PreparedInsert(metrics, ["run_id", "key", "value", "step", "ts_ms"])

# A run written in the same transaction has no latest values yet: a plain insert.
INSERT_LATEST_METRICS = PreparedInsert(latest_metrics, ["run_id", "key", "value", "step", "ts_ms"])

# The latest value per key: replaced only by a higher step, or the same step logged
# later (equal times: the later write wins), in one statement on SQLite and PostgreSQL.
UPSERT_LATEST_METRICS = PreparedInsert(
    latest_metrics,
    ["run_id", "key", "value", "step", "ts_ms"],
    suffix=(
        ' ON CONFLICT (run_id, "key") DO UPDATE SET value = excluded.value, '
        "step = excluded.step, ts_ms = excluded.ts_ms "
        "WHERE excluded.step > latest_metrics.step OR "
        "(excluded.step = latest_metrics.step AND excluded.ts_ms >= latest_metrics.ts_ms)"
    ),
)
