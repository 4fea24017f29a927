"""Retention of archived model versions: their artifact bytes go, their record stays.

A ``model_versions: archived for AGE`` rule selects versions archived longer than
``AGE``. Each is purged unless a legal hold covers it, a deployment revision (current
or a rollback target) routes to it, or its stage is not ``archived``. Purging marks
the version's row (``purged_at``, ``purged_by_rule``) and deletes its manifest, the
files the manifest lists and its compilations — each blob only when no other version
and no kept run uses it. The row, card, lineage, transitions, input example and audit
events are kept: loading the version then names the rule and date instead of failing
on missing bytes.

Rows are marked first, blobs deleted after the commit, each re-checked against the
references then present: a crash in between leaves unreferenced blobs, never a
version whose bytes vanished without its record saying so.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from steward.governance._holds import ActiveHolds
from steward.governance._retention_guard import GovernanceRetentionGuard, deployment_refs
from steward.governance._retention_rules import RetentionItem, RetentionRule
from steward.governance._retention_scan import Scan
from steward.registry import ModelVersion
from steward.store import Store, metadata

__all__ = ["delete_version_blobs", "mark_versions", "plan_versions"]

VERSION = "model_version"
BLOB = "model_artifact"  # a version's blob; apart from runs' "artifact" items


def plan_versions(
    scan: Scan, rule: RetentionRule, planned: Sequence[RetentionItem]
) -> list[RetentionItem]:
    """Archived versions past the rule's period, each to purge or keep, and their blobs."""
    cutoff = scan.now - rule.age
    items = [
        _decide(scan, version, str(rule))
        for version in scan.versions
        if version.stage.value == "archived"
        and version.purged_at is None
        and version.stage_changed_at <= cutoff
    ]
    doomed = {i.id for i in items if i.action == "delete"}
    doomed_runs = {i.id for i in planned if i.kind == "run" and i.action == "delete"}
    return items + _blob_items(scan, doomed, doomed_runs, str(rule))


def _decide(scan: Scan, version: ModelVersion, rule: str) -> RetentionItem:
    hold = scan.holds.for_version(version.model, version.version)
    since = version.stage_changed_at.date().isoformat()
    if hold is not None:
        reason = f"held by {hold.id} ({hold.selector}): {hold.reason}"
        return RetentionItem(VERSION, version.id, version.ref, "keep", reason, rule, hold.id)
    run = scan.runs.get(version.run_id or "")
    run_hold = scan.holds.for_run(run.start_time, run.tags) if run else None
    if run_hold is not None:
        reason = f"its run is held by {run_hold.id} ({run_hold.selector}): {run_hold.reason}"
        return RetentionItem(VERSION, version.id, version.ref, "keep", reason, rule, run_hold.id)
    keep = None
    if version.stage.value in ("staging", "production"):
        keep = f"in {version.stage.value}"
    elif version.ref in scan.deployed:
        keep = f"used by {scan.deployed[version.ref]}"
    elif scan.manifest_problem is not None:
        keep = f"kept: {scan.manifest_problem}"
    if keep is not None:
        return RetentionItem(VERSION, version.id, version.ref, "keep", keep, rule)
    reason = f"archived since {since}; its artifacts go, its record, card and lineage stay"
    return RetentionItem(VERSION, version.id, version.ref, "delete", reason, rule)


def _blobs(scan: Scan, version: ModelVersion) -> list[tuple[str, str, int | None]]:
    """``(label, digest, size)`` of each blob a purge of ``version`` deletes."""
    found: list[tuple[str, str, int | None]] = [("manifest", version.artifact_digest, None)]
    found += scan.version_files.get(version.id, [])
    found += [
        (f"compiled {target}", c.artifact_digest, None)
        for target, c in version.compilations.items()
        if c.artifact_digest
    ]
    return found


