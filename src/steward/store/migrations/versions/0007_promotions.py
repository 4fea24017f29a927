"""promotions

Revision ID: 0007_promotions
Revises: 0005_governance
Create Date: 2026-11-22 14:43:11.276555
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from steward.store._types import UTCDateTime

revision = "0007_promotions"
down_revision = "0005_governance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policy_versions",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_policy_versions")),
        sa.UniqueConstraint("digest", name=op.f("uq_policy_versions_digest")),
    )
    op.create_table(
        "promotion_requests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("target_stage", sa.String(length=16), nullable=False),
        sa.Column("risk_tier", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("emergency", sa.Boolean(), nullable=False),
        sa.Column("aliases", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.Column("checks", sa.Text(), nullable=False),
        sa.Column("approvals_required", sa.Text(), nullable=False),
        sa.Column("excluded", sa.Text(), nullable=False),
        sa.Column("freeze_window", sa.String(length=200), nullable=True),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["policy_version"],
            ["policy_versions.version"],
            name=op.f("fk_promotion_requests_policy_version_policy_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_requests")),
    )
    with op.batch_alter_table("promotion_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_promotion_requests_model_version_target_stage_status"),
            ["model", "version", "target_stage", "status"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_promotion_requests_status_created_at"),
            ["status", "created_at"],
            unique=False,
        )

    op.create_table(
        "promotion_approvals",
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("approver", sa.String(length=200), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["promotion_requests.id"],
            name=op.f("fk_promotion_approvals_request_id_promotion_requests"),
        ),
        sa.PrimaryKeyConstraint("request_id", "approver", name=op.f("pk_promotion_approvals")),
    )


def downgrade() -> None:
    op.drop_table("promotion_approvals")
    with op.batch_alter_table("promotion_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_promotion_requests_status_created_at"))
        batch_op.drop_index(batch_op.f("ix_promotion_requests_model_version_target_stage_status"))

    op.drop_table("promotion_requests")
    op.drop_table("policy_versions")
