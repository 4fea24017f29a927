"""The registry's transition gate: gated stage moves happen only for an approved request.

Freeze windows are checked twice: when a request is opened and again when it is
about to execute, since approvals can arrive after a freeze has begun. A request
passes a freeze only if it is an emergency request that carries the policy's
emergency approvals, which it does once a freeze window is recorded on it
(opened during one, or escalated into one by :class:`PromotionService`).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from steward.core import Authorizer, PermissionDeniedError, Principal
from steward.governance._errors import PromotionFrozenError
from steward.governance._policy import FreezeWindow
from steward.governance._promotion_models import GATED_STAGES, latest_policy, latest_policy_number
from steward.governance._promotion_tables import promotion_requests
from steward.registry import TransitionRequest
from steward.store import UnitOfWork

__all__ = ["GrantedFor", "PromotionGate", "blocking_freeze", "frozen_error"]


class PromotionGate:
    """The registry's transition gate: staging and production only through an approved request.

    Until a first policy is applied nothing is required and stage moves are free
    (still audited by the registry); from then on every move into staging or
    production goes through :meth:`PromotionService.request`.
    """

    def check(self, request: TransitionRequest, uow: UnitOfWork) -> None:
        """Allow a gated move only for an approved request, which is marked executed."""
        target = request.to_stage.value
        if target not in GATED_STAGES:
            return
        if latest_policy_number(uow.conn) is None:
            return  # no policy applied yet: nothing is required, moves are free (and audited)
        now = uow.clock.now()
        row = uow.conn.execute(
            sa.select(
                promotion_requests.c.id,
                promotion_requests.c.emergency,
                promotion_requests.c.freeze_window,
            )
            .where(
                promotion_requests.c.model == request.version.model,
                promotion_requests.c.version == request.version.version,
                promotion_requests.c.target_stage == target,
                promotion_requests.c.status == "approved",
                promotion_requests.c.expires_at > now,
            )
            .limit(1)
        ).first()
        if row is None:
            raise PermissionDeniedError(
                f"moving {request.version.ref} to {target} needs an approved promotion request; "
                f"open one with: steward promote {request.version.ref} --to {target} --reason ..."
            )
        window = blocking_freeze(
            uow.conn,
            now,
            target_stage=target,
            emergency=bool(row.emergency),
            freeze_window=row.freeze_window,
        )
        if window is not None:
            raise frozen_error(row.id, request.version.ref, target, window)
        uow.conn.execute(
            promotion_requests.update()
            .where(promotion_requests.c.id == row.id)
            .values(status="executed", decided_at=now, outcome="executed")
        )
        uow.audit(
            "promotion.execute",
            "promotion_request",
            row.id,
            {"ref": request.version.ref, "to": target},
        )


def blocking_freeze(
    conn: Connection,
    now: datetime,
    *,
    target_stage: str,
    emergency: bool,
    freeze_window: str | None,
) -> FreezeWindow | None:
    """Return the freeze window of the policy in force that stops this request now, if any.

    An emergency request with a recorded freeze window carries the emergency
    approvals, so no window stops it.
    """
    current = latest_policy(conn)
    if current is None:
        return None
    window = current.policy.freeze_at(now, target_stage)
    if window is None or (emergency and freeze_window is not None):
        return None
    return window


def frozen_error(
    request_id: str, ref: str, stage: str, window: FreezeWindow
) -> PromotionFrozenError:
    """The refusal of a request that a freeze window stops from executing."""
    return PromotionFrozenError(
        f"request {request_id} to move {ref} to {stage} is not executed: promotion to {stage} "
        f"is frozen ({window.describe()}); it stays pending, so run "
        f"`steward approvals execute {request_id}` after the freeze, or reject it and open "
        "an emergency request (--emergency) with the extra emergency approvals"
    )


class GrantedFor:
    """An authorizer that also grants one scope on one resource (an approved request's move)."""

    def __init__(self, base: Authorizer, scope: str, resource: str) -> None:
        self.base, self.scope, self.resource = base, scope, resource

    def check(self, principal: Principal, scope: str, *, resource: str | None = None) -> None:
        if scope == self.scope and resource == self.resource:
            return
        self.base.check(principal, scope, resource=resource)
