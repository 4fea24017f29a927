"""Tables of policies as applied and of promotion requests with their evidence and sign-offs."""

from __future__ import annotations

import sqlalchemy as sa

from steward.store import UTCDateTime, metadata

__all__ = ["policy_versions", "promotion_approvals", "promotion_requests"]

_ID = sa.String(32)
_NAME = sa.String(200)

# Every policy document steward has enforced, numbered; decisions point at one.
policy_versions = sa.Table(
    "policy_versions",
    metadata,
    sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("name", _NAME, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("document", sa.Text(), nullable=False),  # the text as written
    sa.Column("format", sa.String(8), nullable=False),  # yaml | toml
    sa.Column("created_by", _NAME, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

promotion_requests = sa.Table(
    "promotion_requests",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("model", _NAME, nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("target_stage", sa.String(16), nullable=False),
    sa.Column("risk_tier", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("emergency", sa.Boolean(), nullable=False, default=False),
    sa.Column("aliases", sa.Text(), nullable=False),  # canonical JSON: aliases moved on execution
    # pending | approved | executed | rejected | checks_failed | expired | failed | withdrawn
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column(
        "policy_version", sa.Integer(), sa.ForeignKey("policy_versions.version"), nullable=True
    ),
    sa.Column("checks", sa.Text(), nullable=False),  # canonical JSON: list of check results
    sa.Column("approvals_required", sa.Text(), nullable=False),  # canonical JSON rules
    sa.Column("excluded", sa.Text(), nullable=False),  # canonical JSON: name -> why
    sa.Column("freeze_window", sa.String(200), nullable=True),
    sa.Column("requested_by", _NAME, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("decided_at", UTCDateTime(), nullable=True),
    sa.Column("outcome", sa.Text(), nullable=True),
    sa.Index(None, "model", "version", "target_stage", "status"),
    sa.Index(None, "status", "created_at"),
)

promotion_approvals = sa.Table(
    "promotion_approvals",
    metadata,
    sa.Column("request_id", _ID, sa.ForeignKey("promotion_requests.id"), primary_key=True),
    sa.Column("approver", _NAME, primary_key=True),
    sa.Column("roles", sa.Text(), nullable=False),  # canonical JSON: roles held when deciding
    sa.Column("decision", sa.String(8), nullable=False),  # approve | reject
    sa.Column("comment", sa.Text(), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
)
