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
from typing import Any, Literal

import sqlalchemy as sa

from steward.core import (
    ConflictError,
    InvalidInputError,
    PermissionDeniedError,
    Principal,
    canonical_json,
    new_id,
    sha256_hex,
)
from steward.governance._checks import run_checks
from steward.governance._errors import PromotionFrozenError
from steward.governance._evidence import RegistryEvidence
from steward.governance._policy_parser import PolicyError, parse_policy, read_policy
from steward.governance._promotion_gate import (
    GrantedFor,
    PromotionGate,
    blocking_freeze,
    frozen_error,
)
from steward.governance._promotion_models import (
    DEFAULT_POLICY,
    GATED_STAGES,
    OPEN,
    PolicyVersion,
    PromotionPlan,
    PromotionRequest,
    latest_policy,
    request_row,
    to_policy_version,
    to_request,
)
from steward.governance._promotion_tables import (
    policy_versions,
    promotion_approvals,
    promotion_requests,
)
from steward.registry import ModelRef, RegistryService
from steward.store import Store, UnitOfWork

__all__ = [
    "PolicyVersion",
    "PromotionGate",
    "PromotionPlan",
    "PromotionRequest",
    "PromotionService",
]

RolesOf = Callable[[Principal, str], Iterable[str]]
MAX_AUDITED_PROBLEMS = 20  # a refused policy's audit event lists at most this many problems


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
        self.store.authorize("admin", resource="policy")
        fmt: Literal["yaml", "toml"] = "toml" if str(source).endswith(".toml") else "yaml"
        try:
            if text is None:
                policy, text = read_policy(source)
            else:
                policy = parse_policy(text, fmt=fmt, source=str(source))
        except PolicyError as exc:
            self._refuse_policy(source, text, exc)
            raise
        with self.store.unit_of_work() as uow:
            current = latest_policy(uow.conn)
            if current is not None and current.digest == policy.digest:
                return current
            number = 1 if current is None else current.version + 1
            now = uow.clock.now()
            uow.conn.execute(
                policy_versions.insert(),
                {
                    "version": number,
                    "name": policy.policy,
                    "digest": policy.digest,
                    "document": text,
                    "format": fmt,
                    "created_by": uow.actor,
                    "created_at": now,
                },
            )
            uow.audit(
                "policy.apply",
                "policy",
                str(number),
                {
                    "name": policy.policy,
                    "digest": policy.digest,
                    "previous": current.version if current else None,
                },
            )
        return PolicyVersion(number, policy, policy.digest, text, self.store.actor, now)

    def _refuse_policy(self, source: str | Path, text: str | None, error: PolicyError) -> None:
        """Audit a refused policy: where from, its digest, and what was wrong (no text)."""
        with self.store.unit_of_work() as uow:
            uow.audit(
                "policy.apply.refused",
                "policy",
                str(source)[:200] or "<text>",
                {
                    "source": str(source)[:500],
                    "digest": sha256_hex(text) if text is not None else None,
                    "problems": [str(p)[:500] for p in error.problems[:MAX_AUDITED_PROBLEMS]],
                    "count": len(error.problems),
                },
            )

    def current_policy(self) -> PolicyVersion:
        """The policy in force; before any is applied, a built-in one with no gates (version 0)."""
        with self.store.database.read() as conn:
            found = latest_policy(conn)
        if found is not None:
            return found
        return PolicyVersion(0, DEFAULT_POLICY, DEFAULT_POLICY.digest, "", "steward", None)

    def policy_history(self) -> list[PolicyVersion]:
        """Every applied policy version, newest first."""
        with self.store.database.read() as conn:
            rows = conn.execute(
                sa.select(policy_versions).order_by(policy_versions.c.version.desc())
            ).all()
        return [to_policy_version(r) for r in rows]

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
        return self._plan(ref, to_stage, emergency=emergency, data=data)[0]

    def _plan(
        self, ref: str, to_stage: str, *, emergency: bool, data: Mapping[str, str | Path] | None
    ) -> tuple[PromotionPlan, PolicyVersion]:
        if to_stage not in GATED_STAGES:
            raise InvalidInputError(
                f"promotion targets staging or production, not {to_stage!r}; "
                "archive or demote with steward models"
            )
        parsed = ModelRef.parse(ref)
        self.store.authorize("models:promote", resource=f"model:{parsed.name}")
        version = self.registry.get_version(ref)
        model = self.registry.get_model(version.model)
        if not version.deployable:
            raise ConflictError(f"{version.ref} is archived and cannot be promoted")
        if version.stage.value == to_stage:
            raise ConflictError(f"{version.ref} is already in {to_stage}")
        applied = self.current_policy()
        policy = applied.policy
        tier = model.risk_tier.value if model.risk_tier is not None else policy.tiers[-1]
        if tier not in policy.tiers:
            raise ConflictError(
                f"model {model.name!r} has risk tier {tier!r}, which policy {policy.policy!r} "
                f"(version {applied.version}) does not define; "
                f"its tiers are {', '.join(policy.tiers)}"
            )
        gate = policy.gate(tier, to_stage)
        evidence = RegistryEvidence(self.registry, model, version, target_stage=to_stage, data=data)
        checks = tuple(run_checks(gate, evidence))
        now = self.store.clock.now()
        window = policy.freeze_at(now, to_stage)
        approvals = list(gate.approvals)
        if window is not None and emergency:
            approvals += policy.emergency.approvals
        excluded: dict[str, str] = {}
        if gate.separation_of_duties:
            excluded[version.created_by] = f"registered {version.ref}"
            if version.run_id is not None:
                author = self.registry.tracking.get_run(version.run_id).user
                excluded.setdefault(author, f"trained {version.ref} (run {version.run_id})")
        plan = PromotionPlan(
            ref=version.ref,
            target_stage=to_stage,
            risk_tier=tier
            if model.risk_tier is not None
            else f"{tier} (model has none: strictest)",
            policy_version=applied.version,
            checks=checks,
            approvals=tuple(approvals),
            excluded=excluded,
            freeze_window=window.describe() if window is not None else None,
            emergency=emergency,
        )
        return plan, applied

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
        plan, applied = self._plan(ref, to_stage, emergency=emergency, data=data)
        if plan.freeze_window and not emergency:
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
        version = self.registry.get_version(ref)
        passed = all(c.passed for c in plan.checks)
        request_id = new_id()
        with self.store.unit_of_work() as uow:
            self._expire(uow)
            clash = uow.conn.execute(
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
            now = uow.clock.now()
            uow.conn.execute(
                promotion_requests.insert(),
                {
                    "id": request_id,
                    "model": version.model,
                    "version": version.version,
                    "target_stage": to_stage,
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
                    "to": to_stage,
                    "reason": reason,
                    "emergency": emergency,
                    "aliases": list(aliases),
                    "policy_version": applied.version,
                    "policy_digest": applied.digest,
                    "checks": {c.description: c.passed for c in plan.checks},
                },
            )
        return self._advance(request_id)

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
            self._expire(uow)
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
            if row.status != "pending":
                raise ConflictError(
                    f"request {request_id} is {row.status}; only pending requests take decisions"
                )
            excluded = json.loads(row.excluded)
            if principal.name in excluded:
                raise PermissionDeniedError(
                    f"{principal.name!r} may not decide on {row.model}:{row.version}: "
                    f"{excluded[principal.name]} (separation of duties)"
                )
            wanted = {r["role"] for r in json.loads(row.approvals_required)}
            if not wanted & set(roles):
                need = ", ".join(sorted(wanted)) or "none (this gate needs no approvals)"
                raise PermissionDeniedError(
                    f"{principal.name!r} holds none of the roles this request needs ({need}); "
                    f"their roles: {', '.join(roles) or 'none'}"
                )
            already = uow.conn.execute(
                sa.select(promotion_approvals.c.decision).where(
                    promotion_approvals.c.request_id == request_id,
                    promotion_approvals.c.approver == principal.name,
                )
            ).first()
            if already is not None:
                raise ConflictError(f"{principal.name!r} already decided on request {request_id}")
            now = uow.clock.now()
            uow.conn.execute(
                promotion_approvals.insert(),
                {
                    "request_id": request_id,
                    "approver": principal.name,
                    "roles": canonical_json(roles),
                    "decision": decision,
                    "comment": comment,
                    "at": now,
                },
            )
            if decision == "reject":
                uow.conn.execute(
                    promotion_requests.update()
                    .where(promotion_requests.c.id == request_id)
                    .values(
                        status="rejected",
                        decided_at=now,
                        outcome=f"rejected by {principal.name}: {comment}",
                    )
                )
            uow.audit(
                f"promotion.{decision}",
                "promotion_request",
                request_id,
                {"ref": f"{row.model}:{row.version}", "roles": roles, "comment": comment},
            )

    def _advance(self, request_id: str) -> PromotionRequest:
        """Execute a pending request whose approvals are complete."""
        current = self.get(request_id)
        if current.status != "pending" or not current.tally.satisfied:
            return current
        if self._check_freeze(current):
            return self._advance(request_id)  # escalated: tally again with the emergency rules
        with self.store.unit_of_work() as uow:
            updated = uow.conn.execute(
                promotion_requests.update()
                .where(
                    promotion_requests.c.id == request_id, promotion_requests.c.status == "pending"
                )
                .values(status="approved")
            )
            if updated.rowcount == 0:
                return self.get(request_id)
            uow.audit("promotion.approved", "promotion_request", request_id, {"ref": current.ref})
        # The move runs as the caller who completed the approvals; the approved
        # request is what allows it, not the caller's own models:promote scope.
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
                reason=f"{current.reason} (request {request_id})",
                aliases=current.aliases,
            )
        except PromotionFrozenError as exc:
            # A freeze began between the check above and the move: back to pending.
            with self.store.unit_of_work() as uow:
                uow.conn.execute(
                    promotion_requests.update()
                    .where(
                        promotion_requests.c.id == request_id,
                        promotion_requests.c.status == "approved",
                    )
                    .values(status="pending")
                )
                self._audit_frozen(uow, current, exc)
            raise
        except Exception as exc:
            with self.store.unit_of_work() as uow:
                uow.conn.execute(
                    promotion_requests.update()
                    .where(
                        promotion_requests.c.id == request_id,
                        promotion_requests.c.status == "approved",
                    )
                    .values(status="failed", decided_at=uow.clock.now(), outcome=str(exc)[:2000])
                )
                uow.audit(
                    "promotion.fail", "promotion_request", request_id, {"error": str(exc)[:500]}
                )
            raise
        return self.get(request_id)

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
        extra = [r.model_dump() for r in self.current_policy().policy.emergency.approvals]
        rules = [*(r.model_dump() for r in current.approvals_required), *extra]
        with self.store.unit_of_work() as uow:
            uow.conn.execute(
                promotion_requests.update()
                .where(
                    promotion_requests.c.id == current.id,
                    promotion_requests.c.status == "pending",
                )
                .values(approvals_required=canonical_json(rules), freeze_window=window.describe())
            )
            uow.audit(
                "promotion.escalate",
                "promotion_request",
                current.id,
                {"ref": current.ref, "freeze_window": window.describe(), "approvals_added": extra},
            )
        return True

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
            self._expire(uow)
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
            row = request_row(conn, request_id)
            decisions = conn.execute(
                sa.select(promotion_approvals)
                .where(promotion_approvals.c.request_id == request_id)
                .order_by(promotion_approvals.c.at)
            ).all()
        return to_request(row, decisions)

    def list_requests(
        self, *, status: str | None = None, model: str | None = None, limit: int = 100
    ) -> list[PromotionRequest]:
        """Requests, newest first, optionally filtered (``status="pending"`` for the inbox)."""
        with self.store.unit_of_work() as uow:
            self._expire(uow)
        query = (
            sa.select(promotion_requests)
            .order_by(promotion_requests.c.created_at.desc())
            .limit(limit)
        )
        if status is not None:
            query = query.where(promotion_requests.c.status == status)
        if model is not None:
            query = query.where(promotion_requests.c.model == model)
        with self.store.database.read() as conn:
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

    def _expire(self, uow: UnitOfWork) -> None:
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
