"""Tables of deployments: one row per deployment, one per revision of its routing spec.

- ``deployments``: the deployment's name, whether it serves production traffic,
  and its latest revision number (what gateway workers poll every second).
- ``deployment_revisions``: each revision's routing spec (variants with the
  concrete model versions their references resolved to), its settings, and why
  it was made. Revisions are never changed; a rollback appends a copy.
"""

from __future__ import annotations

import sqlalchemy as sa

from steward.store import UTCDateTime, metadata

__all__ = ["deployment_revisions", "deployments"]

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("production", sa.Boolean(), nullable=False),
    sa.Column("latest_revision", sa.Integer(), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

deployment_revisions = sa.Table(
    "deployment_revisions",
    metadata,
    sa.Column("deployment", sa.String(128), sa.ForeignKey("deployments.name"), primary_key=True),
    sa.Column("revision", sa.Integer(), primary_key=True),
    sa.Column("spec", sa.Text(), nullable=False),  # canonical JSON of the RoutingSpec
    sa.Column("requested", sa.Text(), nullable=False),  # canonical JSON: variant -> ref as given
    sa.Column("settings", sa.Text(), nullable=False),  # canonical JSON of DeploymentSettings
    sa.Column("production", sa.Boolean(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=True),
    sa.Column("rollback_of", sa.Integer(), nullable=True),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)
