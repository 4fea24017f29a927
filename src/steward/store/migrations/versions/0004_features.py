"""features: definitions versions, materialization runs, watermarks

Revision ID: 0004_features
Revises: 0006_serving
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from steward.store._types import UTCDateTime

revision = "0004_features"
down_revision = "0006_serving"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feature_definitions",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("applied_by", sa.String(length=200), nullable=False),
        sa.Column("applied_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_feature_definitions")),
    )
    with op.batch_alter_table("feature_definitions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feature_definitions_digest"), ["digest"], unique=False)

    op.create_table(
        "feature_materializations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("view", sa.String(length=200), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("start_time", UTCDateTime(), nullable=True),
        sa.Column("end_time", UTCDateTime(), nullable=True),
        sa.Column("rows_read", sa.BigInteger(), nullable=False),
        sa.Column("rows_written", sa.BigInteger(), nullable=False),
        sa.Column("watermark", UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("profile", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_materializations")),
    )
    with op.batch_alter_table("feature_materializations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_feature_materializations_view_started_at"),
            ["view", "started_at"],
            unique=False,
        )

    op.create_table(
        "feature_watermarks",
        sa.Column("view", sa.String(length=200), nullable=False),
        sa.Column("watermark", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("view", name=op.f("pk_feature_watermarks")),
    )


def downgrade() -> None:
    op.drop_table("feature_watermarks")
    with op.batch_alter_table("feature_materializations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feature_materializations_view_started_at"))
    op.drop_table("feature_materializations")
    with op.batch_alter_table("feature_definitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feature_definitions_digest"))
    op.drop_table("feature_definitions")
