"""The registry's transition gate: gated stage moves happen only for an approved request."""

from __future__ import annotations

import sqlalchemy as sa

from steward.core import Authorizer, PermissionDeniedError, Principal
from steward.governance._promotion_models import GATED_STAGES, latest_policy_number
from steward.governance._promotion_tables import promotion_requests
from steward.registry import TransitionRequest
from steward.store import UnitOfWork

__all__ = ["GrantedFor", "PromotionGate"]


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
            sa.select(promotion_requests.c.id)
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


class GrantedFor:
    """An authorizer that also grants one scope on one resource (an approved request's move)."""

    def __init__(self, base: Authorizer, scope: str, resource: str) -> None:
        self.base, self.scope, self.resource = base, scope, resource

    def check(self, principal: Principal, scope: str, *, resource: str | None = None) -> None:
        if scope == self.scope and resource == self.resource:
            return
        self.base.check(principal, scope, resource=resource)
