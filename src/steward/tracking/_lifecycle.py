"""Archiving runs and collecting the artifacts of long-archived ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from steward.core import InvalidInputError
from steward.store import Store
from steward.tracking._common import get_run, require_run
from steward.tracking._models import Run
from steward.tracking._runs import write_start
from steward.tracking._starts import run_unit
from steward.tracking._tables import run_artifacts, runs

__all__ = ["RunLifecycle"]


class RunLifecycle:
    """Archive, restore and garbage collection of runs (part of :class:`TrackingService`)."""

    store: Store

    def set_run_archived(self, run_id: str, archived: bool) -> Run:
        """Archive (soft-delete) or restore a run."""
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

        A blob still referenced by any other run is kept (artifacts are shared by
        content). With ``dry_run`` (the default) nothing is deleted; the report says
        what would be.
        """
        if older_than_days < 0:
            raise InvalidInputError(f"older_than_days must be >= 0, got {older_than_days}")
        cutoff = self.store.clock.now() - timedelta(days=older_than_days)
        with self.store.database.read() as conn:
            stale = list(
                conn.execute(
                    sa.select(runs.c.id).where(
                        runs.c.archived_at.is_not(None), runs.c.archived_at <= cutoff
                    )
                ).scalars()
            )
            rows = (
                conn.execute(
                    sa.select(run_artifacts.c.digest, run_artifacts.c.size).where(
                        run_artifacts.c.run_id.in_(stale)
                    )
                ).all()
                if stale
                else []
            )
            candidates = {r.digest: r.size for r in rows}
            kept = (
                set(
                    conn.execute(
                        sa.select(run_artifacts.c.digest).where(
                            run_artifacts.c.digest.in_(list(candidates)),
                            run_artifacts.c.run_id.not_in(stale),
                        )
                    ).scalars()
                )
                if candidates
                else set()
            )
        doomed = {d: n for d, n in candidates.items() if d not in kept}
        report = {
            "dry_run": dry_run,
            "runs": stale,
            "artifacts": sorted(doomed),
            "bytes": sum(doomed.values()),
            "kept_shared": sorted(kept),
        }
        if dry_run or not stale:
            return report
        with self.store.unit_of_work() as uow:
            uow.conn.execute(run_artifacts.delete().where(run_artifacts.c.run_id.in_(stale)))
            uow.audit(
                "artifacts.gc",
                "home",
                "artifacts",
                {"runs": stale[:1000], "artifacts": len(doomed), "bytes": report["bytes"]},
            )
        for digest in doomed:  # after commit: a crash here leaves only unreferenced blobs
            if self.store.artifacts.exists(digest):
                self.store.artifacts.delete(digest)
        return report
