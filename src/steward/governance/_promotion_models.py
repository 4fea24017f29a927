"""Promotion records: applied policy versions, dry-run plans, stored requests, and their rows."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from steward.core import NotFoundError
from steward.governance._approvals import ApprovalTally, tally_approvals
from steward.governance._checks import CheckResult
from steward.governance._policy import ApprovalRule, Policy
from steward.governance._policy_parser import parse_policy
from steward.governance._promotion_tables import policy_versions, promotion_requests

__all__ = [
    "DEFAULT_POLICY",
    "GATED_STAGES",
    "OPEN",
    "PolicyVersion",
    "PromotionPlan",
    "PromotionRequest",
    "latest_policy",
    "latest_policy_number",
    "request_row",
    "to_policy_version",
    "to_request",
]

GATED_STAGES = ("staging", "production")
OPEN = ("pending", "approved")
DEFAULT_POLICY = Policy(policy="default (no gates)")


@dataclass(frozen=True)
class PolicyVersion:
    """A policy as applied: its number, digest and document."""

    version: int
    policy: Policy
    digest: str
    document: str
    created_by: str
    created_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view (without the document)."""
        return {
            "version": self.version,
            "name": self.policy.policy,
            "digest": self.digest,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


@dataclass(frozen=True)
class PromotionPlan:
    """What a request would meet, without storing anything (``--dry-run``)."""

    ref: str
    target_stage: str
    risk_tier: str
    policy_version: int
    checks: tuple[CheckResult, ...]
    approvals: tuple[ApprovalRule, ...]
    excluded: Mapping[str, str]
    freeze_window: str | None
    emergency: bool

    @property
    def failed_checks(self) -> list[CheckResult]:
        """Checks that did not pass."""
        return [c for c in self.checks if not c.passed]

    @property
    def blocked_by(self) -> list[str]:
        """Why the promotion cannot happen now, one line per reason (empty: only sign-offs)."""
        reasons = [f"check failed: {c.description} — {c.detail}" for c in self.failed_checks]
        if self.freeze_window and not self.emergency:
            reasons.append(f"freeze window {self.freeze_window}: only emergency requests pass")
        return reasons

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return {
            "ref": self.ref,
            "target_stage": self.target_stage,
            "risk_tier": self.risk_tier,
            "policy_version": self.policy_version,
            "checks": [c.to_dict() for c in self.checks],
            "approvals_required": [r.model_dump() for r in self.approvals],
            "excluded_approvers": dict(self.excluded),
            "freeze_window": self.freeze_window,
            "emergency": self.emergency,
            "blocked_by": self.blocked_by,
        }


@dataclass(frozen=True)
class PromotionRequest:
    """A stored request, its evidence, its sign-offs and where it stands."""

    id: str
    model: str
    version: int
    target_stage: str
    risk_tier: str
    reason: str
    emergency: bool
    status: str
    policy_version: int | None
    checks: tuple[dict[str, Any], ...]
    approvals_required: tuple[ApprovalRule, ...]
    excluded: Mapping[str, str]
    decisions: tuple[dict[str, Any], ...]
    tally: ApprovalTally
    freeze_window: str | None
    requested_by: str
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    outcome: str | None = None
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """``NAME:VERSION``."""
        return f"{self.model}:{self.version}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return {
            "id": self.id,
            "ref": self.ref,
            "target_stage": self.target_stage,
            "risk_tier": self.risk_tier,
            "reason": self.reason,
            "emergency": self.emergency,
            "aliases": list(self.aliases),
            "status": self.status,
            "policy_version": self.policy_version,
            "checks": list(self.checks),
            "approvals_required": [r.model_dump() for r in self.approvals_required],
            "approvals_missing": dict(self.tally.missing),
            "excluded_approvers": dict(self.excluded),
            "decisions": list(self.decisions),
            "freeze_window": self.freeze_window,
            "requested_by": self.requested_by,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "outcome": self.outcome,
        }


def latest_policy_number(conn: Connection) -> int | None:
    number = conn.execute(sa.select(sa.func.max(policy_versions.c.version))).scalar()
    return None if number is None else int(number)


def latest_policy(conn: Connection) -> PolicyVersion | None:
    row = conn.execute(
        sa.select(policy_versions).order_by(policy_versions.c.version.desc()).limit(1)
    ).first()
    return None if row is None else to_policy_version(row)


def to_policy_version(row: Any) -> PolicyVersion:
    policy = parse_policy(row.document, fmt=row.format, source=f"policy version {row.version}")
    return PolicyVersion(
        row.version, policy, row.digest, row.document, row.created_by, row.created_at
    )


def request_row(conn: Connection, request_id: str) -> Any:
    row = conn.execute(
        sa.select(promotion_requests).where(promotion_requests.c.id == request_id)
    ).first()
    if row is None:
        recent = conn.execute(
            sa.select(
                promotion_requests.c.id, promotion_requests.c.model, promotion_requests.c.version
            )
            .where(promotion_requests.c.status == "pending")
            .order_by(promotion_requests.c.created_at.desc())
            .limit(5)
        ).all()
        listing = ", ".join(f"{r.id} ({r.model}:{r.version})" for r in recent) or "none"
        raise NotFoundError(f"promotion request {request_id!r} does not exist; pending: {listing}")
    return row


def to_request(row: Any, decisions: Iterable[Any]) -> PromotionRequest:
    rules = tuple(ApprovalRule.model_validate(r) for r in json.loads(row.approvals_required))
    excluded = json.loads(row.excluded)
    made = [
        {
            "approver": d.approver,
            "roles": json.loads(d.roles),
            "decision": d.decision,
            "comment": d.comment,
            "at": d.at.isoformat(),
        }
        for d in decisions
    ]
    approvers = {d["approver"]: d["roles"] for d in made if d["decision"] == "approve"}
    return PromotionRequest(
        id=row.id,
        model=row.model,
        version=row.version,
        target_stage=row.target_stage,
        risk_tier=row.risk_tier,
        reason=row.reason,
        emergency=bool(row.emergency),
        status=row.status,
        policy_version=row.policy_version,
        checks=tuple(json.loads(row.checks)),
        approvals_required=rules,
        excluded=excluded,
        decisions=tuple(made),
        tally=tally_approvals(rules, approvers, excluded=excluded),
        freeze_window=row.freeze_window,
        requested_by=row.requested_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        decided_at=row.decided_at,
        outcome=row.outcome,
        aliases=tuple(json.loads(row.aliases)),
    )
