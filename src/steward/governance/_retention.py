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

An archived model version past a ``model_versions`` rule loses its artifact bytes
(manifest, files, compilations) unless a hold covers it or a deployment revision
routes to it; its record, card, lineage and input example stay, and loading it
names the rule and date. Prediction partitions are purged through the
:class:`PredictionPartitions` seam (serving's ``PredictionArchive``) when one is
passed to :meth:`RetentionService.plan` / :meth:`RetentionService.apply`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, timedelta

from steward.core import ConflictError, InvalidInputError, NotFoundError
from steward.governance._holds import ActiveHolds, HoldService, LegalHold
from steward.governance._retention_predictions import PredictionPartitions, partition_items
from steward.governance._retention_rules import (
    DEFAULT_RULES,
    LegalHoldError,
    RetentionItem,
    RetentionPlan,
    RetentionRule,
)
from steward.governance._retention_scan import (
    Scan,
    audit_apply,
    collect_scan,
    delete_runs_and_datasets,
)
from steward.governance._retention_versions import (
    delete_version_blobs,
    mark_versions,
    plan_versions,
)
from steward.registry import RegistryService
from steward.store import Store

__all__ = ["RetentionService"]


class RetentionService:
    """Plan and apply retention: runs, datasets, model versions, predictions; needs ``admin``.

    Example:
        >>> retention = RetentionService(store, registry)  # doctest: +SKIP
        >>> plan = retention.plan(parse_rules(["runs: archived for 90d"]))  # doctest: +SKIP
        >>> retention.apply(plan.rules, predictions=archive).deleted["runs"]  # doctest: +SKIP
        3
    """

    def __init__(
        self, store: Store, registry: RegistryService, *, holds: HoldService | None = None
    ) -> None:
        self.store = store
        self.registry = registry
        self.holds = holds or HoldService(store)

    def plan(
        self,
        rules: Sequence[RetentionRule] = DEFAULT_RULES,
        *,
        predictions: PredictionPartitions | None = None,
    ) -> RetentionPlan:
        """List what the rules would delete and what they keep, changing nothing.

        Args:
            rules: the retention rules.
            predictions: the prediction log to plan a ``predictions`` rule over
                (without it such a rule only sets ``prediction_cutoff``).

        Raises:
            PermissionDeniedError: the caller lacks ``admin``.
        """
        self.store.authorize("admin", resource="retention")
        return self._plan(tuple(rules), predictions)

    def apply(
        self,
        rules: Sequence[RetentionRule] = DEFAULT_RULES,
        *,
        predictions: PredictionPartitions | None = None,
    ) -> RetentionPlan:
        """Delete what :meth:`plan` lists for deletion; audited, idempotent.

        Archived versions are marked purged first, then prediction partitions, runs
        and datasets go, then the blobs nothing uses any more; one ``retention.apply``
        event lists the rules, the counts and the purged versions.

        Returns:
            The plan as applied, with counts of what was deleted.

        Raises:
            PermissionDeniedError: the caller lacks ``admin``.
        """
        self.store.authorize("admin", resource="retention")
        rules = tuple(rules)
        plan = self._plan(rules, predictions)
        purged = mark_versions(self.store, plan.items, self.holds.active())
        partitions = 0
        if predictions is not None and plan.prediction_cutoff is not None:
            partitions = self._purge_predictions(predictions, plan.prediction_cutoff)
        deleted = delete_runs_and_datasets(self.store, plan.items)
        blobs, size = delete_version_blobs(self.store, plan.items)
        deleted |= {
            "model_versions": len(purged),
            "model_artifacts": blobs,
            "model_bytes": size,
            "prediction_partitions": partitions,
        }
        audit_apply(self.store, [str(r) for r in rules], deleted, {"model_versions_purged": purged})
        return replace(plan, applied=True, deleted=deleted)

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
        deleted = delete_runs_and_datasets(self.store, items)
        audit_apply(self.store, [f"manual: {reason}"], deleted, {})
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

    def _plan(
        self, rules: tuple[RetentionRule, ...], predictions: PredictionPartitions | None
    ) -> RetentionPlan:
        scan = self._scan()
        items: list[RetentionItem] = []
        for rule in rules:
            if rule.kind == "runs":
                items.extend(scan.run_items(rule))
        for rule in rules:
            if rule.kind == "dataset_versions":
                items.extend(scan.dataset_items(rule, items))
            elif rule.kind == "model_versions":
                items.extend(plan_versions(scan, rule, items))
        cutoff = next(((scan.now - r.age).date() for r in rules if r.kind == "predictions"), None)
        partitions = (
            partition_items(predictions, cutoff, scan.holds)
            if predictions is not None and cutoff is not None
            else []
        )
        return RetentionPlan(
            scan.now, rules, tuple(_dedupe(items)), cutoff, predictions=tuple(partitions)
        )

    def _purge_predictions(self, log: PredictionPartitions, cutoff: date) -> int:
        """Purge partitions before ``cutoff`` deployment by deployment, holds read once."""
        active = self.holds.active()

        def held(deployment: str, day: date) -> bool:
            return active.for_partition(deployment, day) is not None

        count = 0
        for deployment in sorted({d for d, _ in log.partitions(cutoff)}):
            report = log.purge(deployment, cutoff, held=held)
            kept = [(d, active.for_partition(deployment, d)) for _, d in report.held]
            self.record_prediction_purge(deployment, cutoff, [d for _, d in report.deleted], kept)
            count += len(report.deleted)
        return count

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
