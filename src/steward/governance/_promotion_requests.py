"""Promotion request rows: opening one, its decisions, its status moves, reading them back.

Writes take the caller's unit of work, so that a request's row, its decisions
and their audit events commit together; the rules of who may decide and when a
request executes are :class:`PromotionService`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from steward.core import ConflictError, canonical_json
from steward.governance._promotion_models import (
    OPEN,
    PolicyVersion,
    PromotionPlan,
    PromotionRequest,
    request_row,
    to_request,
)
from steward.governance._promotion_tables import promotion_approvals, promotion_requests
from steward.registry import ModelVersion
from steward.store import UnitOfWork

__all__ = [
    "expire_requests",
    "find_decision",
    "open_request",
    "query_requests",
    "read_request",
    "record_decision",
    "update_request",
]


def open_request(
    uow: UnitOfWork,
    request_id: str,
    version: ModelVersion,
    plan: PromotionPlan,
    applied: PolicyVersion,
    *,
    reason: str,
    emergency: bool,
    aliases: Sequence[str],
) -> None:
    """Store a request for ``plan``: pending, or closed as ``checks_failed``; audited.

    Raises:
        ConflictError: an open request exists for the same version and stage.
    """
    _refuse_clash(uow.conn, version, plan.target_stage)
    passed = all(c.passed for c in plan.checks)
    now = uow.clock.now()
    uow.conn.execute(
        promotion_requests.insert(),
        {
            "id": request_id,
            "model": version.model,
            "version": version.version,
            "target_stage": plan.target_stage,
            "risk_tier": plan.risk_tier.split(" ")[0],
            "reason": reason,
            "emergency": emergency,
            "aliases": canonical_json(list(aliases)),
            "status": "pending" if passed else "checks_failed",
            "policy_version": applied.version or None,
            "checks": canonical_json([c.to_dict() for c in plan.checks]),
            "approvals_required": canonical_json([r.model_dump() for r in plan.approvals]),
            "excluded": canonical_json(dict(plan.excluded)),
            "freeze_window": plan.freeze_window,
            "requested_by": uow.actor,
            "created_at": now,
            "expires_at": now + applied.policy.request_ttl,
            "decided_at": None if passed else now,
            "outcome": None if passed else "; ".join(plan.blocked_by),
        },
    )
    uow.audit(
        "promotion.request",
        "promotion_request",
        request_id,
        {
            "ref": version.ref,
            "to": plan.target_stage,
            "reason": reason,
            "emergency": emergency,
            "aliases": list(aliases),
            "policy_version": applied.version,
            "policy_digest": applied.digest,
            "checks": {c.description: c.passed for c in plan.checks},
        },
    )


def _refuse_clash(conn: Connection, version: ModelVersion, to_stage: str) -> None:
    clash = conn.execute(
        sa.select(promotion_requests.c.id).where(
            promotion_requests.c.model == version.model,
            promotion_requests.c.version == version.version,
            promotion_requests.c.target_stage == to_stage,
            promotion_requests.c.status.in_(OPEN),
        )
    ).first()
    if clash is not None:
        raise ConflictError(
            f"request {clash.id} to move {version.ref} to {to_stage} is already open; "
            "approve, reject or let it expire"
        )


def find_decision(conn: Connection, request_id: str, approver: str) -> str | None:
    """The decision ``approver`` already made on the request, if any."""
    found = conn.execute(
        sa.select(promotion_approvals.c.decision).where(
            promotion_approvals.c.request_id == request_id,
            promotion_approvals.c.approver == approver,
        )
    ).first()
    return None if found is None else str(found.decision)


def record_decision(
    uow: UnitOfWork, row: Any, approver: str, roles: list[str], decision: str, comment: str
) -> None:
    """Store one approver's decision on the request ``row``; a rejection closes it. Audited."""
    now = uow.clock.now()
    uow.conn.execute(
        promotion_approvals.insert(),
        {
            "request_id": row.id,
            "approver": approver,
            "roles": canonical_json(roles),
            "decision": decision,
            "comment": comment,
            "at": now,
        },
    )
    if decision == "reject":
        update_request(
            uow.conn,
            row.id,
            status="rejected",
            decided_at=now,
            outcome=f"rejected by {approver}: {comment}",
        )
    uow.audit(
        f"promotion.{decision}",
        "promotion_request",
        row.id,
        {"ref": f"{row.model}:{row.version}", "roles": roles, "comment": comment},
    )


def update_request(
    conn: Connection, request_id: str, *, when: str | None = None, **values: Any
) -> int:
    """Set ``values`` on the request (only while its status is ``when``); return rows changed."""
    query = promotion_requests.update().where(promotion_requests.c.id == request_id)
    if when is not None:
        query = query.where(promotion_requests.c.status == when)
    return conn.execute(query.values(**values)).rowcount


def expire_requests(uow: UnitOfWork) -> None:
    """Close, audited, every open request past its expiry."""
    now = uow.clock.now()
    stale = list(
        uow.conn.execute(
            sa.select(promotion_requests.c.id).where(
                promotion_requests.c.status.in_(OPEN), promotion_requests.c.expires_at <= now
            )
        ).scalars()
    )
    if not stale:
        return
    uow.conn.execute(
        promotion_requests.update()
        .where(promotion_requests.c.id.in_(stale))
        .values(status="expired", decided_at=now, outcome="expired before every gate passed")
    )
    for request_id in stale:
        uow.audit("promotion.expire", "promotion_request", request_id)


def read_request(conn: Connection, request_id: str) -> PromotionRequest:
    """One request with its decisions.

    Raises:
        NotFoundError: no such request.
    """
    row = request_row(conn, request_id)
    decisions = conn.execute(
        sa.select(promotion_approvals)
        .where(promotion_approvals.c.request_id == request_id)
        .order_by(promotion_approvals.c.at)
    ).all()
    return to_request(row, decisions)


def query_requests(
    conn: Connection, *, status: str | None, model: str | None, limit: int
) -> list[PromotionRequest]:
    """Requests, newest first, with their decisions, optionally filtered."""
    query = (
        sa.select(promotion_requests).order_by(promotion_requests.c.created_at.desc()).limit(limit)
    )
    if status is not None:
        query = query.where(promotion_requests.c.status == status)
    if model is not None:
        query = query.where(promotion_requests.c.model == model)
    rows = conn.execute(query).all()
    ids = [r.id for r in rows]
    decisions = (
        conn.execute(
            sa.select(promotion_approvals)
            .where(promotion_approvals.c.request_id.in_(ids))
            .order_by(promotion_approvals.c.at)
        ).all()
        if ids
        else []
    )
    by_request: dict[str, list[Any]] = {}
    for decision in decisions:
        by_request.setdefault(decision.request_id, []).append(decision)
    return [to_request(r, by_request.get(r.id, [])) for r in rows]
