"""serving: bandit arm totals, canary plans and their decisions

Revision ID: 0006_serving
Revises: 0007_promotions
Create Date: 2026-11-22 14:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from steward.store._types import UTCDateTime

revision = "0006_serving"
down_revision = "0007_promotions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_bandit_arms",
        sa.Column("bandit", sa.String(length=200), nullable=False),
        sa.Column("arm", sa.String(length=64), nullable=False),
        sa.Column("pulls", sa.BigInteger(), nullable=False),
        sa.Column("trials", sa.BigInteger(), nullable=False),
        sa.Column("reward_sum", sa.Float(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("bandit", "arm", name=op.f("pk_serving_bandit_arms")),
    )
    op.create_table(
        "serving_canaries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("deployment", sa.String(length=200), nullable=False),
        sa.Column("baseline", sa.String(length=64), nullable=False),
        sa.Column("canary", sa.String(length=64), nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("step_started_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_canaries")),
    )
    with op.batch_alter_table("serving_canaries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_serving_canaries_deployment_status"),
            ["deployment", "status"],
            unique=False,
        )
    op.create_table(
        "serving_canary_decisions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("canary_id", sa.String(length=32), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["canary_id"],
            ["serving_canaries.id"],
            name=op.f("fk_serving_canary_decisions_canary_id_serving_canaries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_canary_decisions")),
    )
    with op.batch_alter_table("serving_canary_decisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_serving_canary_decisions_canary_id_id"),
            ["canary_id", "id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("serving_canary_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_serving_canary_decisions_canary_id_id"))
    op.drop_table("serving_canary_decisions")
    with op.batch_alter_table("serving_canaries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_serving_canaries_deployment_status"))
    op.drop_table("serving_canaries")
    op.drop_table("serving_bandit_arms")
