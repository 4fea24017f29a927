"""Tables of the governance context, declared on the shared store metadata."""

from __future__ import annotations

import sqlalchemy as sa

from steward.store import UTCDateTime, metadata

__all__ = ["api_tokens", "principals", "role_bindings"]

_ID = sa.String(32)
_NAME = sa.String(200)

# Users and service accounts. Names are the identity everywhere else (audit actor,
# approvals, separation of duties), so they never change once created.
principals = sa.Table(
    "principals",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("name", _NAME, nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),  # user | service
    sa.Column("email", sa.String(320), nullable=True),
    sa.Column("description", sa.Text(), nullable=False, default=""),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", _NAME, nullable=False),
    sa.Column("disabled_at", UTCDateTime(), nullable=True),
    sa.Column("disabled_by", _NAME, nullable=True),
)

# A role given to a principal, everywhere (resource "*") or on one resource
# ("model:fraud", "team:risk", ...).
role_bindings = sa.Table(
    "role_bindings",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("principal_id", _ID, sa.ForeignKey("principals.id"), nullable=False),
    sa.Column("role", sa.String(100), nullable=False),
    sa.Column("resource", sa.String(250), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", _NAME, nullable=False),
    sa.UniqueConstraint("principal_id", "role", "resource"),
    sa.Index(None, "resource", "role"),
)

# Opaque tokens: only SHA-256 of "id:secret" is kept; the secret is shown once.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("principal_id", _ID, sa.ForeignKey("principals.id"), nullable=False),
    sa.Column("name", _NAME, nullable=False),
    sa.Column("scopes", sa.Text(), nullable=False),  # canonical JSON list
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", _NAME, nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    sa.Column("revoked_by", _NAME, nullable=True),
    sa.Column("last_used_at", UTCDateTime(), nullable=True),
    sa.Index(None, "principal_id"),
)
