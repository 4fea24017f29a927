"""Tables of the features context, declared on the shared store metadata.

- ``feature_definitions``: one row per ``apply`` that changed something, holding
  the full canonical JSON of the definitions, its digest and the plan applied.
- ``feature_materializations``: one row per view per materialization run.
- ``feature_watermarks``: per view, the event time up to which the online store
  is complete; moved only when a materialization commits.
"""

from __future__ import annotations

import sqlalchemy as sa

from steward.store import UTCDateTime, metadata

__all__ = ["feature_definitions", "feature_materializations", "feature_watermarks"]

feature_definitions = sa.Table(
    "feature_definitions",
    metadata,
    sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("content", sa.Text(), nullable=False),  # canonical JSON of Definitions
    sa.Column("plan", sa.Text(), nullable=False),  # canonical JSON of the ApplyPlan
    sa.Column("applied_by", sa.String(200), nullable=False),
    sa.Column("applied_at", UTCDateTime(), nullable=False),
    sa.Index(None, "digest"),
)

feature_materializations = sa.Table(
    "feature_materializations",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("view", sa.String(200), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Column("start_time", UTCDateTime(), nullable=True),  # event-time window read
    sa.Column("end_time", UTCDateTime(), nullable=True),
    sa.Column("rows_read", sa.BigInteger(), nullable=False, default=0),
    sa.Column("rows_written", sa.BigInteger(), nullable=False, default=0),
    sa.Column("watermark", UTCDateTime(), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # running | succeeded | failed
    sa.Column("profile", sa.Text(), nullable=True),  # canonical JSON of the quality profile
    sa.Column("error", sa.Text(), nullable=True),
    sa.Index(None, "view", "started_at"),
)

feature_watermarks = sa.Table(
    "feature_watermarks",
    metadata,
    sa.Column("view", sa.String(200), primary_key=True),
    sa.Column("watermark", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)
