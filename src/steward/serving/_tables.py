"""Tables of the serving context, declared on the shared store metadata.

- ``serving_bandit_arms``: the global totals of each bandit arm, shared by every
  gateway worker; workers add their deltas with atomic increments.
- ``serving_canaries``: one row per progressive canary (its plan and where it stands).
- ``serving_canary_decisions``: every analysis decision with its numbers, in order.
- ``serving_canary_windows``: each gateway worker's window of the current step
  (counts, latency sketch, prediction sample), merged by whichever worker decides.
"""

from __future__ import annotations

import sqlalchemy as sa

from steward.store import UTCDateTime, big_id, metadata

__all__ = ["bandit_arms", "canaries", "canary_decisions", "canary_windows"]

_ID = sa.String(32)

bandit_arms = sa.Table(
    "serving_bandit_arms",
    metadata,
    sa.Column("bandit", sa.String(200), primary_key=True),
    sa.Column("arm", sa.String(64), primary_key=True),
    sa.Column("pulls", sa.BigInteger(), nullable=False, default=0),
    sa.Column("trials", sa.BigInteger(), nullable=False, default=0),
    sa.Column("reward_sum", sa.Float(), nullable=False, default=0.0),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

canaries = sa.Table(
    "serving_canaries",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("deployment", sa.String(200), nullable=False),
    sa.Column("baseline", sa.String(64), nullable=False),
    sa.Column("canary", sa.String(64), nullable=False),
    sa.Column("plan", sa.Text(), nullable=False),  # canonical JSON of the CanaryPlan
    sa.Column("status", sa.String(16), nullable=False),  # running | complete | rolled_back
    sa.Column("step_index", sa.Integer(), nullable=False),
    sa.Column("share", sa.Float(), nullable=False),  # the canary's traffic share, percent
    sa.Column("step_started_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index(None, "deployment", "status"),
)

canary_decisions = sa.Table(
    "serving_canary_decisions",
    metadata,
    sa.Column("id", big_id(), primary_key=True, autoincrement=True),
    sa.Column("canary_id", _ID, sa.ForeignKey("serving_canaries.id"), nullable=False),
    sa.Column("decided_at", UTCDateTime(), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # promote_step | hold | rollback | complete
    sa.Column("step_index", sa.Integer(), nullable=False),  # the step analysed
    sa.Column("share", sa.Float(), nullable=False),  # the canary's share after the decision
    sa.Column("details", sa.Text(), nullable=False),  # canonical JSON: numbers, checks, reasons
    sa.Index(None, "canary_id", "id"),
)

canary_windows = sa.Table(
    "serving_canary_windows",
    metadata,
    sa.Column("canary_id", _ID, sa.ForeignKey("serving_canaries.id"), primary_key=True),
    sa.Column("step_index", sa.Integer(), primary_key=True),
    sa.Column("worker", sa.String(128), primary_key=True),
    sa.Column("requests", sa.BigInteger(), nullable=False),
    sa.Column("window", sa.Text(), nullable=False),  # JSON of WindowStats.to_dict()
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)
