"""What retention looks at, and the deletions it makes.

Runs and dataset versions belong to tracking; retention reads and deletes them
through the tables tracking declares on the shared ``steward.store.metadata``
(looked up by name, so no private module is imported). A table that references
``runs`` or ``dataset_versions`` and is not one of the rows a run owns (params,
metrics, tags, artifacts, dataset links) keeps the object: a new context that
points at runs is respected without a change here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from steward.core import StewardError
from steward.governance._holds import ActiveHolds
from steward.governance._retention_guard import deployment_refs, manifest_files
from steward.governance._retention_rules import RetentionItem, RetentionRule
from steward.registry import ModelVersion
from steward.store import Store, metadata

__all__ = ["Scan", "audit_apply", "collect_scan", "delete_runs_and_datasets"]

# Rows that belong to a run and go with it.
RUN_OWNED = ("params", "metrics", "latest_metrics", "run_tags", "run_artifacts", "run_datasets")
BATCH = 200


def _table(name: str) -> sa.Table:
    return metadata.tables[name]


def _referrers(target: str, owned: Iterable[str]) -> list[tuple[sa.Table, sa.Column[Any]]]:
    """Tables (and their column) with a foreign key to ``target.id``, except ``owned``."""
    found = []
    for table in metadata.sorted_tables:
        if table.name in owned:
            continue
        for fk in table.foreign_keys:
            if fk.column.table.name == target and fk.parent.table is not _table(target):
                found.append((table, fk.parent))
    return found


@dataclass
class _Run:
    id: str
    name: str
    status: str
    start_time: datetime
    end_time: datetime | None
    archived_at: datetime | None
    parent_id: str | None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Scan:
    """Everything one plan needs, read once."""

    now: datetime
    holds: ActiveHolds
    versions: list[ModelVersion]
    runs: dict[str, _Run]
    other_refs: dict[str, str]
    artifacts: dict[str, list[tuple[str, str, int]]]
    datasets: dict[str, Any]
    dataset_runs: dict[str, set[str]]
    dataset_other_refs: dict[str, str]
    protected: dict[str, str]
    manifest_problem: str | None = None
    deployed: dict[str, str] = field(default_factory=dict)
    version_files: dict[str, list[tuple[str, str, int | None]]] = field(default_factory=dict)
    versions_by_run: dict[str, list[ModelVersion]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for version in self.versions:
            if version.run_id is not None:
                self.versions_by_run.setdefault(version.run_id, []).append(version)

    def run_items(self, rule: RetentionRule, *, only: str | None = None) -> list[RetentionItem]:
        """Runs the rule selects (or just ``only``), each to delete or keep, and their blobs."""
        cutoff = self.now - rule.age
        chosen = [
            r for r in self.runs.values() if (r.id == only if only else _due(r, rule, cutoff))
        ]
        decided: dict[str, RetentionItem] = {}
        for run in chosen:
            decided[run.id] = self._decide_run(run, rule)
        _keep_parents(decided, self.runs)
        items = list(decided.values())
        doomed = {i.id for i in items if i.action == "delete"}
        return items + self._artifact_items(doomed, str(rule))

    def dataset_items(
        self, rule: RetentionRule, planned: Sequence[RetentionItem]
    ) -> list[RetentionItem]:
        """Dataset versions older than the rule, deleted when nothing left uses them."""
        cutoff = self.now - rule.age
        doomed = {i.id for i in planned if i.kind == "run" and i.action == "delete"}
        items = []
        for row in self.datasets.values():
            if row.created_at > cutoff:
                continue
            label = f"{row.name}@{row.digest[:12]}"
            users = sorted(self.dataset_runs.get(row.id, set()) - doomed)
            hold = self.holds.for_dataset(row.name)
            if hold is not None:
                reason, action = f"held by {hold.id} ({hold.selector}): {hold.reason}", "keep"
            elif users:
                reason, action = f"used by run {users[0]}{_more(users)}", "keep"
            elif row.id in self.dataset_other_refs:
                reason, action = f"referenced by {self.dataset_other_refs[row.id]}", "keep"
            else:
                created = row.created_at.date().isoformat()
                reason, action = f"unused since its creation on {created} or later", "delete"
            items.append(
                RetentionItem(
                    "dataset_version", row.id, label, action, reason, str(rule),
                    hold.id if hold else None,
                )
            )  # fmt: skip
        return items

    def _decide_run(self, run: _Run, rule: RetentionRule) -> RetentionItem:
        produced = self.versions_by_run.get(run.id, [])
        pairs = [(v.model, v.version) for v in produced]
        hold = self.holds.for_run(run.start_time, run.tags, pairs)
        label = f"{run.name} ({run.status})"
        if hold is not None:
            reason = f"held by {hold.id} ({hold.selector}): {hold.reason}"
            return RetentionItem("run", run.id, label, "keep", reason, str(rule), hold.id)
        if produced:
            refs = ", ".join(f"{v.ref} ({v.stage.value})" for v in produced)
            return RetentionItem("run", run.id, label, "keep", f"produced {refs}", str(rule))
        if run.id in self.other_refs:
            reason = f"referenced by {self.other_refs[run.id]}"
            return RetentionItem("run", run.id, label, "keep", reason, str(rule))
        if rule.condition == "archived" and run.archived_at is not None:
            reason = f"archived on {run.archived_at.date().isoformat()}"
        elif rule.condition == "finished" and run.end_time is not None:
            reason = f"{run.status} on {run.end_time.date().isoformat()}"
        else:
            reason = "deletion requested"
        return RetentionItem("run", run.id, label, "delete", reason, str(rule))

    def _artifact_items(self, doomed: set[str], rule: str) -> list[RetentionItem]:
        users: dict[str, set[str]] = defaultdict(set)
        for run_id, rows in self.artifacts.items():
            for _path, digest, _size in rows:
                users[digest].add(run_id)
        items: dict[str, RetentionItem] = {}
        for run_id in sorted(doomed):
            for path, digest, size in self.artifacts.get(run_id, []):
                if digest in items:
                    continue
                others = sorted(users[digest] - doomed)
                if others:
                    reason, action = f"also an artifact of run {others[0]}", "keep"
                elif digest in self.protected:
                    reason, action = f"part of model version {self.protected[digest]}", "keep"
                elif self.manifest_problem is not None:
                    reason, action = f"kept: {self.manifest_problem}", "keep"
                else:
                    reason, action = f"only used by deleted run {run_id}", "delete"
                items[digest] = RetentionItem(
                    "artifact", digest, path, action, reason, rule, size=size
                )
        return list(items.values())


def _due(run: _Run, rule: RetentionRule, cutoff: datetime) -> bool:
    if run.status == "running":
        return False
    if rule.condition == "archived":
        return run.archived_at is not None and run.archived_at <= cutoff
    return rule.condition == "finished" and run.end_time is not None and run.end_time <= cutoff


def _keep_parents(decided: dict[str, RetentionItem], runs: dict[str, _Run]) -> None:
    """A run whose child stays must stay too (the child points at it)."""
    children: dict[str, list[str]] = defaultdict(list)
    for run in runs.values():
        if run.parent_id is not None:
            children[run.parent_id].append(run.id)
    changed = True
    while changed:
        changed = False
        for run_id, item in list(decided.items()):
            if item.action != "delete":
                continue
            staying = [c for c in children[run_id] if decided.get(c, _KEPT).action != "delete"]
            if staying:
                decided[run_id] = RetentionItem(
                    "run", run_id, item.label, "keep",
                    f"parent of run {staying[0]}, which is kept", item.rule,
                )  # fmt: skip
                changed = True


_KEPT = RetentionItem("run", "", "", "keep", "")


def _more(values: Sequence[str]) -> str:
    return f" and {len(values) - 1} more" if len(values) > 1 else ""


def collect_scan(store: Store, versions: list[ModelVersion], holds: ActiveHolds) -> Scan:
    """Read runs, their artifacts and datasets, and the blobs model versions use."""
    runs_t, tags_t, arts_t = _table("runs"), _table("run_tags"), _table("run_artifacts")
    ds_t, rds_t = _table("dataset_versions"), _table("run_datasets")
    with store.database.read() as conn:
        runs = {
            r.id: _Run(
                r.id, r.name, r.status, r.start_time, r.end_time, r.archived_at, r.parent_run_id
            )
            for r in conn.execute(sa.select(runs_t)).all()
        }
        for row in conn.execute(sa.select(tags_t)).all():
            if row.run_id in runs:
                runs[row.run_id].tags[row.key] = row.value
        artifacts: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
        for row in conn.execute(sa.select(arts_t)).all():
            artifacts[row.run_id].append((row.path, row.digest, row.size))
        datasets = {r.id: r for r in conn.execute(sa.select(ds_t)).all()}
        dataset_runs: dict[str, set[str]] = defaultdict(set)
        for row in conn.execute(sa.select(rds_t.c.run_id, rds_t.c.dataset_id)).all():
            dataset_runs[row.dataset_id].add(row.run_id)
        other_refs = _other_refs(conn, "runs", RUN_OWNED, skip={"model_versions"})
        dataset_other = _other_refs(conn, "dataset_versions", ("run_datasets",), skip=set())
        deployed = deployment_refs(conn)
    protected, problem, files = _protected_digests(store, versions)
    return Scan(
        now=store.clock.now(),
        holds=holds,
        versions=versions,
        runs=runs,
        other_refs=other_refs,
        artifacts=dict(artifacts),
        datasets=datasets,
        dataset_runs=dict(dataset_runs),
        dataset_other_refs=dataset_other,
        protected=protected,
        manifest_problem=problem,
        deployed=deployed,
        version_files=files,
    )


def _other_refs(
    conn: Connection, target: str, owned: Sequence[str], *, skip: set[str]
) -> dict[str, str]:
    found: dict[str, str] = {}
    for table, column in _referrers(target, (*owned, *skip)):
        for value in conn.execute(
            sa.select(column).where(column.is_not(None)).distinct()
        ).scalars():
            found.setdefault(value, f"table {table.name}")
    return found


def _protected_digests(
    store: Store, versions: list[ModelVersion]
) -> tuple[dict[str, str], str | None, dict[str, list[tuple[str, str, int | None]]]]:
    """Digests of every blob a model version uses: manifest, files, example, compilations."""
    protected: dict[str, str] = {}
    problem = None
    files: dict[str, list[tuple[str, str, int | None]]] = {}
    for version in versions:
        if version.purged_at is not None:  # only its example is left
            if version.example_digest:
                protected.setdefault(version.example_digest, version.ref)
            continue
        digests = [version.artifact_digest, version.example_digest]
        digests += [c.artifact_digest for c in version.compilations.values()]
        for digest in filter(None, digests):
            protected.setdefault(digest, version.ref)
        try:
            files[version.id] = manifest_files(store, version.artifact_digest)
        except (StewardError, OSError, ValueError, LookupError, TypeError, AttributeError) as exc:
            # Any failure keeps every blob of this plan: the safe side.
            problem = f"the manifest of {version.ref} could not be read ({type(exc).__name__})"
            continue
        for _path, digest, _size in files[version.id]:
            protected.setdefault(digest, version.ref)
    return protected, problem, files


def delete_runs_and_datasets(store: Store, items: Sequence[RetentionItem]) -> dict[str, int]:
    """Delete the ``delete`` items: runs (children first) and datasets in audited units of work.

    Blobs go after their rows' commit, each re-checked against the references then
    present: a crash in between leaves only unreferenced blobs, never a dangling row.
    The caller closes with :func:`audit_apply`.
    """
    runs = [i.id for i in items if i.kind == "run" and i.action == "delete"]
    datasets = [i.id for i in items if i.kind == "dataset_version" and i.action == "delete"]
    blobs = {i.id: i.size or 0 for i in items if i.kind == "artifact" and i.action == "delete"}
    counts = {"runs": 0, "dataset_versions": 0, "artifacts": 0, "bytes": 0}
    ordered = _children_first(store, runs)
    for start in range(0, len(ordered), BATCH):
        counts["runs"] += _delete_runs(store, ordered[start : start + BATCH])
    if datasets:
        counts["dataset_versions"] = _delete_datasets(store, datasets)
    for digest, size in sorted(blobs.items()):
        if not _blob_in_use(store, digest) and store.artifacts.exists(digest):
            store.artifacts.delete(digest)
            counts["artifacts"] += 1
            counts["bytes"] += size
    return counts


def audit_apply(
    store: Store, rules: Sequence[str], counts: Mapping[str, int], details: Mapping[str, Any]
) -> None:
    """Record one ``retention.apply`` event: the rules, the counts and what was purged."""
    with store.unit_of_work() as uow:
        details = {"rules": list(rules), **counts, **details}
        uow.audit("retention.apply", "retention", "home", details)


def _blob_in_use(store: Store, digest: str) -> bool:
    arts, versions = _table("run_artifacts"), _table("model_versions")
    with store.database.read() as conn:
        if conn.execute(sa.select(arts.c.run_id).where(arts.c.digest == digest)).first():
            return True
        direct = sa.or_(versions.c.artifact_digest == digest, versions.c.example_digest == digest)
        return conn.execute(sa.select(versions.c.id).where(direct)).first() is not None


def _children_first(store: Store, run_ids: list[str]) -> list[str]:
    runs_t = _table("runs")
    wanted = set(run_ids)
    with store.database.read() as conn:
        parent = dict(
            conn.execute(
                sa.select(runs_t.c.id, runs_t.c.parent_run_id).where(runs_t.c.id.in_(run_ids))
            ).all()
        )

    def depth(run_id: str) -> int:
        level, current = 0, parent.get(run_id)
        while current in wanted and level < len(wanted):
            level, current = level + 1, parent.get(current)
        return level

    return sorted(run_ids, key=depth, reverse=True)


def _delete_runs(store: Store, batch: list[str]) -> int:
    runs_t, versions_t = _table("runs"), _table("model_versions")
    with store.unit_of_work() as uow:
        # A version registered from one of these runs since the plan was made keeps it.
        taken = set(
            uow.conn.execute(
                sa.select(versions_t.c.run_id).where(versions_t.c.run_id.in_(batch))
            ).scalars()
        )
        batch = [r for r in batch if r not in taken]
        if not batch:
            return 0
        for name in RUN_OWNED:
            table = _table(name)
            uow.conn.execute(table.delete().where(table.c.run_id.in_(batch)))
        uow.conn.execute(runs_t.delete().where(runs_t.c.id.in_(batch)))
        uow.audit("retention.delete", "retention", "runs", {"runs": batch, "count": len(batch)})
    return len(batch)


def _delete_datasets(store: Store, dataset_ids: list[str]) -> int:
    ds_t, rds_t = _table("dataset_versions"), _table("run_datasets")
    with store.unit_of_work() as uow:
        used = set(
            uow.conn.execute(
                sa.select(rds_t.c.dataset_id).where(rds_t.c.dataset_id.in_(dataset_ids))
            ).scalars()
        )
        gone = [d for d in dataset_ids if d not in used]
        if not gone:
            return 0
        uow.conn.execute(ds_t.delete().where(ds_t.c.id.in_(gone)))
        uow.audit(
            "retention.delete",
            "retention",
            "dataset_versions",
            {"dataset_versions": gone, "count": len(gone)},
        )
    return len(gone)
