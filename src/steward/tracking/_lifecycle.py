"""Archiving runs and collecting the artifacts of long-archived ones."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from steward.core import ConfigurationError, InvalidInputError, KeepReason, RetentionGuard
from steward.store import Store
from steward.tracking._access import COLLECT_SCOPE, WRITE_SCOPE, run_resource
from steward.tracking._common import get_run, require_run
from steward.tracking._models import Run
from steward.tracking._runs import write_start
from steward.tracking._starts import run_unit
from steward.tracking._tables import run_artifacts, runs

__all__ = ["RunLifecycle"]

_NO_GUARD = (
    "collecting artifacts must know which runs a legal hold keeps and which blobs a model "
    "version still uses, and this store has no retention guard; open the home with "
    "steward.sdk.connect() or governance's authenticated_store() (as `steward gc` does)"
)


@dataclass(frozen=True)
class _Collection:
    """What one collection found: the runs it takes, the runs it skips, the blobs."""

    runs: list[str]
    held: dict[str, KeepReason]
    doomed: dict[str, int]  # digest -> size
    shared: set[str]
    in_use: Mapping[str, KeepReason]

    def report(self, dry_run: bool) -> dict[str, Any]:
        return {
            "dry_run": dry_run,
            "runs": self.runs,
            "held": [{"run": r, **k.as_dict()} for r, k in sorted(self.held.items())],
            "artifacts": sorted(self.doomed),
            "bytes": sum(self.doomed.values()),
            "kept_shared": sorted(self.shared),
            "kept_in_use": [{"digest": d, **k.as_dict()} for d, k in sorted(self.in_use.items())],
        }


class RunLifecycle:
    """Archive, restore and garbage collection of runs (part of :class:`TrackingService`)."""

    store: Store

    def set_run_archived(self, run_id: str, archived: bool) -> Run:
        """Archive (soft-delete) or restore a run.

        Raises:
            NotFoundError: no run has that id.
            PermissionDeniedError: the caller lacks ``models:write``.
        """
        self.store.authorize(WRITE_SCOPE, resource=run_resource(run_id))
        with run_unit(self.store, run_id) as (uow, start):
            write_start(uow, start)
            require_run(uow.conn, run_id)
            uow.conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(archived_at=uow.clock.now() if archived else None)
            )
            uow.audit("run.archive" if archived else "run.restore", "run", run_id)
        return get_run(self.store, run_id)

    def collect_garbage(
        self, *, older_than_days: float = 30.0, dry_run: bool = True
    ) -> dict[str, Any]:
        """Delete artifacts of runs archived more than ``older_than_days`` ago.

        The store's retention guard decides what stays: a run a legal hold keeps is
        skipped with all its artifacts and reported under ``held`` with the hold; a
        blob a model version uses is kept (``kept_in_use``), as is one any other run
        still refers to (``kept_shared``; artifacts are shared by content). With
        ``dry_run`` (the default) nothing is deleted; the report says what would be.

        Raises:
            PermissionDeniedError: the caller lacks ``admin``.
            ConfigurationError: the store has no retention guard to ask.
            InvalidInputError: ``older_than_days`` is negative.
        """
        self.store.authorize(COLLECT_SCOPE)
        guard = self.store.retention_guard
        if guard is None:
            raise ConfigurationError(_NO_GUARD)
        if older_than_days < 0:
            raise InvalidInputError(f"older_than_days must be >= 0, got {older_than_days}")
        found = self._find_garbage(guard, self.store.clock.now() - timedelta(days=older_than_days))
        if dry_run or not (found.runs or found.held):
            return found.report(dry_run)
        with self.store.unit_of_work() as uow:
            if found.runs:
                uow.conn.execute(
                    run_artifacts.delete().where(run_artifacts.c.run_id.in_(found.runs))
                )
            uow.audit(
                "artifacts.gc",
                "home",
                "artifacts",
                {
                    "runs": found.runs[:1000],
                    "held": [{"run": r, "hold": k.hold_id} for r, k in found.held.items()][:1000],
                    "artifacts": len(found.doomed),
                    "bytes": sum(found.doomed.values()),
                    "kept_in_use": len(found.in_use),
                },
            )
        # After commit: a crash here leaves only unreferenced blobs. Whatever came to use
        # a blob since it was chosen (a new run, a new version) keeps it.
        with self.store.database.read() as conn:
            taken = _referenced(conn, found.doomed, exclude=())
        taken |= set(guard.kept_blobs(set(found.doomed) - taken))
        for digest in found.doomed:
            if digest not in taken and self.store.artifacts.exists(digest):
                self.store.artifacts.delete(digest)
        return found.report(dry_run)

    def _find_garbage(self, guard: RetentionGuard, cutoff: datetime) -> _Collection:
        with self.store.database.read() as conn:
            stale = list(
                conn.execute(
                    sa.select(runs.c.id)
                    .where(runs.c.archived_at.is_not(None), runs.c.archived_at <= cutoff)
                    .order_by(runs.c.archived_at, runs.c.id)
                ).scalars()
            )
        asked = set(stale)
        held = {r: k for r, k in guard.kept_runs(stale).items() if r in asked} if stale else {}
        taken = [r for r in stale if r not in held]
        with self.store.database.read() as conn:
            rows = (
                conn.execute(
                    sa.select(run_artifacts.c.digest, run_artifacts.c.size).where(
                        run_artifacts.c.run_id.in_(taken)
                    )
                ).all()
                if taken
                else []
            )
            candidates = {r.digest: r.size for r in rows}
            shared = _referenced(conn, candidates, exclude=taken)
        in_use = guard.kept_blobs(set(candidates) - shared) if candidates else {}
        doomed = {d: n for d, n in candidates.items() if d not in shared and d not in in_use}
        return _Collection(taken, held, doomed, shared, in_use)


def _referenced(
    conn: Connection, digests: Collection[str], *, exclude: Collection[str]
) -> set[str]:
    """The digests among ``digests`` that a run outside ``exclude`` still lists as an artifact."""
    if not digests:
        return set()
    query = sa.select(run_artifacts.c.digest).where(run_artifacts.c.digest.in_(list(digests)))
    if exclude:
        query = query.where(run_artifacts.c.run_id.not_in(list(exclude)))
    return set(conn.execute(query.distinct()).scalars())