def _users(scan: Scan, doomed: set[str], doomed_runs: set[str]) -> dict[str, list[str]]:
    """Each blob's users that stay: versions not purged now or before, runs not deleted."""
    users: dict[str, list[str]] = defaultdict(list)
    for version in scan.versions:
        if version.example_digest:  # examples stay with the record, purged or not
            users[version.example_digest].append(f"model version {version.ref}")
        if version.id in doomed or version.purged_at is not None:
            continue
        for _label, digest, _size in _blobs(scan, version):
            users[digest].append(f"model version {version.ref}")
    for run_id, rows in scan.artifacts.items():
        if run_id not in doomed_runs:
            for _path, digest, _size in rows:
                users[digest].append(f"run {run_id}")
    return users


def _blob_items(
    scan: Scan, doomed: set[str], doomed_runs: set[str], rule: str
) -> list[RetentionItem]:
    users = _users(scan, doomed, doomed_runs)
    items: dict[str, RetentionItem] = {}
    for version in scan.versions:
        if version.id not in doomed:
            continue
        for label, digest, size in _blobs(scan, version):
            if digest in items:
                continue
            others = users.get(digest)
            action, reason = (
                ("keep", f"also used by {others[0]}")
                if others
                else ("delete", f"only used by archived {version.ref}")
            )
            items[digest] = RetentionItem(
                BLOB, digest, f"{version.ref} {label}", action, reason, rule, size=size
            )
    return list(items.values())


def mark_versions(store: Store, items: Sequence[RetentionItem], holds: ActiveHolds) -> list[str]:
    """Mark the plan's doomed versions purged (audited); return their refs."""
    doomed = {i.id: i.rule or "" for i in items if i.kind == VERSION and i.action == "delete"}
    return _mark(store, doomed, holds) if doomed else []


def delete_version_blobs(store: Store, items: Sequence[RetentionItem]) -> tuple[int, int]:
    """Delete the plan's version blobs that nothing uses now; return ``(count, bytes)``.

    Runs after :func:`mark_versions` and the runs' deletion, so a blob a deleted run
    shared goes too; each blob is re-checked against the references then present.
    """
    blobs = {i.id: i.size for i in items if i.kind == BLOB and i.action == "delete"}
    if not blobs:
        return 0, 0
    kept = GovernanceRetentionGuard(store).kept_blobs(blobs)
    count = size_sum = 0
    for digest, size in sorted(blobs.items()):
        if digest in kept or _run_uses(store, digest) or not store.artifacts.exists(digest):
            continue
        store.artifacts.delete(digest)
        count, size_sum = count + 1, size_sum + (size or 0)
    return count, size_sum


def _mark(store: Store, doomed: dict[str, str], holds: ActiveHolds) -> list[str]:
    """Mark versions purged in one unit of work, re-checking holds, stage and deployments."""
    versions_t, models_t = metadata.tables["model_versions"], metadata.tables["registered_models"]
    now = store.clock.now()
    marked: list[dict[str, Any]] = []
    with store.unit_of_work() as uow:
        deployed = deployment_refs(uow.conn)
        rows = uow.conn.execute(
            sa.select(versions_t.c.id, versions_t.c.stage, versions_t.c.purged_at)
            .add_columns(models_t.c.name, versions_t.c.version)
            .join(models_t, models_t.c.id == versions_t.c.model_id)
            .where(versions_t.c.id.in_(sorted(doomed)))
            .with_for_update()
        ).all()
        for row in rows:
            ref = f"{row.name}:{row.version}"
            if (
                row.stage != "archived"
                or row.purged_at is not None
                or ref in deployed
                or holds.for_version(row.name, row.version) is not None
            ):
                continue  # changed since the plan: kept
            uow.conn.execute(
                versions_t.update()
                .where(versions_t.c.id == row.id)
                .values(purged_at=now, purged_by_rule=doomed[row.id])
            )
            marked.append({"ref": ref, "id": row.id, "rule": doomed[row.id]})
        if marked:
            uow.audit(
                "retention.delete",
                "retention",
                "model_versions",
                {"model_versions": marked, "count": len(marked)},
            )
    return [m["ref"] for m in marked]


def _run_uses(store: Store, digest: str) -> bool:
    arts = metadata.tables["run_artifacts"]
    with store.database.read() as conn:
        found = conn.execute(sa.select(arts.c.run_id).where(arts.c.digest == digest)).first()
    return found is not None
