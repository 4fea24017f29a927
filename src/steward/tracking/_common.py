"""Helpers every part of the tracking service uses: finding runs, idempotent inserts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from steward.core import ConflictError, NotFoundError
from steward.store import Store
from steward.tracking._models import Run, RunStatus
from steward.tracking._rows import load_runs
from steward.tracking._tables import runs

__all__ = ["get_run", "insert_unless_present", "require_run"]


def get_run(store: Store, run_id: str) -> Run:
    """Return a run with its params, latest metrics and tags.

    Raises:
        NotFoundError: no run has that id.
    """
    with store.database.read() as conn:
        found = load_runs(conn, [run_id])
    if not found:
        raise NotFoundError(f"run {run_id!r} does not exist")
    return found[0]


def require_run(conn: Connection, run_id: str, *, running: bool = False) -> Any:
    """Return the run's id and status, or raise.

    Raises:
        NotFoundError: no run has that id.
        ConflictError: ``running`` and the run has ended.
    """
    row = conn.execute(sa.select(runs.c.id, runs.c.status).where(runs.c.id == run_id)).first()
    if row is None:
        raise NotFoundError(f"run {run_id!r} does not exist")
    if running and row.status != RunStatus.RUNNING.value:
        raise ConflictError(f"run {run_id} is {row.status}; only running runs take new values")
    return row


def insert_unless_present(conn: Connection, table: sa.Table, row: Mapping[str, Any]) -> bool:
    """Insert a row keyed by content; another writer inserting it first is not an error."""
    try:
        with conn.begin_nested():
            conn.execute(table.insert(), dict(row))
    except sa.exc.IntegrityError:
        return False
    return True
