"""The table of legal holds: what is held, over which time range, by whom and until when."""

from __future__ import annotations

import sqlalchemy as sa

from steward.store import UTCDateTime, metadata

__all__ = ["legal_holds"]

_NAME = sa.String(200)

# A hold is never deleted: releasing it fills the release columns, so the record of
# what was held, and for how long, stays.
legal_holds = sa.Table(
    "legal_holds",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "kind", sa.String(16), nullable=False
    ),  # model | version | runs | predictions | subject
    sa.Column("target", _NAME, nullable=True),  # NAME, NAME:V, deployment or subject id
    sa.Column("start_at", UTCDateTime(), nullable=True),
    sa.Column("end_at", UTCDateTime(), nullable=True),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("placed_by", _NAME, nullable=False),
    sa.Column("placed_at", UTCDateTime(), nullable=False),
    sa.Column("released_by", _NAME, nullable=True),
    sa.Column("released_at", UTCDateTime(), nullable=True),
    sa.Column("release_reason", sa.Text(), nullable=True),
    sa.Index(None, "released_at", "kind"),
)
