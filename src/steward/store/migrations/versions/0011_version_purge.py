"""registry: retention may delete an archived version's artifact bytes and keep its record

Revision ID: 0011_version_purge
Revises: 0010_canary_windows
Create Date: 2026-12-07 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from steward.store._types import UTCDateTime

revision = "0011_version_purge"
down_revision = "0010_canary_windows"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("purged_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("purged_by_rule", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("purged_by_rule")
        batch.drop_column("purged_at")
