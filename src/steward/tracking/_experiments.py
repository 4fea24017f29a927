"""Experiments: the named groups runs belong to (part of :class:`TrackingService`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from steward.core import ConflictError, NotFoundError, canonical_json, new_id
from steward.store import Store, UnitOfWork
from steward.tracking._access import READ_SCOPE, WRITE_SCOPE, experiment_resource
from steward.tracking._models import Experiment
from steward.tracking._rows import to_experiment
from steward.tracking._statements import EXPERIMENT_BY_NAME_OR_ID
from steward.tracking._tables import experiments
from steward.tracking._validation import check_name, check_tags

__all__ = ["ExperimentCatalog"]


class ExperimentCatalog:
    """Create, find, list and archive experiments (part of :class:`TrackingService`)."""

    store: Store

    def create_experiment(
        self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> Experiment:
        """Create an experiment.

        Raises:
            ConflictError: an experiment with that name exists.
            InvalidInputError: the name or a tag is malformed.
            PermissionDeniedError: the caller lacks ``models:write``.
        """
        self.store.authorize(WRITE_SCOPE, resource=experiment_resource(name))
        check_name("experiment", name)
        tag_values = check_tags(tags or {})
        with self.store.unit_of_work() as uow:
            return self._insert_experiment(uow, name, description, tag_values)

    def _insert_experiment(
        self, uow: UnitOfWork, name: str, description: str, tags: dict[str, str]
    ) -> Experiment:
        if uow.conn.execute(sa.select(experiments.c.id).where(experiments.c.name == name)).first():
            raise ConflictError(f"experiment {name!r} already exists")
        experiment = Experiment(
            id=new_id(),
            name=name,
            description=description,
            owner=uow.actor,
            tags=tags,
            created_at=uow.clock.now(),
        )
        row = {**experiment.as_row(), "tags": canonical_json(tags)}
        try:
            with uow.conn.begin_nested():  # a savepoint: a lost race leaves the unit usable
                uow.conn.execute(experiments.insert(), row)
        except sa.exc.IntegrityError:
            raise ConflictError(f"experiment {name!r} already exists") from None
        uow.audit("experiment.create", "experiment", experiment.id, {"name": name, "tags": tags})
        return experiment

    def get_experiment(self, name_or_id: str) -> Experiment:
        """Return an experiment by name or id.

        Raises:
            NotFoundError: no such experiment; the message lists some that exist.
            PermissionDeniedError: the caller lacks ``models:read``.
        """
        self.store.authorize(READ_SCOPE, resource=experiment_resource(name_or_id))
        with self.store.database.read() as conn:
            return self._experiment(conn, name_or_id)

    def find_experiment(self, name_or_id: str) -> Experiment | None:
        """Return an experiment by name or id, or None."""
        try:
            return self.get_experiment(name_or_id)
        except NotFoundError:
            return None

    def _experiment(self, conn: Connection, name_or_id: str) -> Experiment:
        row = conn.execute(
            sa.select(experiments).where(
                sa.or_(experiments.c.name == name_or_id, experiments.c.id == name_or_id)
            )
        ).first()
        if row is None:
            known = (
                conn.execute(
                    sa.select(experiments.c.name)
                    .order_by(experiments.c.created_at.desc())
                    .limit(10)
                )
                .scalars()
                .all()
            )
            listing = ", ".join(repr(n) for n in known) or "none yet"
            raise NotFoundError(f"experiment {name_or_id!r} does not exist; existing: {listing}")
        return to_experiment(row)

    def list_experiments(self, *, include_archived: bool = False) -> list[Experiment]:
        """Return experiments, newest first.

        Raises:
            PermissionDeniedError: the caller lacks ``models:read``.
        """
        self.store.authorize(READ_SCOPE)
        query = sa.select(experiments).order_by(experiments.c.created_at.desc())
        if not include_archived:
            query = query.where(experiments.c.archived_at.is_(None))
        with self.store.database.read() as conn:
            return [to_experiment(r) for r in conn.execute(query)]

    def set_experiment_archived(self, name_or_id: str, archived: bool) -> Experiment:
        """Archive or restore an experiment (its runs are kept).

        Raises:
            NotFoundError: no such experiment.
            PermissionDeniedError: the caller lacks ``models:write``.
        """
        self.store.authorize(WRITE_SCOPE, resource=experiment_resource(name_or_id))
        with self.store.unit_of_work() as uow:
            exp = self._experiment(uow.conn, name_or_id)
            stamp = uow.clock.now() if archived else None
            uow.conn.execute(
                experiments.update().where(experiments.c.id == exp.id).values(archived_at=stamp)
            )
            uow.audit(
                "experiment.archive" if archived else "experiment.restore",
                "experiment",
                exp.id,
                {"name": exp.name},
            )
            return self._experiment(uow.conn, exp.id)

    def _experiment_for_run(self, uow: UnitOfWork, name_or_id: str) -> tuple[str, str]:
        """Return ``(id, name)`` of the experiment to add a run to, creating it when missing."""
        row: Sequence[Any] | None = EXPERIMENT_BY_NAME_OR_ID(
            uow.conn, (name_or_id, name_or_id)
        ).fetchone()
        if row is None:
            check_name("experiment", name_or_id)
            try:
                created = self._insert_experiment(uow, name_or_id, "", {})
                return created.id, created.name
            except ConflictError:  # created meanwhile by another process: use it
                row = EXPERIMENT_BY_NAME_OR_ID(uow.conn, (name_or_id, name_or_id)).fetchone()
                if row is None:  # pragma: no cover - a conflict means the row exists
                    raise
        exp_id, exp_name, archived_at = row
        if archived_at is not None:
            raise ConflictError(f"experiment {exp_name!r} is archived; restore it to add runs")
        return str(exp_id), str(exp_name)
