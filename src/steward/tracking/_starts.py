"""Run starts waiting in memory, written with the run's first write.

``start_run`` checks everything a start needs (names, params, tags, the
experiment, the parent) in a read, and returns the handle with the start record
(the run row, its params and tags, the ``run.start`` audit event) kept in
memory. The run's first write of any kind — a metric flush, its end, params,
tags, a note, artifacts, a dataset — writes the start first, in the same
transaction; a nested run's start, a model registration and any lookup of the
run by id in this process write it first too. The flusher thread writes it once
it has waited ``flush_interval`` seconds and the exit hook writes it at
interpreter exit, so a start waits in memory no longer than a metric value does.

A run that starts and ends with its metrics thus costs one durable commit.

Invariants: a start is written exactly once, under its handle's write lock (so
a flush, an end and a lookup racing on it serialize); the lock is always taken
before a database transaction opens, never inside one, so no thread waits for a
handle while holding the database's write lock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from steward.store import Store, UnitOfWork

if TYPE_CHECKING:
    from steward.tracking._active import ActiveRun

__all__ = [
    "RunStart",
    "hold_start",
    "pending_runs",
    "run_unit",
    "start_written",
    "write_pending_start",
    "write_pending_starts",
]


@dataclass(frozen=True, slots=True)
class RunStart:
    """A checked run creation, not yet written."""

    run_id: str
    experiment_id: str
    experiment_name: str
    name: str
    parent_id: str | None
    actor: str
    start_time: datetime
    seed: int | None
    environment_digest: str | None
    environment_content: str | None  # set when the snapshot may not be stored yet
    params: dict[str, tuple[str, str, float | None]]  # key -> (text, type, number)
    tags: dict[str, str]
    store: Store  # the store (and so the actor) the run was started with
    pid: int  # a forked child never writes its parent's starts


_UNWRITTEN: dict[str, ActiveRun] = {}  # run id -> handle; strong refs keep starts alive
_LOCK = threading.Lock()


def hold_start(handle: ActiveRun) -> None:
    """Register a handle whose start is still in memory."""
    with _LOCK:
        _UNWRITTEN[handle.id] = handle


def start_written(run_id: str) -> None:
    """Forget a start once its transaction committed."""
    with _LOCK:
        _UNWRITTEN.pop(run_id, None)


def _pending(run_id: str) -> ActiveRun | None:
    handle = _UNWRITTEN.get(run_id)  # a dict read is atomic; writers hold _LOCK
    if handle is None or handle._start is None or handle._start.pid != os.getpid():
        return None
    return handle


def pending_runs() -> list[ActiveRun]:
    """Return this process's handles whose start is still in memory."""
    with _LOCK:
        handles = list(_UNWRITTEN.values())
    return [h for h in handles if h._start is not None and h._start.pid == os.getpid()]


def write_pending_start(run_id: str) -> None:
    """Write the start of ``run_id`` now when it is still in memory in this process."""
    handle = _pending(run_id)
    if handle is not None:
        handle._write_start()


def write_pending_starts(store: Store) -> None:
    """Write every start this process holds for ``store``'s database (before a search)."""
    for handle in pending_runs():
        start = handle._start
        if start is not None and start.store.database is store.database:
            handle._write_start()


@contextmanager
def run_unit(store: Store, run_id: str) -> Iterator[tuple[UnitOfWork, RunStart | None]]:
    """Open a unit of work on one run; yield it with the run's start when still unwritten.

    The caller writes the yielded start in the unit before anything else of the
    run; once the unit commits, the start counts as written. A start made through
    another store (another actor) is written on its own first.
    """
    handle = _pending(run_id)
    if handle is not None and handle._start is not None and handle._start.store is not store:
        handle._write_start()
        handle = None
    if handle is None:
        with store.unit_of_work() as uow:
            yield uow, None
        return
    with handle._write_lock:
        start = handle._start
        with store.unit_of_work() as uow:
            yield uow, start
        if start is not None:
            handle._start_committed()
