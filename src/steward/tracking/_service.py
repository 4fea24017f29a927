"""The tracking service: experiments, runs, params, metrics, tags, artifacts, datasets."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from steward.core import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    canonical_json,
    new_id,
    sha256_hex,
)
from steward.store import Store
from steward.tracking._access import READ_SCOPE, WRITE_SCOPE, experiment_resource, run_resource
from steward.tracking._active import ActiveRun
from steward.tracking._common import get_run, require_run
from steward.tracking._environment import (
    capture_environment,
    seed_everything,
)
from steward.tracking._experiments import ExperimentCatalog
from steward.tracking._lifecycle import RunLifecycle
from steward.tracking._models import (
    Metric,
    Page,
    Run,
)
from steward.tracking._records import RunRecords
from steward.tracking._rows import load_runs
from steward.tracking._runs import RunWrites
from steward.tracking._search import compile_filter, compile_order_by
from steward.tracking._starts import RunStart, write_pending_start, write_pending_starts
from steward.tracking._statements import EXPERIMENT_BY_NAME_OR_ID
from steward.tracking._tables import (
    environments,
    metrics,
    runs,
)
from steward.tracking._validation import check_name, check_tags

__all__ = ["TrackingService"]

MAX_PAGE = 1_000
ENVIRONMENT_TTL = 5.0  # seconds a captured environment is reused for new runs


class TrackingService(ExperimentCatalog, RunWrites, RunRecords, RunLifecycle):
    """Experiments and runs of one steward home. Every change is audited.

    Reads need ``models:read``, changes ``models:write``, collecting artifacts
    ``admin`` (see :mod:`steward.tracking._access`); a denial raises
    :class:`PermissionDeniedError` naming the scope and is audited.

    Example:
        >>> tracking = TrackingService(Store.open())  # doctest: +SKIP
        >>> with tracking.start_run("fraud", params={"model": "hgb"}) as run:  # doctest: +SKIP
        ...     run.log_metrics({"auc": 0.91, "loss": 0.2}, step=1)
    """

    def __init__(self, store: Store, *, capture_environment: bool = True) -> None:
        self.store = store
        self._capture = capture_environment
        self._stored_environments: set[str] = set()
        self._environment_cache: tuple[float, str, tuple[str, str]] | None = None

    def now_ms(self) -> int:
        """Milliseconds since the epoch by the store's clock."""
        return int(self.store.clock.now().timestamp() * 1000)

    # -- experiments -------------------------------------------------------

    def start_run(
        self,
        experiment: str = "default",
        *,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        parent: str | ActiveRun | None = None,
        seed: int | None = None,
        flush_interval: float = 2.0,
    ) -> ActiveRun:
        """Start a run in an experiment (created when missing) and return its handle.

        Everything is checked at once; the start itself is written with the run's
        first write (a flush, its end, params, ...) and waits in memory at most
        ``flush_interval`` seconds, like a metric value. ``run.flush()`` writes it
        at once, e.g. before the run's id is handed to another process.

        Args:
            experiment: experiment name or id; a new name creates the experiment.
            name: run name (default: a generated one).
            params: params to record with the run's creation.
            tags: initial tags.
            parent: parent run (id or handle), for nested runs such as HPO trials.
            seed: random seed; applied to ``random`` and NumPy and recorded.
            flush_interval: longest time (seconds) the start or a metric value waits
                in memory.

        Raises:
            InvalidInputError: a name, key or value is malformed.
            NotFoundError: the parent run does not exist.
            ConflictError: the experiment is archived.
            PermissionDeniedError: the caller lacks ``models:write``.
        """
        self.store.authorize(WRITE_SCOPE, resource=experiment_resource(experiment))
        if name is not None:
            check_name("run", name)
        if isinstance(flush_interval, bool) or not isinstance(flush_interval, int | float):
            raise InvalidInputError(f"flush_interval must be seconds, got {flush_interval!r}")
        if not 0 < flush_interval < float("inf"):
            raise InvalidInputError(f"flush_interval must be > 0 seconds, got {flush_interval!r}")
        encoded = self._encode_params(params or {})
        tag_values = check_tags(tags or {})
        parent_id = parent.id if isinstance(parent, ActiveRun) else parent
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise InvalidInputError(f"seed must be an integer, got {seed!r}")
            seed_everything(seed)
        if parent_id is not None:
            write_pending_start(parent_id)  # a child's row refers to its parent's
        run_id = new_id()
        exp_id, exp_name, environment = self._run_home(experiment, parent_id)
        start = RunStart(
            run_id=run_id,
            experiment_id=exp_id,
            experiment_name=exp_name,
            name=name or f"run-{run_id[-8:]}",
            parent_id=parent_id,
            actor=self.store.actor,
            start_time=self.store.clock.now(),
            seed=seed,
            environment_digest=environment[1] if environment else None,
            environment_content=environment[0] if environment else None,
            params=encoded,
            tags=tag_values,
            store=self.store,
            pid=os.getpid(),
        )
        handle = ActiveRun(self, run_id, flush_interval=flush_interval, start=start)
        handle._params.update(params or {})
        return handle

    def _run_home(
        self, experiment: str, parent_id: str | None
    ) -> tuple[str, str, tuple[str | None, str] | None]:
        """Check where a new run goes, in one read; create the experiment when missing.

        Returns the experiment's id and name, and the environment snapshot as
        ``(content, digest)``, the content None when the snapshot is stored already.
        """
        snapshot = self._environment()
        environment: tuple[str | None, str] | None = snapshot
        with self.store.database.read() as conn:
            row: Sequence[Any] | None = EXPERIMENT_BY_NAME_OR_ID(
                conn, (experiment, experiment)
            ).fetchone()
            if (
                parent_id is not None
                and not conn.execute(sa.select(runs.c.id).where(runs.c.id == parent_id)).first()
            ):
                raise NotFoundError(f"parent run {parent_id!r} does not exist")
            if snapshot is not None and self._environment_stored(conn, snapshot[1]):
                environment = (None, snapshot[1])
        if row is None:
            with self.store.unit_of_work() as uow:
                exp_id, exp_name = self._experiment_for_run(uow, experiment)
            return exp_id, exp_name, environment
        exp_id, exp_name, archived_at = row
        if archived_at is not None:
            raise ConflictError(f"experiment {exp_name!r} is archived; restore it to add runs")
        return str(exp_id), str(exp_name), environment

    def _environment(self) -> tuple[str, str] | None:
        """Return ``(canonical JSON, digest)`` of the environment, reused for a few seconds.

        Capturing runs git three times (~15 ms); runs started in a burst (HPO trials)
        share one snapshot taken at most ``ENVIRONMENT_TTL`` seconds earlier.
        """
        if not self._capture:
            return None
        now = time.monotonic()
        cached = self._environment_cache
        if cached is not None and now - cached[0] < ENVIRONMENT_TTL and cached[1] == os.getcwd():
            return cached[2]
        content = canonical_json(capture_environment().as_dict())
        snapshot = (content, sha256_hex(content))
        self._environment_cache = (now, os.getcwd(), snapshot)
        return snapshot

    def _environment_stored(self, conn: Connection, digest: str) -> bool:
        """Whether a snapshot is in the database (remembered once seen there)."""
        if digest in self._stored_environments:
            return True
        found = conn.execute(
            sa.select(environments.c.digest).where(environments.c.digest == digest)
        ).first()
        if found:
            self._stored_environments.add(digest)
        return found is not None

    def get_run(self, run_id: str) -> Run:
        """Return a run with its params, latest metrics and tags.

        Raises:
            NotFoundError: no run has that id.
            PermissionDeniedError: the caller lacks ``models:read``.
        """
        self.store.authorize(READ_SCOPE, resource=run_resource(run_id))
        write_pending_start(run_id)
        return get_run(self.store, run_id)

    # -- reading -----------------------------------------------------------

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Return every value of one metric, by step then time, in one query.

        Raises:
            NotFoundError: no run has that id.
            PermissionDeniedError: the caller lacks ``models:read``.
        """
        self.store.authorize(READ_SCOPE, resource=run_resource(run_id))
        write_pending_start(run_id)
        query = (
            sa.select(metrics.c.value, metrics.c.step, metrics.c.ts_ms)
            .where(metrics.c.run_id == run_id, metrics.c.key == key)
            .order_by(metrics.c.step, metrics.c.ts_ms, metrics.c.id)
        )
        with self.store.database.read() as conn:
            # Plain numeric columns: read the driver's rows directly, skipping result processing.
            rows = conn.execute(query).cursor.fetchall()
            if not rows:
                require_run(conn, run_id)
        return [Metric(key, value, step, ts) for value, step, ts in rows]

    def search_runs(
        self,
        experiment: str | Sequence[str] | None = None,
        *,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        page_size: int = 100,
        page_token: str | None = None,
        include_archived: bool = False,
    ) -> Page[Run]:
        """Find runs by a filter, parsed into SQL; ordered and paged.

        Example:
            >>> tracking.search_runs("fraud", filter="metrics.auc > 0.8 and params.model = 'hgb'",
            ...                      order_by=["metrics.auc DESC"])  # doctest: +SKIP

        Raises:
            FilterSyntaxError: the filter or an ordering is malformed (points at the token).
            NotFoundError: an experiment does not exist.
            PermissionDeniedError: the caller lacks ``models:read``.
        """
        self.store.authorize(READ_SCOPE)
        if not 1 <= page_size <= MAX_PAGE:
            raise InvalidInputError(f"page_size must be between 1 and {MAX_PAGE}, got {page_size}")
        offset = _decode_token(page_token)
        condition = compile_filter(filter)
        ordering = compile_order_by(order_by)
        write_pending_starts(self.store)  # this process finds the runs it started
        query = sa.select(runs.c.id)
        with self.store.database.read() as conn:
            if experiment is not None:
                names = [experiment] if isinstance(experiment, str) else list(experiment)
                ids = [self._experiment(conn, n).id for n in names]
                query = query.where(runs.c.experiment_id.in_(ids))
            if condition is not None:
                query = query.where(condition)
            if not include_archived:
                query = query.where(runs.c.archived_at.is_(None))
            query = query.order_by(*ordering, runs.c.start_time.desc(), runs.c.id.desc())
            found = conn.execute(query.offset(offset).limit(page_size + 1)).scalars().all()
            items = load_runs(conn, found[:page_size])
        token = _encode_token(offset + page_size) if len(found) > page_size else None
        return Page(items, token)

    def compare_runs(self, run_ids: Sequence[str]) -> dict[str, Any]:
        """Return params and latest metrics side by side, with the keys that differ.

        Raises:
            NotFoundError: a run id does not exist.
            InvalidInputError: fewer than two runs were given.
            PermissionDeniedError: the caller lacks ``models:read``.
        """
        self.store.authorize(READ_SCOPE)
        if len(run_ids) < 2:
            raise InvalidInputError("compare needs at least two run ids")
        for run_id in run_ids:
            write_pending_start(run_id)
        with self.store.database.read() as conn:
            found = load_runs(conn, run_ids)
        missing = sorted(set(run_ids) - {r.id for r in found})
        if missing:
            raise NotFoundError(f"runs do not exist: {', '.join(missing)}")
        table: dict[str, Any] = {
            "runs": [{"id": r.id, "name": r.name, "status": r.status.value} for r in found]
        }
        for section in ("params", "metrics"):
            keys = sorted({k for r in found for k in getattr(r, section)})
            rows = []
            for key in keys:
                values = [getattr(r, section).get(key) for r in found]
                rows.append(
                    {"key": key, "values": values, "differs": len({repr(v) for v in values}) > 1}
                )
            table[section] = rows
        return table


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        kind, _, value = text.partition(":")
        if kind != "o" or not value.isdigit():
            raise ValueError(text)
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInputError(
            f"page_token {token!r} is not a token returned by search_runs"
        ) from None
