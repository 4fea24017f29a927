"""Planning a promotion: the gate a version meets under the policy in force, stored nowhere.

The plan holds the results of the gate's checks against the version's evidence,
the approvals it needs (with the emergency ones during a freeze), and who may
not approve it under separation of duties.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from steward.core import ConflictError, InvalidInputError
from steward.governance._checks import run_checks
from steward.governance._evidence import RegistryEvidence
from steward.governance._policy import Gate
from steward.governance._promotion_models import GATED_STAGES, PolicyVersion, PromotionPlan
from steward.governance._promotion_policies import current_policy
from steward.registry import ModelRef, ModelVersion, RegisteredModel, RegistryService
from steward.store import Store

__all__ = ["plan_promotion"]


def plan_promotion(
    store: Store,
    registry: RegistryService,
    ref: str,
    to_stage: str,
    *,
    emergency: bool,
    data: Mapping[str, str | Path] | None,
) -> tuple[PromotionPlan, PolicyVersion]:
    """Evaluate what moving ``ref`` into ``to_stage`` needs; return it with the policy used.

    Raises:
        InvalidInputError: a target other than staging or production.
        ConflictError: the version is archived or already there, or the model's
            risk tier is not one of the policy's.
        PermissionDeniedError: the caller lacks ``models:promote``.
    """
    if to_stage not in GATED_STAGES:
        raise InvalidInputError(
            f"promotion targets staging or production, not {to_stage!r}; "
            "archive or demote with steward models"
        )
    parsed = ModelRef.parse(ref)
    store.authorize("models:promote", resource=f"model:{parsed.name}")
    version = registry.get_version(ref)
    model = registry.get_model(version.model)
    if not version.deployable:
        raise ConflictError(f"{version.ref} is archived and cannot be promoted")
    if version.stage.value == to_stage:
        raise ConflictError(f"{version.ref} is already in {to_stage}")
    applied = current_policy(store)
    policy = applied.policy
    tier = _risk_tier(model, applied)
    gate = policy.gate(tier, to_stage)
    evidence = RegistryEvidence(registry, model, version, target_stage=to_stage, data=data)
    checks = tuple(run_checks(gate, evidence))
    window = policy.freeze_at(store.clock.now(), to_stage)
    approvals = list(gate.approvals)
    if window is not None and emergency:
        approvals += policy.emergency.approvals
    plan = PromotionPlan(
        ref=version.ref,
        target_stage=to_stage,
        risk_tier=tier if model.risk_tier is not None else f"{tier} (model has none: strictest)",
        policy_version=applied.version,
        checks=checks,
        approvals=tuple(approvals),
        excluded=_excluded(registry, version, gate),
        freeze_window=window.describe() if window is not None else None,
        emergency=emergency,
    )
    return plan, applied


def _risk_tier(model: RegisteredModel, applied: PolicyVersion) -> str:
    """The model's tier, or the policy's strictest (its last) for a model without one."""
    policy = applied.policy
    tier = model.risk_tier.value if model.risk_tier is not None else policy.tiers[-1]
    if tier not in policy.tiers:
        raise ConflictError(
            f"model {model.name!r} has risk tier {tier!r}, which policy {policy.policy!r} "
            f"(version {applied.version}) does not define; "
            f"its tiers are {', '.join(policy.tiers)}"
        )
    return tier


def _excluded(registry: RegistryService, version: ModelVersion, gate: Gate) -> dict[str, str]:
    """Who may not approve under separation of duties, and why: registrant, run author."""
    excluded: dict[str, str] = {}
    if gate.separation_of_duties:
        excluded[version.created_by] = f"registered {version.ref}"
        if version.run_id is not None:
            author = registry.tracking.get_run(version.run_id).user
            excluded.setdefault(author, f"trained {version.ref} (run {version.run_id})")
    return excluded
