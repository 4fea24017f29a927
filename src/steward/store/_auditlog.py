"""The audit log service: read, verify and export the chain."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TextIO

from steward.core import canonical_json
from steward.store._audit import (
    AuditEvent,
    ChainAnchor,
    VerificationResult,
    iter_events,
    verify_chain,
)
from steward.store._database import Database

__all__ = ["AuditLog"]


class AuditLog:
    """Read-side of the audit chain. Appends happen only through a unit of work."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def list_events(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        object_type: str | None = None,
        object_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = 100,
        newest_first: bool = True,
    ) -> list[AuditEvent]:
        """Return events matching every given filter (newest first by default)."""
        with self._db.read() as conn:
            return list(
                iter_events(
                    conn,
                    actor=actor,
                    action=action,
                    object_type=object_type,
                    object_id=object_id,
                    since=since,
                    until=until,
                    limit=limit,
                    newest_first=newest_first,
                )
            )

    def verify(self, *, anchor: ChainAnchor | None = None) -> VerificationResult:
        """Check every link of the chain (and the anchor, when given)."""
        with self._db.read() as conn:
            return verify_chain(conn, anchor=anchor)

    def head(self) -> ChainAnchor | None:
        """Return the newest event's sequence number and hash: an anchor to keep elsewhere."""
        events = self.list_events(limit=1)
        return ChainAnchor(events[0].seq, events[0].hash) if events else None

    def export_jsonl(self, out: TextIO, **filters: Any) -> int:
        """Write matching events as JSON lines, oldest first; returns how many were written."""
        count = 0
        with self._db.read() as conn:
            for event in iter_events(conn, **filters):
                out.write(canonical_json(event.as_dict()) + "\n")
                count += 1
        return count
