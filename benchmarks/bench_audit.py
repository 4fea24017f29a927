"""The audit chain: append throughput and verification time, on SQLite and PostgreSQL.

Appends go through the path services use: ``unit_of_work(db, actor=..., clock=SystemClock())``
and ``uow.audit(...)``.  Two shapes:

- ``audit.append.*``: one event per unit of work, the per-action path (each one is a
  committed transaction: SQLite WAL with ``synchronous=FULL``, PostgreSQL's defaults);
- ``audit.append_batch.*``: 1,000 events per unit of work, a bulk import.

``*.2proc`` runs two spawned processes appending at once (each with its own
``Database``); the rate is all events over the span from the first start to the last
finish, and the chain is verified afterwards.  ``audit.verify.*`` fills a chain of
100,000 events in batches, then times ``AuditLog(db).verify()``.
"""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Literal

from benchmarks._harness import Context, Measurements, benchmark
from steward.core import SystemClock
from steward.store import AuditLog, Database, unit_of_work

Backend = Literal["sqlite", "postgres"]

BATCH = 1_000
_EVENTS_PER_TXN = (2_000, 200)  # (full, quick), over all processes
_EVENTS_BATCHED = (50_000, 5_000)
_VERIFY_EVENTS = (100_000, 10_000)
_FILL_BATCH = 5_000
_WORKER_TIMEOUT_S = 600.0


def _database_url(ctx: Context, backend: Backend) -> str:
    if backend == "sqlite":
        return f"sqlite:///{ctx.tmp / 'steward.db'}"
    return ctx.postgres_url()


def _open(url: str) -> Database:
    db = Database(url, auto_migrate=True)
    db.ensure_schema()
    return db


def _append(db: Database, *, actor: str, count: int, batch: int) -> None:
    clock = SystemClock()
    done = 0
    while done < count:
        size = min(batch, count - done)
        with unit_of_work(db, actor=actor, clock=clock) as uow:
            for i in range(done, done + size):
                uow.audit(
                    "model.version.register",
                    "model_version",
                    f"{actor}-{i}",
                    {"model": "fraud", "version": i, "stage": "staging", "reason": "retrained"},
                )
        done += size


def _append_worker(
    url: str,
    actor: str,
    count: int,
    batch: int,
    ready: Barrier,
    spans: Queue[tuple[float, float]],
) -> None:
    """Append ``count`` events once every worker is connected; report (start, end)."""
    db = Database(url)
    try:
        _append(db, actor=actor, count=1, batch=1)  # connect and check the schema first
        ready.wait(timeout=_WORKER_TIMEOUT_S)
        # perf_counter is CLOCK_MONOTONIC on Linux and macOS: comparable across processes.
        start = time.perf_counter()
        _append(db, actor=actor, count=count, batch=batch)
        spans.put((start, time.perf_counter()))
    finally:
        db.dispose()


def _append_in_processes(url: str, *, procs: int, per_process: int, batch: int) -> float:
    """Run ``procs`` appending processes at once; return seconds from first start to last end."""
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Barrier(procs)
    spans: Queue[tuple[float, float]] = spawn.Queue()
    workers = [
        spawn.Process(
            target=_append_worker,
            args=(url, f"writer-{n}", per_process, batch, ready, spans),
            name=f"audit-writer-{n}",
        )
        for n in range(procs)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=_WORKER_TIMEOUT_S)
    failed = [f"{w.name} exited {w.exitcode}" for w in workers if w.exitcode != 0]
    for worker in workers:
        if worker.is_alive():
            worker.kill()
    if failed:
        raise RuntimeError(f"append workers failed: {', '.join(failed)}")
    collected = [spans.get(timeout=30) for _ in workers]
    return max(end for _, end in collected) - min(start for start, _ in collected)


