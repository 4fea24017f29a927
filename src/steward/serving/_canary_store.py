"""Canaries and their decisions on the metadata database, audited in the same transaction.

The functions that change state take a :class:`~steward.store.UnitOfWork`: the
row change and its audit event (with every number of the decision) commit
together or not at all.  The caller (the deployment service or the background
worker) checks the caller's scope with ``store.authorize`` before opening the
unit of work.  Reads take a plain connection.

Two workers may analyse the same canary at once; :func:`record_decision` only
applies a decision to the step it was made for, so the second one gets a
:class:`~steward.core.ConflictError` instead of skipping a step.

Gateway workers publish their window of the current step with
:func:`publish_window` (one row per worker, replaced at each publication);
:func:`merged_window` adds them up for whoever decides.  Windows are
statistics, not anyone's change: publishing is not audited.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from steward.core import ConflictError, InvalidInputError, NotFoundError, canonical_json, new_id
from steward.serving._canary import Decision
from steward.serving._canary_plan import CanaryPlan, CanaryState
from steward.serving._tables import canaries, canary_decisions, canary_windows
from steward.serving._windows import WindowStats
from steward.store import UnitOfWork

__all__ = [
    "CanaryRecord",
    "StoredDecision",
    "delete_windows",
    "find_latest_canary",
    "find_running_canary",
    "get_canary",
    "list_canary_decisions",
    "list_running_canaries",
    "merged_window",
    "publish_window",
    "record_decision",
    "start_canary",
]


@dataclass(frozen=True)
class CanaryRecord:
    """A stored canary: which deployment, which variants, its plan and where it stands."""

    id: str
    deployment: str
    baseline: str
    canary: str
    plan: CanaryPlan
    state: CanaryState
    created_by: str
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "id": self.id,
            "deployment": self.deployment,
            "baseline": self.baseline,
            "canary": self.canary,
            "plan": self.plan.to_dict(),
            "state": self.state.to_dict(),
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class StoredDecision:
    """One recorded decision; ``details`` is :meth:`Decision.to_dict` as stored."""

    id: int
    canary_id: str
    kind: str
    decided_at: datetime
    step_index: int
    share: float
    details: dict[str, Any]


def _check_name(value: str, what: str, limit: int) -> None:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise InvalidInputError(f"{what} must be 1-{limit} characters, got {value!r}")


def start_canary(
    uow: UnitOfWork,
    *,
    deployment: str,
    baseline: str,
    canary: str,
    plan: CanaryPlan,
) -> CanaryRecord:
    """Start a canary of ``canary`` against ``baseline`` on a deployment, at the plan's first step.

    Audited as ``canary.start`` with the plan.

    Raises:
        InvalidInputError: malformed names, or the same variant on both sides.
        ConflictError: the deployment already has a running canary.
    """
    _check_name(deployment, "deployment name", 200)
    _check_name(baseline, "baseline variant", 64)
    _check_name(canary, "canary variant", 64)
    if baseline == canary:
        raise InvalidInputError(f"the canary and the baseline are both {canary!r}; pick two")
    running = find_running_canary(uow.conn, deployment)
    if running is not None:
        raise ConflictError(
            f"deployment {deployment!r} already runs canary {running.id} ({running.canary!r} at "
            f"{running.state.share:g} %); let it finish or roll it back first"
        )
    now = uow.clock.now()
    state = CanaryState.start(plan, now)
    record = CanaryRecord(
        id=new_id(),
        deployment=deployment,
        baseline=baseline,
        canary=canary,
        plan=plan,
        state=state,
        created_by=uow.actor,
        created_at=now,
        updated_at=now,
    )
    uow.conn.execute(
        canaries.insert().values(
            id=record.id,
            deployment=deployment,
            baseline=baseline,
            canary=canary,
            plan=canonical_json(plan.to_dict()),
            status=state.status,
            step_index=state.step_index,
            share=state.share,
            step_started_at=state.step_started_at,
            created_by=uow.actor,
            created_at=now,
            updated_at=now,
        )
    )
    uow.audit(
        "canary.start",
        "canary",
        record.id,
        {
            "deployment": deployment,
            "baseline": baseline,
            "canary": canary,
            "plan": plan.to_dict(),
            "share": state.share,
        },
    )
    return record


def record_decision(
    uow: UnitOfWork, canary_id: str, decision: Decision, *, source: str | None = None
) -> CanaryRecord:
    """Store a decision and the canary's new state; audit it as ``canary.<kind>`` with its numbers.

    Args:
        uow: the unit of work.
        canary_id: the canary decided on.
        decision: the analysis's decision.
        source: where the windows came from (e.g. ``prediction log``), for the audit chain.

    Raises:
        NotFoundError: no canary has this id.
        ConflictError: the canary is no longer at the step the decision was made
            for (another worker decided first), or it is no longer running.
    """
    now = uow.clock.now()
    after = decision.state
    updated = uow.conn.execute(
        canaries.update()
        .where(
            canaries.c.id == canary_id,
            canaries.c.status == "running",
            canaries.c.step_index == decision.step_index,
        )
        .values(
            status=after.status,
            step_index=after.step_index,
            share=after.share,
            step_started_at=after.step_started_at,
            updated_at=now,
        )
    )
    if updated.rowcount != 1:
        current = get_canary(uow.conn, canary_id)
        raise ConflictError(
            f"canary {canary_id} is {current.state.status} at step {current.state.step_index} "
            f"({current.state.share:g} %), not running at step {decision.step_index} where this "
            "decision was made; analyse it again"
        )
    details = decision.to_dict()
    if source is not None:
        details["source"] = source
    uow.conn.execute(
        canary_decisions.insert().values(
            canary_id=canary_id,
            decided_at=decision.decided_at,
            kind=decision.kind,
            step_index=decision.step_index,
            share=after.share,
            details=canonical_json(details),
        )
    )
    record = get_canary(uow.conn, canary_id)
    uow.audit(
        f"canary.{decision.kind}",
        "canary",
        canary_id,
        {"deployment": record.deployment, "canary": record.canary, **details},
    )
    return record


def get_canary(conn: Connection, canary_id: str) -> CanaryRecord:
    """Return the canary with this id.

    Raises:
        NotFoundError: no canary has this id.
    """
    row = conn.execute(sa.select(canaries).where(canaries.c.id == canary_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"no canary has id {canary_id!r}")
    return _record(row)


def find_running_canary(conn: Connection, deployment: str) -> CanaryRecord | None:
    """Return the deployment's running canary, or None."""
    row = (
        conn.execute(
            sa.select(canaries)
            .where(canaries.c.deployment == deployment, canaries.c.status == "running")
            .order_by(canaries.c.created_at.desc())
        )
        .mappings()
        .first()
    )
    return None if row is None else _record(row)


