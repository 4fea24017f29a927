"""The unit of work: one transaction holding a change and the audit events that record it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Connection

from steward.core import Clock
from steward.store._audit import AuditEvent, PendingEvent, append_events, make_pending
from steward.store._database import Database

__all__ = ["UnitOfWork", "unit_of_work"]


class UnitOfWork:
    """What a service gets for one atomic change: a connection, the actor, a clock.

    Audit events recorded with :meth:`audit` are appended to the chain in the same
    transaction, just before it commits: either the change and its record both
    land, or neither does.
    """

    def __init__(self, conn: Connection, *, actor: str, clock: Clock) -> None:
        self.conn = conn
        self.actor = actor
        self.clock = clock
        self._pending: list[PendingEvent] = []
        self.events: list[AuditEvent] = []

    def audit(
        self,
        action: str,
        object_type: str,
        object_id: str,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Record that ``actor`` did ``action`` to an object; appended at commit.

        Raises:
            InvalidInputError: a field is empty, too long, or details are not JSON-safe.
        """
        self._pending.append(
            make_pending(
                ts=self.clock.now(),
                actor=self.actor,
                action=action,
                object_type=object_type,
                object_id=object_id,
                details=details or {},
            )
        )

    def _flush(self) -> None:
        self.events = append_events(self.conn, self._pending)
        self._pending = []


@contextmanager
def unit_of_work(database: Database, *, actor: str, clock: Clock) -> Iterator[UnitOfWork]:
    """Open a write transaction; commit it, with its audit events, when the block ends.

    An exception inside the block rolls everything back, audit events included.
    """
    with database.write() as conn:
        uow = UnitOfWork(conn, actor=actor, clock=clock)
        yield uow
        uow._flush()