def _append_throughput(ctx: Context, backend: Backend, *, procs: int, batch: int) -> Measurements:
    total = ctx.size(*(_EVENTS_BATCHED if batch > 1 else _EVENTS_PER_TXN))
    db = _open(_database_url(ctx, backend))
    try:
        if procs == 1:
            _append(db, actor="writer", count=1, batch=1)  # warm the connection pool
            with ctx.timer() as t:
                _append(db, actor="writer", count=total, batch=batch)
            return {"events_per_s": (total / t.seconds, "events/s"), "events": (total, "events")}
        per_process = total // procs
        seconds = _append_in_processes(
            db.url.render_as_string(hide_password=False),
            procs=procs,
            per_process=per_process,
            batch=batch,
        )
        result = AuditLog(db).verify()
        expected = procs * (per_process + 1)  # each worker's warm-up event included
        if not result.ok or result.events != expected:
            raise RuntimeError(
                f"the chain is broken after concurrent appends: ok={result.ok}, "
                f"{result.events} of {expected} events, {result.problem}"
            )
        return {
            "events_per_s": (procs * per_process / seconds, "events/s"),
            "events": (procs * per_process, "events"),
            "chain_ok": (1.0, "bool"),
        }
    finally:
        db.dispose()


def _verify_time(ctx: Context, backend: Backend) -> Measurements:
    total = ctx.size(*_VERIFY_EVENTS)
    db = _open(_database_url(ctx, backend))
    try:
        _append(db, actor="loader", count=total, batch=_FILL_BATCH)
        with ctx.timer() as t:
            result = AuditLog(db).verify()
        if not result.ok or result.events != total:
            raise RuntimeError(f"verify found {result.events} of {total} events: {result.problem}")
        return {
            "verify_s": (t.seconds, "s"),
            "events_per_s": (total / t.seconds, "events/s"),
            "events": (total, "events"),
        }
    finally:
        db.dispose()


@benchmark("audit.append.sqlite.1proc", group="audit")
def append_sqlite_1proc(ctx: Context) -> Measurements:
    """SQLite: one event per unit of work (committed transaction), one process."""
    return _append_throughput(ctx, "sqlite", procs=1, batch=1)


@benchmark("audit.append.sqlite.2proc", group="audit")
def append_sqlite_2proc(ctx: Context) -> Measurements:
    """SQLite: one event per unit of work, two processes at once; chain verified after."""
    return _append_throughput(ctx, "sqlite", procs=2, batch=1)


@benchmark("audit.append.postgres.1proc", group="audit")
def append_postgres_1proc(ctx: Context) -> Measurements:
    """PostgreSQL: one event per unit of work (committed transaction), one process."""
    return _append_throughput(ctx, "postgres", procs=1, batch=1)


@benchmark("audit.append.postgres.2proc", group="audit")
def append_postgres_2proc(ctx: Context) -> Measurements:
    """PostgreSQL: one event per unit of work, two processes at once; chain verified after."""
    return _append_throughput(ctx, "postgres", procs=2, batch=1)


@benchmark("audit.append_batch.sqlite.1proc", group="audit")
def append_batch_sqlite_1proc(ctx: Context) -> Measurements:
    """SQLite: 1,000 events per unit of work, one process."""
    return _append_throughput(ctx, "sqlite", procs=1, batch=BATCH)


@benchmark("audit.append_batch.sqlite.2proc", group="audit")
def append_batch_sqlite_2proc(ctx: Context) -> Measurements:
    """SQLite: 1,000 events per unit of work, two processes at once; chain verified after."""
    return _append_throughput(ctx, "sqlite", procs=2, batch=BATCH)


@benchmark("audit.append_batch.postgres.1proc", group="audit")
def append_batch_postgres_1proc(ctx: Context) -> Measurements:
    """PostgreSQL: 1,000 events per unit of work, one process."""
    return _append_throughput(ctx, "postgres", procs=1, batch=BATCH)


@benchmark("audit.append_batch.postgres.2proc", group="audit")
def append_batch_postgres_2proc(ctx: Context) -> Measurements:
    """PostgreSQL: 1,000 events per unit of work, two processes at once; chain verified after."""
    return _append_throughput(ctx, "postgres", procs=2, batch=BATCH)


@benchmark("audit.verify.sqlite", group="audit")
def verify_sqlite(ctx: Context) -> Measurements:
    """SQLite: AuditLog.verify() over a chain of 100,000 events (10,000 with --quick)."""
    return _verify_time(ctx, "sqlite")


@benchmark("audit.verify.postgres", group="audit")
def verify_postgres(ctx: Context) -> Measurements:
    """PostgreSQL: AuditLog.verify() over a chain of 100,000 events (10,000 with --quick)."""
    return _verify_time(ctx, "postgres")
