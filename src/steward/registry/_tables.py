"""Tables of the registry context, declared on the shared store metadata.

Every mutation of a model takes its ``registered_models`` row first (an UPDATE
of ``updated_at``), so versions are numbered, aliases moved and stages changed
one at a time per model on every backend.
"""

from __future__ import annotations

import sqlalchemy as sa

from steward.store import UTCDateTime, big_id, metadata

__all__ = [
    "model_aliases",
    "model_cards",
    "model_compilations",
    "model_transitions",
    "model_versions",
    "registered_models",
]

_ID = sa.String(32)
_ACTOR = sa.String(200)

registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("owners", sa.Text(), nullable=False),  # canonical JSON list
    sa.Column("team", sa.String(200), nullable=True),
    sa.Column("tags", sa.Text(), nullable=False),  # canonical JSON
    sa.Column("risk_tier", sa.String(16), nullable=True),
    sa.Column("intended_use", sa.Text(), nullable=False),
    sa.Column("decision_mode", sa.String(32), nullable=False),
    sa.Column("latest_version", sa.Integer(), nullable=False),
    sa.Column("created_by", _ACTOR, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("model_id", _ID, sa.ForeignKey("registered_models.id"), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("run_id", _ID, sa.ForeignKey("runs.id"), nullable=True),
    sa.Column("source", sa.Text(), nullable=False),  # canonical JSON: kind, external ids
    sa.Column("flavor", sa.String(32), nullable=False),
    sa.Column("artifact_digest", sa.String(64), nullable=False),  # the manifest's digest
    sa.Column("artifact_size", sa.BigInteger(), nullable=False),
    sa.Column("example_digest", sa.String(64), nullable=True),  # input example (Parquet)
    sa.Column("signature", sa.Text(), nullable=True),  # canonical JSON
    sa.Column("metrics", sa.Text(), nullable=False),  # canonical JSON snapshot of the run
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("tags", sa.Text(), nullable=False),
    sa.Column("unsafe", sa.Boolean(), nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("stage_reason", sa.Text(), nullable=True),
    sa.Column("successor_version", sa.Integer(), nullable=True),
    sa.Column("created_by", _ACTOR, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("stage_changed_at", UTCDateTime(), nullable=False),
    # Set when retention deleted the version's artifact bytes; the row stays as the record.
    sa.Column("purged_at", UTCDateTime(), nullable=True),
    sa.Column("purged_by_rule", sa.Text(), nullable=True),
    sa.UniqueConstraint("model_id", "version"),
    sa.Index(None, "run_id"),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("model_id", _ID, sa.ForeignKey("registered_models.id"), primary_key=True),
    sa.Column("alias", sa.String(100), primary_key=True),
    sa.Column("version_id", _ID, sa.ForeignKey("model_versions.id"), nullable=False),
    sa.Column("updated_by", _ACTOR, nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index(None, "version_id"),
)

# One row per version and target; compiling again replaces it (the audit chain keeps history).
model_compilations = sa.Table(
    "model_compilations",
    metadata,
    sa.Column("version_id", _ID, sa.ForeignKey("model_versions.id"), primary_key=True),
    sa.Column("target", sa.String(16), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # verified | failed
    sa.Column("artifact_digest", sa.String(64), nullable=True),
    sa.Column("report", sa.Text(), nullable=False),  # canonical JSON parity report
    sa.Column("converter", sa.String(100), nullable=False),
    sa.Column("opset", sa.Integer(), nullable=True),
    sa.Column("created_by", _ACTOR, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

model_transitions = sa.Table(
    "model_transitions",
    metadata,
    sa.Column("id", big_id(), primary_key=True, autoincrement=True),
    sa.Column("version_id", _ID, sa.ForeignKey("model_versions.id"), nullable=False),
    sa.Column("from_stage", sa.String(16), nullable=False),
    sa.Column("to_stage", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("actor", _ACTOR, nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("details", sa.Text(), nullable=False),  # canonical JSON
    sa.Index(None, "version_id"),
)

# Each edit of a card is a new revision; the latest one is the card.
model_cards = sa.Table(
    "model_cards",
    metadata,
    sa.Column("version_id", _ID, sa.ForeignKey("model_versions.id"), primary_key=True),
    sa.Column("revision", sa.Integer(), primary_key=True),
    sa.Column("content", sa.Text(), nullable=False),  # canonical JSON
    sa.Column("created_by", _ACTOR, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)
