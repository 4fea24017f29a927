"""Tables of the tracking context, declared on the shared store metadata."""

from __future__ import annotations

import sqlalchemy as sa

from steward.store import UTCDateTime, big_id, metadata

__all__ = [
    "dataset_versions",
    "environments",
    "experiments",
    "latest_metrics",
    "metrics",
    "params",
    "run_artifacts",
    "run_datasets",
    "run_tags",
    "runs",
]

_ID = sa.String(32)

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("description", sa.Text(), nullable=False, default=""),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("tags", sa.Text(), nullable=False, default="{}"),  # canonical JSON
    sa.Column("archived_at", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

# Environments are stored once per distinct content and shared by runs.
environments = sa.Table(
    "environments",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("content", sa.Text(), nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("experiment_id", _ID, sa.ForeignKey("experiments.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("parent_run_id", _ID, sa.ForeignKey("runs.id"), nullable=True),
    sa.Column("user", sa.String(200), nullable=False),
    sa.Column("start_time", UTCDateTime(), nullable=False),
    sa.Column("end_time", UTCDateTime(), nullable=True),
    sa.Column("seed", sa.BigInteger(), nullable=True),
    sa.Column("environment_digest", sa.String(64), sa.ForeignKey("environments.digest")),
    sa.Column("wall_seconds", sa.Float(), nullable=True),
    sa.Column("cpu_seconds", sa.Float(), nullable=True),
    sa.Column("notes", sa.Text(), nullable=False, default=""),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("archived_at", UTCDateTime(), nullable=True),
    sa.Index(None, "experiment_id", "start_time"),
    sa.Index(None, "parent_run_id"),
)

params = sa.Table(
    "params",
    metadata,
    sa.Column("run_id", _ID, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
    sa.Column("type", sa.String(8), nullable=False),  # str | int | float | bool
    sa.Column("num_value", sa.Float(), nullable=True),  # for numeric filters on int/float
)

metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("id", big_id(), primary_key=True, autoincrement=True),
    sa.Column("run_id", _ID, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("value", sa.Float(), nullable=False),
    sa.Column("step", sa.BigInteger(), nullable=False),
    sa.Column("ts_ms", sa.BigInteger(), nullable=False),  # epoch milliseconds: cheap at volume
    sa.Index(None, "run_id", "key", "step"),
)

# The last value per run and key (highest step, then newest), kept at flush time:
# search filters and orders on it with one join instead of scanning history.
latest_metrics = sa.Table(
    "latest_metrics",
    metadata,
    sa.Column("run_id", _ID, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Float(), nullable=False),
    sa.Column("step", sa.BigInteger(), nullable=False),
    sa.Column("ts_ms", sa.BigInteger(), nullable=False),
    sa.Index(None, "key", "value"),
)

run_tags = sa.Table(
    "run_tags",
    metadata,
    sa.Column("run_id", _ID, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
)

run_artifacts = sa.Table(
    "run_artifacts",
    metadata,
    sa.Column("run_id", _ID, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("path", sa.String(1000), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger(), nullable=False),
    sa.Index(None, "digest"),
)

dataset_versions = sa.Table(
    "dataset_versions",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("digest", sa.String(80), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("source_uri", sa.Text(), nullable=False),
    sa.Column("num_rows", sa.BigInteger(), nullable=False),
    sa.Column("num_columns", sa.Integer(), nullable=False),
    sa.Column("schema", sa.Text(), nullable=False),  # canonical JSON
    sa.Column("profile", sa.Text(), nullable=False),  # canonical JSON
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("digest", "name"),
)

run_datasets = sa.Table(
    "run_datasets",
    metadata,
    sa.Column("run_id", _ID, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("dataset_id", _ID, sa.ForeignKey("dataset_versions.id"), primary_key=True),
    sa.Column("role", sa.String(50), primary_key=True),
    sa.Index(None, "dataset_id"),
)
