"""Reading tracking records out of the database (shared by the services)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from steward.tracking._models import DatasetVersion, Experiment, Run, RunStatus
from steward.tracking._tables import (
    dataset_versions,
    experiments,
    latest_metrics,
    params,
    run_datasets,
    run_tags,
    runs,
)
from steward.tracking._validation import decode_param

__all__ = ["datasets_of", "load_runs", "to_dataset", "to_experiment"]


def to_experiment(row: Any) -> Experiment:
    """Build an Experiment from a row of ``experiments``."""
    return Experiment(
        id=row.id,
        name=row.name,
        description=row.description,
        owner=row.owner,
        tags=json.loads(row.tags),
        created_at=row.created_at,
        archived_at=row.archived_at,
    )


def to_dataset(row: Any, role: str | None = None) -> DatasetVersion:
    """Build a DatasetVersion from a row of ``dataset_versions``."""
    return DatasetVersion(
        id=row.id,
        digest=row.digest,
        name=row.name,
        source_uri=row.source_uri,
        num_rows=row.num_rows,
        num_columns=row.num_columns,
        schema=json.loads(row.schema),
        profile=json.loads(row.profile),
        created_at=row.created_at,
        role=role,
    )


def load_runs(conn: Connection, run_ids: Sequence[str]) -> list[Run]:
    """Load runs with params, latest metrics and tags in four queries, in the given order."""
    if not run_ids:
        return []
    ids = list(run_ids)
    rows = conn.execute(
        sa.select(runs, experiments.c.name.label("experiment_name"))
        .join(experiments, experiments.c.id == runs.c.experiment_id)
        .where(runs.c.id.in_(ids))
    ).all()
    by_param: dict[str, dict[str, Any]] = defaultdict(dict)
    for p in conn.execute(sa.select(params).where(params.c.run_id.in_(ids))):
        by_param[p.run_id][p.key] = decode_param(p.value, p.type)
    by_metric: dict[str, dict[str, float]] = defaultdict(dict)
    for m in conn.execute(sa.select(latest_metrics).where(latest_metrics.c.run_id.in_(ids))):
        by_metric[m.run_id][m.key] = m.value
    by_tag: dict[str, dict[str, str]] = defaultdict(dict)
    for t in conn.execute(sa.select(run_tags).where(run_tags.c.run_id.in_(ids))):
        by_tag[t.run_id][t.key] = t.value
    loaded = {
        r.id: Run(
            id=r.id,
            experiment_id=r.experiment_id,
            experiment_name=r.experiment_name,
            name=r.name,
            status=RunStatus(r.status),
            user=r.user,
            start_time=r.start_time,
            end_time=r.end_time,
            parent_run_id=r.parent_run_id,
            seed=r.seed,
            notes=r.notes,
            error=r.error,
            wall_seconds=r.wall_seconds,
            cpu_seconds=r.cpu_seconds,
            environment_digest=r.environment_digest,
            archived_at=r.archived_at,
            params=dict(sorted(by_param[r.id].items())),
            metrics=dict(sorted(by_metric[r.id].items())),
            tags=dict(sorted(by_tag[r.id].items())),
        )
        for r in rows
    }
    return [loaded[i] for i in ids if i in loaded]


def datasets_of(conn: Connection, run_id: str) -> list[DatasetVersion]:
    """Return the dataset versions a run logged, with their roles."""
    query = (
        sa.select(dataset_versions, run_datasets.c.role)
        .join(run_datasets, run_datasets.c.dataset_id == dataset_versions.c.id)
        .where(run_datasets.c.run_id == run_id)
        .order_by(run_datasets.c.role, dataset_versions.c.name)
    )
    return [to_dataset(row, row.role) for row in conn.execute(query)]
