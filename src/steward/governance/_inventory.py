"""The model inventory: one row per model, the register model-risk teams keep for regulators.

Each row carries the owners, team and risk tier, how many versions sit in each
stage, the production version, the date of the last validation (the newest
promotion request: every request runs the policy's checks and stores them), the
open requests, and the policy violations found:

- ``no risk tier``: the model has none, so the strictest tier's gates apply;
- ``production NAME:V has no executed promotion request`` (once a policy is applied);
- ``production NAME:V: its latest promotion checks failed``;
- ``production NAME:V card completeness X% < required Y%`` (the production gate's
  ``card_completeness`` check for the model's tier).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from steward.governance._policy_checks import CardCompletenessCheck
from steward.governance._promotion_models import OPEN, PromotionRequest
from steward.governance._promotions import PromotionService
from steward.registry import ModelVersion, RegisteredModel, Stage
from steward.store import Store

__all__ = ["InventoryRow", "build_inventory", "inventory_csv"]

STAGES = tuple(s.value for s in Stage)


@dataclass(frozen=True)
class InventoryRow:
    """One model in the inventory."""

    name: str
    owners: tuple[str, ...]
    team: str | None
    risk_tier: str | None
    versions_by_stage: dict[str, int]
    production_version: int | None
    last_validation: datetime | None
    open_requests: int
    violations: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return {
            "name": self.name,
            "owners": list(self.owners),
            "team": self.team,
            "risk_tier": self.risk_tier,
            "versions_by_stage": dict(self.versions_by_stage),
            "production_version": self.production_version,
            "last_validation": self.last_validation.isoformat() if self.last_validation else None,
            "open_requests": self.open_requests,
            "violations": list(self.violations),
        }


def build_inventory(store: Store, promotions: PromotionService) -> list[InventoryRow]:
    """Build the inventory of every model, sorted by name.

    Raises:
        PermissionDeniedError: the caller lacks ``models:read``.
    """
    store.authorize("models:read", resource="inventory")
    registry = promotions.registry
    policy = promotions.current_policy()
    rows = []
    for model in sorted(registry.list_models(), key=lambda m: m.name):
        versions = registry.list_versions(model.name)
        requests = promotions.list_requests(model=model.name, limit=10_000)
        rows.append(_row(model, versions, requests, promotions, policy.version > 0))
    return rows


def _row(
    model: RegisteredModel,
    versions: Sequence[ModelVersion],
    requests: Sequence[PromotionRequest],
    promotions: PromotionService,
    governed: bool,
) -> InventoryRow:
    counts = {stage: 0 for stage in STAGES}
    for version in versions:
        counts[version.stage.value] += 1
    production = next((v for v in versions if v.stage is Stage.PRODUCTION), None)
    violations = []
    if model.risk_tier is None:
        violations.append("no risk tier")
    if production is not None:
        violations += _production_violations(model, production, requests, promotions, governed)
    return InventoryRow(
        name=model.name,
        owners=tuple(model.owners),
        team=model.team,
        risk_tier=model.risk_tier.value if model.risk_tier else None,
        versions_by_stage=counts,
        production_version=production.version if production else None,
        last_validation=max((r.created_at for r in requests), default=None),
        open_requests=sum(1 for r in requests if r.status in OPEN),
        violations=tuple(violations),
    )


def _production_violations(
    model: RegisteredModel,
    production: ModelVersion,
    requests: Sequence[PromotionRequest],
    promotions: PromotionService,
    governed: bool,
) -> list[str]:
    found = []
    mine = [r for r in requests if r.version == production.version]
    into_production = [r for r in mine if r.target_stage == "production"]
    if governed and not any(r.status == "executed" for r in into_production):
        found.append(f"production {production.ref} has no executed promotion request")
    if mine and any(not c.get("passed", False) for c in mine[0].checks):
        found.append(f"production {production.ref}: its latest promotion checks failed")
    required = _required_completeness(promotions, model)
    if required is not None:
        completeness = promotions.registry.card(production.ref).completeness
        if completeness < required:
            found.append(
                f"production {production.ref} card completeness {completeness:.0%} "
                f"< required {required:.0%}"
            )
    return found


def _required_completeness(promotions: PromotionService, model: RegisteredModel) -> float | None:
    policy = promotions.current_policy().policy
    tier = model.risk_tier.value if model.risk_tier else policy.tiers[-1]
    gate = policy.gates.get(tier, {}).get("production")
    if gate is None:
        return None
    mins = [c.min for c in gate.checks if isinstance(c, CardCompletenessCheck)]
    return max(mins, default=None)


def inventory_csv(rows: Sequence[InventoryRow]) -> str:
    """Render rows as CSV (lists joined by ``;``), one header line first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "name",
            "owners",
            "team",
            "risk_tier",
            *(f"versions_{s}" for s in STAGES),
            "production_version",
            "last_validation",
            "open_requests",
            "violations",
        ]
    )
    for row in rows:
        writer.writerow(
            [
                _cell(row.name),
                _cell(";".join(row.owners)),
                _cell(row.team or ""),
                row.risk_tier or "",
                *(row.versions_by_stage.get(s, 0) for s in STAGES),
                row.production_version or "",
                row.last_validation.isoformat() if row.last_validation else "",
                row.open_requests,
                _cell("; ".join(row.violations)),
            ]
        )
    return out.getvalue()


def _cell(text: str) -> str:
    """Neutralize spreadsheet formulas (CSV injection): a leading =, +, - or @ is quoted."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
