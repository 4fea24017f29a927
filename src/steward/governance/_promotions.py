"""Promotion requests: automated checks with stored evidence, sign-offs, atomic execution.

``request`` evaluates the gate of the model's risk tier for the target stage
under the current policy and stores every check result. A request whose checks
fail ends there (``checks_failed``); one that passes waits for the approvals
its gate requires. When the last approval arrives the registry transition runs,
and the :class:`PromotionGate` installed in the registry lets it through only
because an approved request exists — marking the request executed in the same
transaction as the stage change and alias move. Transitions into staging or
production attempted any other way are refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from steward.core import (
    ConflictError,
    InvalidInputError,
    PermissionDeniedError,
    Principal,
    canonical_json,
    new_id,
)
from steward.governance._errors import PromotionFrozenError
from steward.governance._policy import FreezeWindow
from steward.governance._promotion_gate import (
    GrantedFor,
    PromotionGate,
    blocking_freeze,
    frozen_error,
)
from steward.governance._promotion_models import (
    PolicyVersion,
    PromotionPlan,
    PromotionRequest,
    request_row,
)
from steward.governance._promotion_plan import plan_promotion
from steward.governance._promotion_policies import apply_policy, current_policy, policy_history
from steward.governance._promotion_requests import (
    expire_requests,
    find_decision,
    open_request,
    query_requests,
    read_request,
    record_decision,
    update_request,
)
from steward.registry import RegistryService
from steward.store import Store, UnitOfWork

__all__ = [
    "PolicyVersion",
    "PromotionGate",
    "PromotionPlan",
    "PromotionRequest",
    "PromotionService",
]

RolesOf = Callable[[Principal, str], Iterable[str]]


class PromotionService:
    """Policies, promotion requests and approvals over one registry.

    The registry must have been built with ``gate=PromotionGate()`` for policies
    to be enforced on every stage move (the SDK client does this).
    """

    def __init__(
        self, store: Store, registry: RegistryService, *, roles_of: RolesOf | None = None
    ) -> None:
        self.store = store
        self.registry = registry
        self._roles_of: RolesOf = roles_of or (lambda principal, resource: principal.roles)

    # -- policies ----------------------------------------------------------------

    def apply_policy(self, source: str | Path, *, text: str | None = None) -> PolicyVersion:
        """Validate a policy file (or ``text``) and make it the policy in force.

        Applying a document identical in meaning to the current one changes nothing.

        Raises:
            PolicyError: the document is invalid (every problem, with line numbers);
                audited as ``policy.apply.refused``, nothing applied.
            PermissionDeniedError: the caller lacks ``admin``.
        """
        return apply_policy(self.store, source, text)

    def current_policy(self) -> PolicyVersion:
        """The policy in force; before any is applied, a built-in one with no gates (version 0)."""
        return current_policy(self.store)

    def policy_history(self) -> list[PolicyVersion]:
        """Every applied policy version, newest first."""
        return policy_history(self.store)

    # -- requests ----------------------------------------------------------------

    def plan(
        self,
        ref: str,
        to_stage: str,
        *,
        emergency: bool = False,
        data: Mapping[str, str | Path] | None = None,
    ) -> PromotionPlan:
        """Evaluate what a promotion would need, storing nothing (``--dry-run``)."""
        plan, _ = plan_promotion(
            self.store, self.registry, ref, to_stage, emergency=emergency, data=data
        )
        return plan

    def request(
        self,
        ref: str,
        to_stage: str,
        *,
        reason: str,
        emergency: bool = False,
        aliases: Sequence[str] = (),
        data: Mapping[str, str | Path] | None = None,
    ) -> PromotionRequest:
        """Open a promotion request: run the checks, store their evidence, wait for sign-offs.

        When the checks pass and the gate needs no approvals, the transition runs at once.

        Raises:
            InvalidInputError: no reason, or a target other than staging/production.
            ConflictError: an open request exists for the same move, or the version is
                archived.
            PromotionFrozenError: a freeze window is in force and the request is not
                emergency (audited as ``promotion.request.refused``).
            PermissionDeniedError: the caller lacks ``models:promote``.
        """
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidInputError("a promotion needs a reason (--reason)")
        plan, applied = plan_promotion(
            self.store, self.registry, ref, to_stage, emergency=emergency, data=data
        )
        if plan.freeze_window and not emergency:
            self._refuse_frozen(plan)
        version = self.registry.get_version(ref)
        request_id = new_id()
        with self.store.unit_of_work() as uow:
            expire_requests(uow)
            open_request(
                uow,
                request_id,
                version,
                plan,
                applied,
                reason=reason,
                emergency=emergency,
                aliases=aliases,
            )
        return self._advance(request_id)

    def _refuse_frozen(self, plan: PromotionPlan) -> None:
        """Refuse, audited, a request that is not an emergency during a freeze window."""
        to_stage = plan.target_stage
        error = PromotionFrozenError(
            f"promotion to {to_stage} is frozen ({plan.freeze_window}); "
            "an emergency request (--emergency) needs the extra emergency approvals"
        )
        with self.store.unit_of_work() as uow:  # the refusal stays in the record
            uow.audit(
                "promotion.request.refused",
                "model_version",
                plan.ref,
                {"to": to_stage, "freeze_window": plan.freeze_window, "error": str(error)},
            )
        raise error

    def approve(self, request_id: str, *, comment: str = "") -> PromotionRequest:
        """Sign off a pending request; when the gate is satisfied, the transition runs.

        Raises:
            NotFoundError: no such request.
            ConflictError: the request is not pending (decided, expired) or the caller
                already decided on it.
            PermissionDeniedError: separation of duties, or the caller holds none of the
                roles the request still needs.
            PromotionFrozenError: the approvals are complete but a freeze window stops
                the move; the approval is kept and the request stays pending.
        """
        return self._decide(request_id, "approve", comment)

    def reject(self, request_id: str, *, comment: str) -> PromotionRequest:
        """Reject a pending request (any holder of a required role may); it is closed."""
        if not comment.strip():
            raise InvalidInputError("a rejection needs a comment saying why (--comment)")
        return self._decide(request_id, "reject", comment)

    def _decide(self, request_id: str, decision: str, comment: str) -> PromotionRequest:
        current = self.get(request_id)
        self.store.authorize("models:read", resource=f"model:{current.model}")
        principal = self.store.principal
        roles = sorted(set(self._roles_of(principal, f"model:{current.model}")))
        with self.store.unit_of_work() as uow:  # expiry lands even if this decision fails
            expire_requests(uow)
        try:
            self._record_decision(request_id, decision, comment, principal, roles)
        except (PermissionDeniedError, ConflictError) as exc:
            with self.store.unit_of_work() as uow:  # the refusal stays in the record
                uow.audit(
                    f"promotion.{decision}.refused",
                    "promotion_request",
                    request_id,
                    {"roles": roles, "error": str(exc)[:500]},
                )
            raise
        return self._advance(request_id)

    def _record_decision(
        self, request_id: str, decision: str, comment: str, principal: Principal, roles: list[str]
    ) -> None:
        with self.store.unit_of_work() as uow:
            row = request_row(uow.conn, request_id)
            _check_decider(row, principal.name, roles)
            if find_decision(uow.conn, request_id, principal.name) is not None:
                raise ConflictError(f"{principal.name!r} already decided on request {request_id}")
            record_decision(uow, row, principal.name, roles, decision, comment)

    def _advance(self, request_id: str) -> PromotionRequest:
        """Execute a pending request whose approvals are complete."""
        current = self.get(request_id)
        if current.status != "pending" or not current.tally.satisfied:
            return current
        if self._check_freeze(current):
            return self._advance(request_id)  # escalated: tally again with the emergency rules
        with self.store.unit_of_work() as uow:
            claimed = update_request(uow.conn, request_id, when="pending", status="approved")
            if claimed:
                uow.audit(
                    "promotion.approved", "promotion_request", request_id, {"ref": current.ref}
                )
        if claimed:
            self._transition(current)
        return self.get(request_id)

    def _transition(self, current: PromotionRequest) -> None:
        """Run an approved request's stage move; if it fails, record why on the request.

        The move runs as the caller who completed the approvals; the approved
        request is what allows it, not the caller's own models:promote scope.
        """
        resource = f"model:{current.model}"
        store = self.store.with_authorizer(
            GrantedFor(self.store.authorizer, "models:promote", resource)
        )
        registry = RegistryService(
            store, self.registry.tracking, self.registry.settings, gate=self.registry.gate
        )
        try:
            registry.transition(
                current.ref,
                current.target_stage,
                reason=f"{current.reason} (request {current.id})",
                aliases=current.aliases,
            )
        except PromotionFrozenError as exc:
            # A freeze began between the check above and the move: back to pending.
            with self.store.unit_of_work() as uow:
                update_request(uow.conn, current.id, when="approved", status="pending")
                self._audit_frozen(uow, current, exc)
            raise
        except Exception as exc:
            with self.store.unit_of_work() as uow:
                update_request(
                    uow.conn,
                    current.id,
                    when="approved",
                    status="failed",
                    decided_at=uow.clock.now(),
                    outcome=str(exc)[:2000],
                )
                uow.audit(
                    "promotion.fail", "promotion_request", current.id, {"error": str(exc)[:500]}
                )
            raise

    def _check_freeze(self, current: PromotionRequest) -> bool:
        """Refuse, audited, a request that a freeze window stops now; escalate an emergency one.

        An emergency request opened before the freeze lacks the emergency approvals:
        they are added to it (and the freeze recorded), and ``True`` says to tally again.

        Raises:
            PromotionFrozenError: the request is not an emergency; it stays pending.
        """
        with self.store.database.read() as conn:
            window = blocking_freeze(
                conn,
                self.store.clock.now(),
                target_stage=current.target_stage,
                emergency=current.emergency,
                freeze_window=current.freeze_window,
            )
        if window is None:
            return False
        if not current.emergency:
            error = frozen_error(current.id, current.ref, current.target_stage, window)
            with self.store.unit_of_work() as uow:
                self._audit_frozen(uow, current, error)
            raise error
        self._escalate(current, window)
        return True

    def _escalate(self, current: PromotionRequest, window: FreezeWindow) -> None:
        """Add the policy's emergency approvals to a pending emergency request; audited."""
        extra = [r.model_dump() for r in self.current_policy().policy.emergency.approvals]
        rules = [*(r.model_dump() for r in current.approvals_required), *extra]
        with self.store.unit_of_work() as uow:
            update_request(
                uow.conn,
                current.id,
                when="pending",
                approvals_required=canonical_json(rules),
                freeze_window=window.describe(),
            )
            uow.audit(
                "promotion.escalate",
                "promotion_request",
                current.id,
                {"ref": current.ref, "freeze_window": window.describe(), "approvals_added": extra},
            )

    @staticmethod
    def _audit_frozen(uow: UnitOfWork, current: PromotionRequest, error: Exception) -> None:
        uow.audit(
            "promotion.execute.refused",
            "promotion_request",
            current.id,
            {"ref": current.ref, "to": current.target_stage, "error": str(error)[:500]},
        )

    def execute(self, request_id: str) -> PromotionRequest:
        """Run a pending request whose approvals are complete, e.g. one a freeze window held.

        Raises:
            NotFoundError: no such request.
            ConflictError: the request is not pending, or still misses approvals.
            PromotionFrozenError: a freeze window still stops it.
            PermissionDeniedError: the caller lacks ``models:promote`` on the model.
        """
        current = self.get(request_id)
        self.store.authorize("models:promote", resource=f"model:{current.model}")
        with self.store.unit_of_work() as uow:
            expire_requests(uow)
        current = self.get(request_id)
        if current.status != "pending":
            raise ConflictError(
                f"request {request_id} is {current.status}; only pending requests execute"
            )
        if not current.tally.satisfied:
            raise ConflictError(
                f"request {request_id} still needs {current.tally.describe_missing()}"
            )
        return self._advance(request_id)

    def get(self, request_id: str) -> PromotionRequest:
        """Return one request with its decisions.

        Raises:
            NotFoundError: no such request.
        """
        with self.store.database.read() as conn:
            return read_request(conn, request_id)

    def list_requests(
        self, *, status: str | None = None, model: str | None = None, limit: int = 100
    ) -> list[PromotionRequest]:
        """Requests, newest first, optionally filtered (``status="pending"`` for the inbox)."""
        with self.store.unit_of_work() as uow:
            expire_requests(uow)
        with self.store.database.read() as conn:
            return query_requests(conn, status=status, model=model, limit=limit)


def _check_decider(row: Any, name: str, roles: list[str]) -> None:
    """Refuse a decision on a request that is not pending, or by someone who may not decide.

    Raises:
        ConflictError: the request is not pending.
        PermissionDeniedError: separation of duties excludes ``name``, or ``roles``
            hold none of the roles the request needs.
    """
    if row.status != "pending":
        raise ConflictError(
            f"request {row.id} is {row.status}; only pending requests take decisions"
        )
    excluded = json.loads(row.excluded)
    if name in excluded:
        raise PermissionDeniedError(
            f"{name!r} may not decide on {row.model}:{row.version}: "
            f"{excluded[name]} (separation of duties)"
        )
    wanted = {r["role"] for r in json.loads(row.approvals_required)}
    if not wanted & set(roles):
        need = ", ".join(sorted(wanted)) or "none (this gate needs no approvals)"
        raise PermissionDeniedError(
            f"{name!r} holds none of the roles this request needs ({need}); "
            f"their roles: {', '.join(roles) or 'none'}"
        )
