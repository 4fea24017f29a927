"""Run records that point outside the run: artifacts, datasets, environments, reproduction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from steward.core import NotFoundError, canonical_json, new_id
from steward.store import Store
from steward.tracking._access import READ_SCOPE, WRITE_SCOPE, run_resource
from steward.tracking._common import get_run, insert_unless_present, require_run
from steward.tracking._datasets import describe_dataset
from steward.tracking._environment import (
    EnvironmentSnapshot,
    capture_environment,
    diff_environments,
)
from steward.tracking._models import DatasetVersion
from steward.tracking._rows import datasets_of, to_dataset
from steward.tracking._runs import write_start
from steward.tracking._starts import run_unit, write_pending_start
from steward.tracking._tables import dataset_versions, environments, run_artifacts, run_datasets

__all__ = ["RunRecords"]


class RunRecords:
    """Artifacts, datasets and environments of runs (part of :class:`TrackingService`)."""

    store: Store

    def log_artifact(self, run_id: str, path: Path, *, name: str | None = None) -> list[str]:
        """Store a file, or every file under a folder, as run artifacts (content-addressed).

        Raises:
            NotFoundError: the path or the run does not exist.
            PermissionDeniedError: the caller lacks ``models:write`` (checked before any upload).
        """
        self.store.authorize(WRITE_SCOPE, resource=run_resource(run_id))
        if not path.exists():
            raise NotFoundError(f"artifact path {str(path)!r} does not exist")
        base = name or path.name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        stored = []
        for file in files:
            logical = base if file == path else f"{base}/{file.relative_to(path).as_posix()}"
            info = self.store.artifacts.put(file)
            stored.append((logical, info.digest, info.size))
        with run_unit(self.store, run_id) as (uow, start):
            write_start(uow, start)
            require_run(uow.conn, run_id)
            paths = [p for p, _, _ in stored]
            uow.conn.execute(
                run_artifacts.delete().where(
                    run_artifacts.c.run_id == run_id, run_artifacts.c.path.in_(paths)
                )
            )
            if stored:
                uow.conn.execute(
                    run_artifacts.insert(),
                    [{"run_id": run_id, "path": p, "digest": d, "size": s} for p, d, s in stored],
                )
            uow.audit(
                "run.artifacts.log",
                "run",
                run_id,
                {"artifacts": [{"path": p, "digest": d, "size": s} for p, d, s in stored][:100]},
            )
        return paths

    def list_artifacts(self, run_id: str) -> list[dict[str, Any]]:
        """Return a run's artifacts: logical path, digest and size.

        Raises:
            NotFoundError: no run has that id.
            PermissionDeniedError: the caller lacks ``models:read``.
        """
        self.store.authorize(READ_SCOPE, resource=run_resource(run_id))
        write_pending_start(run_id)
        with self.store.database.read() as conn:
            require_run(conn, run_id)
            rows = conn.execute(
                sa.select(run_artifacts)
                .where(run_artifacts.c.run_id == run_id)
                .order_by(run_artifacts.c.path)
            ).all()
        return [{"path": r.path, "digest": r.digest, "size": r.size} for r in rows]

    def log_dataset(
        self, run_id: str, source: Any, *, name: str, role: str = "train"
    ) -> DatasetVersion:
        """Fingerprint and profile a dataset, store it once, and link it to a run with a role.

        Raises:
            NotFoundError: no run has that id.
            PermissionDeniedError: the caller lacks ``models:write`` (checked before reading data).
        """
        self.store.authorize(WRITE_SCOPE, resource=run_resource(run_id))
        described = describe_dataset(source, name=name, role=role)
        with run_unit(self.store, run_id) as (uow, start):
            write_start(uow, start)
            require_run(uow.conn, run_id)
            row = uow.conn.execute(
                sa.select(dataset_versions).where(
                    dataset_versions.c.digest == described.digest, dataset_versions.c.name == name
                )
            ).first()
            if row is not None:
                dataset_id = row.id
            else:
                dataset_id = new_id()
                inserted = insert_unless_present(
                    uow.conn,
                    dataset_versions,
                    {
                        "id": dataset_id,
                        "digest": described.digest,
                        "name": name,
                        "source_uri": described.source_uri,
                        "num_rows": described.num_rows,
                        "num_columns": described.num_columns,
                        "schema": canonical_json([c.as_dict() for c in described.schema]),
                        "profile": canonical_json(dict(described.profile)),
                        "created_at": uow.clock.now(),
                    },
                )
                if inserted:
                    uow.audit(
                        "dataset.register",
                        "dataset",
                        dataset_id,
                        {"name": name, "digest": described.digest},
                    )
                else:  # registered meanwhile by another process
                    dataset_id = uow.conn.execute(
                        sa.select(dataset_versions.c.id).where(
                            dataset_versions.c.digest == described.digest,
                            dataset_versions.c.name == name,
                        )
                    ).scalar_one()
            linked = uow.conn.execute(
                sa.select(run_datasets.c.run_id).where(
                    run_datasets.c.run_id == run_id,
                    run_datasets.c.dataset_id == dataset_id,
                    run_datasets.c.role == role,
                )
            ).first()
            if not linked:
                uow.conn.execute(
                    run_datasets.insert(),
                    {"run_id": run_id, "dataset_id": dataset_id, "role": role},
                )
                uow.audit("run.dataset.log", "run", run_id, {"dataset": dataset_id, "role": role})
            stored = uow.conn.execute(
                sa.select(dataset_versions).where(dataset_versions.c.id == dataset_id)
            ).one()
        return to_dataset(stored, role)

    def run_datasets(self, run_id: str) -> list[DatasetVersion]:
        """Return the dataset versions a run logged, with roles.

        Raises:
            NotFoundError: no run has that id.
            PermissionDeniedError: the caller lacks ``models:read``.
        """
        self.store.authorize(READ_SCOPE, resource=run_resource(run_id))
        write_pending_start(run_id)
        with self.store.database.read() as conn:
            require_run(conn, run_id)
            return datasets_of(conn, run_id)

    def runs_using_dataset(self, digest: str) -> list[str]:
        """Return ids of runs that logged a dataset with this digest.

        Raises:
            PermissionDeniedError: the caller lacks ``models:read``.
        """
        self.store.authorize(READ_SCOPE)
        query = (
            sa.select(run_datasets.c.run_id)
            .join(dataset_versions, dataset_versions.c.id == run_datasets.c.dataset_id)
            .where(dataset_versions.c.digest == digest)
            .distinct()
        )
        with self.store.database.read() as conn:
            return list(conn.execute(query).scalars())

    def get_environment(self, digest: str) -> dict[str, Any]:
        """Return a stored environment snapshot by digest.

        Raises:
            NotFoundError: no environment has that digest.
            PermissionDeniedError: the caller lacks ``models:read``.
        """
        self.store.authorize(READ_SCOPE)
        with self.store.database.read() as conn:
            content = conn.execute(
                sa.select(environments.c.content).where(environments.c.digest == digest)
            ).scalar()
        if content is None:
            raise NotFoundError(f"environment {digest!r} does not exist")
        return dict(json.loads(content))

    def reproduction(self, run_id: str) -> dict[str, Any]:
        """Return what a re-run needs: commit, command, seed, params, data, environment diff.

        Raises:
            NotFoundError: no run has that id.
            PermissionDeniedError: the caller lacks ``models:read``.
        """
        self.store.authorize(READ_SCOPE, resource=run_resource(run_id))
        run = get_run(self.store, run_id)
        datasets = self.run_datasets(run_id)
        recorded = self.get_environment(run.environment_digest) if run.environment_digest else None
        then = EnvironmentSnapshot.from_dict(recorded) if recorded is not None else None
        changes = [
            {"what": f"{c.kind} {c.name}".strip(), "old": c.old, "new": c.new}
            for c in (diff_environments(then, capture_environment()) if then else [])
        ]
        git = None
        if then is not None and then.git_commit:
            git = {
                "commit": then.git_commit,
                "dirty": then.git_dirty,
                "branch": then.git_branch,
                "remote": then.git_remote,
            }
        return {
            "run_id": run.id,
            "experiment": run.experiment_name,
            "git": git,
            "command": list(then.command) if then else None,
            "seed": run.seed,
            "params": run.params,
            "datasets": [
                {"role": d.role, "name": d.name, "digest": d.digest, "source_uri": d.source_uri}
                for d in datasets
            ],
            "environment_recorded": then is not None,
            "environment_changes": changes,
        }
