"""Tables owned by the store context.

Every context declares its tables on the one :data:`metadata` so that a single
Alembic history covers the whole schema; migration scripts spell tables out in
full and never import the contexts.
"""

from __future__ import annotations

import sqlalchemy as sa

from steward.store._types import UTCDateTime, big_id

__all__ = ["audit_events", "metadata"]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# The audit chain.  ``seq`` is assigned by the appender (previous + 1) under the
# chain lock, never by the database, so a removed event leaves a visible gap.
audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("seq", big_id(), primary_key=True, autoincrement=False),
    sa.Column("event_id", sa.String(32), nullable=False, unique=True),
    sa.Column("ts", UTCDateTime(), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("object_type", sa.String(100), nullable=False),
    sa.Column("object_id", sa.String(200), nullable=False),
    sa.Column("details", sa.Text(), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index(None, "object_type", "object_id"),
    sa.Index(None, "actor"),
    sa.Index(None, "ts"),
)
