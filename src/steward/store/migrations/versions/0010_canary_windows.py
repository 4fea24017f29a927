"""serving: each gateway worker's window of a canary step

Revision ID: 0010_canary_windows
Revises: 0009_retention
Create Date: 2026-11-23 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from steward.store._types import UTCDateTime

revision = "0010_canary_windows"
down_revision = "0009_retention"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_canary_windows",
        sa.Column("canary_id", sa.String(length=32), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=128), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("window", sa.Text(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["canary_id"],
            ["serving_canaries.id"],
            name=op.f("fk_serving_canary_windows_canary_id_serving_canaries"),
        ),
        sa.PrimaryKeyConstraint(
            "canary_id", "step_index", "worker", name=op.f("pk_serving_canary_windows")
        ),
    )


def downgrade() -> None:
    op.drop_table("serving_canary_windows")