def find_latest_canary(conn: Connection, deployment: str) -> CanaryRecord | None:
    """Return the deployment's newest canary, running or finished, or None."""
    row = (
        conn.execute(
            sa.select(canaries)
            .where(canaries.c.deployment == deployment)
            .order_by(canaries.c.created_at.desc(), canaries.c.id.desc())
        )
        .mappings()
        .first()
    )
    return None if row is None else _record(row)


def list_running_canaries(conn: Connection) -> list[CanaryRecord]:
    """Return every running canary, by deployment."""
    rows = conn.execute(
        sa.select(canaries).where(canaries.c.status == "running").order_by(canaries.c.deployment)
    ).mappings()
    return [_record(row) for row in rows]


def list_canary_decisions(conn: Connection, canary_id: str) -> list[StoredDecision]:
    """Return every decision about a canary, oldest first.

    Raises:
        NotFoundError: no canary has this id.
    """
    get_canary(conn, canary_id)
    rows = conn.execute(
        sa.select(canary_decisions)
        .where(canary_decisions.c.canary_id == canary_id)
        .order_by(canary_decisions.c.id)
    ).mappings()
    return [
        StoredDecision(
            id=row["id"],
            canary_id=row["canary_id"],
            kind=row["kind"],
            decided_at=row["decided_at"],
            step_index=row["step_index"],
            share=row["share"],
            details=json.loads(row["details"]),
        )
        for row in rows
    ]


def _record(row: Any) -> CanaryRecord:
    return CanaryRecord(
        id=row["id"],
        deployment=row["deployment"],
        baseline=row["baseline"],
        canary=row["canary"],
        plan=CanaryPlan.from_dict(json.loads(row["plan"])),
        state=CanaryState(
            step_index=row["step_index"],
            share=row["share"],
            step_started_at=row["step_started_at"],
            status=row["status"],
        ),
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def publish_window(
    conn: Connection,
    canary_id: str,
    step_index: int,
    worker: str,
    sides: Mapping[str, WindowStats],
    now: datetime,
) -> None:
    """Replace ``worker``'s windows of a canary step (cumulative since the step began).

    Args:
        conn: a connection in a write transaction.
        canary_id: the canary.
        step_index: the step the windows belong to.
        worker: the publishing worker's id; each worker writes only its own row,
            so concurrent publications never collide.
        sides: ``{"canary": window, "baseline": window}``.
        now: the time of publication.
    """
    key = (
        canary_windows.c.canary_id == canary_id,
        canary_windows.c.step_index == step_index,
        canary_windows.c.worker == worker,
    )
    data = {side: window.to_dict() for side, window in sides.items()}
    values = {
        "requests": sum(d["requests"] for d in data.values()),
        "window": json.dumps({"sides": data}),
        "updated_at": now,
    }
    if conn.execute(canary_windows.update().where(*key).values(**values)).rowcount == 0:
        conn.execute(
            canary_windows.insert().values(
                canary_id=canary_id, step_index=step_index, worker=worker, **values
            )
        )


def merged_window(
    conn: Connection, canary_id: str, step_index: int
) -> dict[str, tuple[WindowStats, int]]:
    """Return each variant's window of a step, summed over every worker that published one.

    Returns:
        ``{"canary": (window, workers), "baseline": (window, workers)}``; sides that no
        worker published are missing.
    """
    rows = conn.execute(
        sa.select(canary_windows.c.worker, canary_windows.c.window)
        .where(canary_windows.c.canary_id == canary_id, canary_windows.c.step_index == step_index)
        .order_by(canary_windows.c.worker)
    )
    merged: dict[str, tuple[WindowStats, int]] = {}
    for row in rows:
        for side, data in json.loads(row.window)["sides"].items():
            window = WindowStats.from_dict(data)
            if side in merged:
                total, workers = merged[side]
                total.merge(window)
                merged[side] = (total, workers + 1)
            else:
                merged[side] = (window, 1)
    return merged


def delete_windows(conn: Connection, canary_id: str) -> int:
    """Delete every published window of a canary; return how many rows went."""
    return conn.execute(
        canary_windows.delete().where(canary_windows.c.canary_id == canary_id)
    ).rowcount
