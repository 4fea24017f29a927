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
from steward.store import Store, UnitOfWork
from steward.tracking._access import (
    READ_SCOPE,
    WRITE_SCOPE,
    experiment_resource,
    run_resource,
)
from steward.tracking._active import ActiveRun
from steward.tracking._common import get_run, insert_unless_present, require_run
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
    RunStatus,
)
from steward.tracking._records import RunRecords
from steward.tracking._rows import load_runs
from steward.tracking._search import compile_filter, compile_order_by
from steward.tracking._statements import (
    END_RUN,
    INSERT_METRICS,
    INSERT_PARAMS,
    INSERT_RUN,
    UPSERT_LATEST_METRICS,
)
from steward.tracking._tables import (
    environments,
    metrics,
    params,
    run_tags,
    runs,
)
from steward.tracking._validation import (
    check_key,
    check_name,
    check_tags,
    decode_param,
    encode_param,
)

__all__ = ["TrackingService"]

MAX_PAGE = 1_000
ENVIRONMENT_TTL = 5.0  # seconds a captured environment is reused for new runs


class TrackingService(ExperimentCatalog, RunRecords, RunLifecycle):
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

    # -- runs --------------------------------------------------------------

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

        Args:
            experiment: experiment name or id; a new name creates the experiment.
            name: run name (default: a generated one).
            params: params to record with the run's creation.
            tags: initial tags.
            parent: parent run (id or handle), for nested runs such as HPO trials.
            seed: random seed; applied to ``random`` and NumPy and recorded.
            flush_interval: longest time (seconds) a metric value waits in memory.

        Raises:
            InvalidInputError: a name, key or value is malformed.
            NotFoundError: the parent run does not exist.
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
        environment = self._environment()
        run_id = new_id()
        with self.store.unit_of_work() as uow:
            exp_id, exp_name = self._experiment_for_run(uow, experiment)
            if (
                parent_id is not None
                and not uow.conn.execute(sa.select(runs.c.id).where(runs.c.id == parent_id)).first()
            ):
                raise NotFoundError(f"parent run {parent_id!r} does not exist")
            env_digest = self._store_environment(uow.conn, environment)
            INSERT_RUN(
                uow.conn,
                [
                    (
                        run_id,
                        exp_id,
                        name or f"run-{run_id[-8:]}",
                        RunStatus.RUNNING.value,
                        parent_id,
                        uow.actor,
                        uow.clock.now(),
                        seed,
                        env_digest,
                        "",
                    )
                ],
            )
            self._insert_params(uow.conn, run_id, encoded, fresh=True)
            self._upsert_tags(uow.conn, run_id, tag_values, fresh=True)
            uow.audit(
                "run.start",
                "run",
                run_id,
                {
                    "experiment": exp_name,
                    "parent": parent_id,
                    "params": {k: v[0] for k, v in encoded.items()},
                    "seed": seed,
                },
            )
        handle = ActiveRun(self, run_id, flush_interval=flush_interval)
        handle._params.update(params or {})
        return handle

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

    def _store_environment(self, conn: Connection, snapshot: tuple[str, str] | None) -> str | None:
        if snapshot is None:
            return None
        content, digest = snapshot
        if digest in self._stored_environments:
            return digest
        exists = conn.execute(
            sa.select(environments.c.digest).where(environments.c.digest == digest)
        ).first()
        if not exists:
            insert_unless_present(conn, environments, {"digest": digest, "content": content})
        self._stored_environments.add(digest)
        return digest

    def get_run(self, run_id: str) -> Run:
        """Return a run with its params, latest metrics and tags.

        Raises:
            NotFoundError: no run has that id.
            PermissionDeniedError: the caller lacks ``models:read``.
        """
        self.store.authorize(READ_SCOPE, resource=run_resource(run_id))
        return get_run(self.store, run_id)

    def _encode_params(self, values: Mapping[str, Any]) -> dict[str, tuple[str, str, float | None]]:
        return {check_key("param", k): encode_param(k, v) for k, v in values.items()}

    def _insert_params(
        self,
        conn: Connection,
        run_id: str,
        encoded: Mapping[str, tuple[str, str, float | None]],
        *,
        fresh: bool = False,
    ) -> dict[str, tuple[str, str, float | None]]:
        if not encoded:
            return {}
        existing = (
            {}
            if fresh
            else {
                r.key: (r.value, r.type)
                for r in conn.execute(
                    sa.select(params.c.key, params.c.value, params.c.type).where(
                        params.c.run_id == run_id, params.c.key.in_(list(encoded))
                    )
                )
            }
        )
        new = {}
        for key, (text, kind, number) in encoded.items():
            if key in existing:
                if existing[key] != (text, kind):
                    old = decode_param(*existing[key])
                    raise ConflictError(
                        f"param {key!r} of run {run_id} is already {old!r}; params are immutable, "
                        f"cannot set {decode_param(text, kind)!r}"
                    )
                continue
            new[key] = (text, kind, number)
        INSERT_PARAMS(conn, [(run_id, k, t, kind, n) for k, (t, kind, n) in new.items()])
        return new

    def _log_params(self, run_id: str, values: Mapping[str, Any]) -> None:
        self.store.authorize(WRITE_SCOPE, resource=run_resource(run_id))
        encoded = self._encode_params(values)
        with self.store.unit_of_work() as uow:
            require_run(uow.conn, run_id, running=True)
            new = self._insert_params(uow.conn, run_id, encoded)
            if new:
                uow.audit(
                    "run.params.log", "run", run_id, {"params": {k: v[0] for k, v in new.items()}}
                )

    def _upsert_tags(
        self, conn: Connection, run_id: str, values: Mapping[str, str], *, fresh: bool = False
    ) -> None:
        if not values:
            return
        if not fresh:
            conn.execute(
                run_tags.delete().where(
                    run_tags.c.run_id == run_id, run_tags.c.key.in_(list(values))
                )
            )
        conn.execute(
            run_tags.insert(), [{"run_id": run_id, "key": k, "value": v} for k, v in values.items()]
        )

    def _set_tags(self, run_id: str, values: Mapping[str, str]) -> None:
        self.store.authorize(WRITE_SCOPE, resource=run_resource(run_id))
        checked = check_tags(values)
        with self.store.unit_of_work() as uow:
            require_run(uow.conn, run_id)
            self._upsert_tags(uow.conn, run_id, checked)
            uow.audit("run.tags.set", "run", run_id, {"tags": checked})

    def set_tags(self, run_id: str, values: Mapping[str, str]) -> None:
        """Set tags on any run (running or ended).

        Raises:
            NotFoundError: no run has that id.
            PermissionDeniedError: the caller lacks ``models:write``.
        """
        self._set_tags(run_id, values)

    def _authorize_run_write(self, run_id: str) -> None:
        """Check the caller may write to a run: once per handle and per flush, not per value."""
        self.store.authorize(WRITE_SCOPE, resource=run_resource(run_id))

    def _write_metrics(self, run_id: str, rows: list[tuple[str, float, int, int]]) -> None:
        self._authorize_run_write(run_id)
        with self.store.unit_of_work() as uow:
            require_run(uow.conn, run_id)
            self._insert_metrics(uow, run_id, rows)

    def _insert_metrics(
        self, uow: UnitOfWork, run_id: str, rows: list[tuple[str, float, int, int]]
    ) -> None:
        if not rows:
            return
        INSERT_METRICS(uow.conn, [(run_id, k, v, s, t) for k, v, s, t in rows])
        latest: dict[str, tuple[float, int, int]] = {}
        for key, value, step, ts in rows:
            if key not in latest or (step, ts) >= latest[key][1:]:
                latest[key] = (value, step, ts)
        UPSERT_LATEST_METRICS(uow.conn, [(run_id, k, v, s, t) for k, (v, s, t) in latest.items()])
        uow.audit("run.metrics.log", "run", run_id, {"values": len(rows), "keys": sorted(latest)})

    def _end_run(
        self,
        run_id: str,
        status: RunStatus,
        *,
        rows: list[tuple[str, float, int, int]],
        error: str | None,
        wall_seconds: float,
        cpu_seconds: float,
    ) -> None:
        self._authorize_run_write(run_id)
        with self.store.unit_of_work() as uow:
            updated = END_RUN(
                uow.conn,
                (status.value, uow.clock.now(), error, wall_seconds, cpu_seconds, run_id),
            )
            if updated.rowcount == 0:  # missing, or ended meanwhile (by another handle)
                row = require_run(uow.conn, run_id)
                raise ConflictError(
                    f"run {run_id} is already {row.status}; only a running run can be ended"
                )
            self._insert_metrics(uow, run_id, rows)
            uow.audit(
                "run.end", "run", run_id, {"status": status.value, "error": (error or "")[-500:]}
            )

    def add_note(self, run_id: str, text: str) -> None:
        """Append a note to a run.

        Raises:
            InvalidInputError: the note is empty.
            NotFoundError: no run has that id.
            PermissionDeniedError: the caller lacks ``models:write``.
        """
        self.store.authorize(WRITE_SCOPE, resource=run_resource(run_id))
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError("a note must be non-empty text")
        with self.store.unit_of_work() as uow:
            require_run(uow.conn, run_id)
            current = uow.conn.execute(
                sa.select(runs.c.notes).where(runs.c.id == run_id)
            ).scalar_one()
            notes = f"{current}\n{text}" if current else text
            uow.conn.execute(runs.update().where(runs.c.id == run_id).values(notes=notes))
            uow.audit("run.note", "run", run_id, {"text": text[:1000]})

    # -- reading -----------------------------------------------------------

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Return every value of one metric, by step then time, in one query.

        Raises:
            NotFoundError: no run has that id.
            PermissionDeniedError: the caller lacks ``models:read``.
        """
        self.store.authorize(READ_SCOPE, resource=run_resource(run_id))
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
