"""Retention rules: what may be deleted, after how long, and never what is held or still used.

Rules are one line each, ``KIND: CONDITION for AGE`` (or ``predictions: older than AGE``)::

    runs: archived for 90d
    runs: finished for 2y
    dataset_versions: unreferenced for 180d
    model_versions: archived for 7y
    predictions: older than 400d

They come from a TOML file (``[retention]`` table, ``KIND = "CONDITION for AGE"``) or
from the command line; :data:`DEFAULT_RULES` applies otherwise.

:meth:`RetentionService.plan` lists every candidate with the reason it is deleted or
kept — held by which legal hold, produced which model version, used by which run.
:meth:`RetentionService.apply` deletes only the plan's ``delete`` items, in audited
units of work; running it again deletes nothing more. A blob is deleted only when no
remaining run and no model version (manifest, files, example, compilation) refers to
it: artifacts are content-addressed and shared.

Limits: model versions are never deleted (the registry keeps every version's record
and bytes); a ``model_versions`` rule reports the versions past their period.
Prediction partitions are purged by the prediction log, with :meth:`HoldService.
is_held_partition` deciding holds (``steward retention apply`` wires both).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from steward.core import ConflictError, InvalidInputError, NotFoundError
from steward.governance._holds import ActiveHolds, HoldService, LegalHold
from steward.governance._retention_rules import (
    DEFAULT_RULES,
    LegalHoldError,
    RetentionItem,
    RetentionPlan,
    RetentionRule,
)
from steward.governance._retention_scan import Scan, collect_scan, delete_runs_and_datasets
from steward.registry import RegistryService
from steward.store import Store

__all__ = ["RetentionService"]


class RetentionService:
    """Plan and apply retention over runs, artifacts and dataset versions; needs ``admin``.

    Example:
        >>> retention = RetentionService(store, registry)  # doctest: +SKIP
        >>> plan = retention.plan(parse_rules(["runs: archived for 90d"]))  # doctest: +SKIP
        >>> retention.apply(plan.rules).deleted  # doctest: +SKIP
        {'runs': 3, 'artifacts': 5, 'dataset_versions': 0, 'bytes': 1024}
    """

    def __init__(
        self, store: Store, registry: RegistryService, *, holds: HoldService | None = None
    ) -> None:
        self.store = store
        self.registry = registry
        self.holds = holds or HoldService(store)

    def plan(self, rules: Sequence[RetentionRule] = DEFAULT_RULES) -> RetentionPlan:
        """List what the rules would delete and what they keep, changing nothing.

        Raises:
            PermissionDeniedError: the caller lacks ``admin``.
        """
        self.store.authorize("admin", resource="retention")
        return self._plan(tuple(rules))

    def apply(self, rules: Sequence[RetentionRule] = DEFAULT_RULES) -> RetentionPlan:
        """Delete what :meth:`plan` lists for deletion; audited, idempotent.

        Returns:
            The plan as applied, with counts of what was deleted.

        Raises:
            PermissionDeniedError: the caller lacks ``admin``.
        """
        self.store.authorize("admin", resource="retention")
        plan = self._plan(tuple(rules))
        deleted = delete_runs_and_datasets(self.store, plan.items, rules=[str(r) for r in rules])
        return RetentionPlan(
            plan.at, plan.rules, plan.items, plan.prediction_cutoff, applied=True, deleted=deleted
        )

    def delete_run(self, run_id: str, *, reason: str) -> RetentionPlan:
        """Delete one run now, whatever its age, unless it is held or still used.

        Raises:
            NotFoundError: no such run.
            LegalHoldError: a legal hold keeps the run (the refusal is audited).
            ConflictError: a model version or another run still uses it.
            PermissionDeniedError: the caller lacks ``admin``.
        """
        self.store.authorize("admin", resource="retention")
        if not reason or not reason.strip():
            raise InvalidInputError("a reason is required to delete a run")
        scan = self._scan()
        if run_id not in scan.runs:
            raise NotFoundError(f"no run {run_id!r}")
        items = scan.run_items(RetentionRule("runs", "any", timedelta(0)), only=run_id)
        mine = next(i for i in items if i.kind == "run" and i.id == run_id)
        if mine.action == "keep":
            with self.store.unit_of_work() as uow:
                uow.audit(
                    "retention.refused",
                    "run",
                    run_id,
                    {"reason": mine.reason, "hold": mine.hold_id, "requested_because": reason},
                )
            error = LegalHoldError if mine.hold_id else ConflictError
            raise error(f"run {run_id} cannot be deleted: {mine.reason}")
        deleted = delete_runs_and_datasets(self.store, items, rules=[f"manual: {reason}"])
        return RetentionPlan(scan.now, (), tuple(items), applied=True, deleted=deleted)

    def record_prediction_purge(
        self,
        deployment: str,
        before: date,
        deleted: Sequence[date],
        held: Sequence[tuple[date, LegalHold | None]],
    ) -> None:
        """Audit a prediction log purge that an adapter ran with this context's holds.

        Raises:
            PermissionDeniedError: the caller lacks ``admin``.
        """
        self.store.authorize("admin", resource="retention")
        with self.store.unit_of_work() as uow:
            uow.audit(
                "retention.predictions",
                "deployment",
                deployment,
                {
                    "before": before.isoformat(),
                    "deleted": [d.isoformat() for d in deleted],
                    "held": [{"date": d.isoformat(), "hold": h.id if h else None} for d, h in held],
                },
            )

    def _plan(self, rules: tuple[RetentionRule, ...]) -> RetentionPlan:
        scan = self._scan()
        items: list[RetentionItem] = []
        for rule in rules:
            if rule.kind == "runs":
                items.extend(scan.run_items(rule))
        for rule in rules:
            if rule.kind == "dataset_versions":
                items.extend(scan.dataset_items(rule, items))
            elif rule.kind == "model_versions":
                items.extend(scan.version_items(rule))
        cutoff = next(((scan.now - r.age).date() for r in rules if r.kind == "predictions"), None)
        return RetentionPlan(scan.now, rules, tuple(_dedupe(items)), cutoff)

    def _scan(self) -> Scan:
        holds: ActiveHolds = self.holds.active()
        versions = [
            v for m in self.registry.list_models() for v in self.registry.list_versions(m.name)
        ]
        return collect_scan(self.store, versions, holds)


def _dedupe(items: Iterable[RetentionItem]) -> list[RetentionItem]:
    """One item per object; a ``keep`` from any rule wins over a ``delete`` from another."""
    chosen: dict[tuple[str, str], RetentionItem] = {}
    for item in items:
        key = (item.kind, item.id)
        if key not in chosen or (item.action == "keep" and chosen[key].action == "delete"):
            chosen[key] = item
    return list(chosen.values())
