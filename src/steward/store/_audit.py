"""The audit chain: append-only, hash-linked events, verified end to end.

Each event's hash is SHA-256 over the canonical JSON of its fields plus the
previous event's hash, so altering, removing, inserting or reordering any event
breaks the chain from that point on.  Appends are serialized (SQLite's write
lock; a PostgreSQL advisory lock held to commit), so concurrent writers never
fork the chain.  Removing events from the *end* leaves a valid shorter chain:
compare the head against an anchor kept elsewhere (``verify(anchor=...)``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from steward.core import InvalidInputError, canonical_json, new_id, sha256_hex
from steward.store._prepared import PreparedInsert, PreparedStatement
from steward.store._tables import audit_events

__all__ = [
    "GENESIS_HASH",
    "AuditEvent",
    "ChainAnchor",
    "VerificationResult",
    "append_events",
    "iter_events",
    "verify_chain",
]

GENESIS_HASH = "0" * 64
# Key of the PostgreSQL advisory lock that serializes appends to the chain.
_CHAIN_LOCK = 0x57E3A8D1
_VERIFY_BATCH = 5_000
_MAX_TEXT = {"actor": 200, "action": 100, "object_type": 100, "object_id": 200}


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One link of the audit chain."""

    seq: int
    event_id: str
    ts: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    details: Mapping[str, Any]
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view (the shape of ``steward audit export``)."""
        return {
            "seq": self.seq,
            "event_id": self.event_id,
            "ts": _format_ts(self.ts),
            "actor": self.actor,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "details": dict(self.details),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An event recorded in a unit of work, appended to the chain at commit."""

    ts: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    details: str  # canonical JSON


@dataclass(frozen=True, slots=True)
class ChainAnchor:
    """The head of the chain at some moment: kept elsewhere, it detects truncation."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> ChainAnchor:
        """Parse ``SEQ:HASH`` as printed by ``steward audit head``."""
        seq, _, digest = text.partition(":")
        if (
            not seq.isdigit()
            or len(digest) != 64
            or not all(c in "0123456789abcdef" for c in digest)
        ):
            raise InvalidInputError(
                f"anchor {text!r} is not SEQ:HASH (a number, ':', 64 hex digits)"
            )
        return cls(int(seq), digest)


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """The outcome of checking the chain."""

    ok: bool
    events: int
    head: ChainAnchor | None
    first_bad_seq: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        return {
            "ok": self.ok,
            "events": self.events,
            "head": str(self.head) if self.head else None,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
        }


def _format_ts(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def event_hash(
    *,
    seq: int,
    event_id: str,
    ts: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    details: str,
    prev_hash: str,
) -> str:
    """Return the chain hash of one event (``details`` is its canonical JSON text)."""
    body = canonical_json(
        {
            "seq": seq,
            "event_id": event_id,
            "ts": _format_ts(ts),
            "actor": actor,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "details": details,
        }
    )
    return sha256_hex(prev_hash + body)


def make_pending(
    *,
    ts: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    details: Mapping[str, Any],
) -> PendingEvent:
    """Check and freeze an event's fields; raises InvalidInputError naming a bad field."""
    fields = {"actor": actor, "action": action, "object_type": object_type, "object_id": object_id}
    for name, value in fields.items():
        if not isinstance(value, str) or not value:
            raise InvalidInputError(f"audit event {name} must be a non-empty string, got {value!r}")
        if len(value) > _MAX_TEXT[name]:
            raise InvalidInputError(
                f"audit event {name} is {len(value)} characters; the limit is {_MAX_TEXT[name]}"
            )
    if ts.tzinfo is None:
        raise InvalidInputError(f"audit event time {ts!r} must be timezone-aware")
    return PendingEvent(
        ts=ts.astimezone(UTC),
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        details=canonical_json(dict(details)),
    )


_LOCK = PreparedStatement("SELECT pg_advisory_xact_lock({})", [sa.Column("key", sa.BigInteger())])
_HEAD = PreparedStatement("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1", [])
_INSERT = PreparedInsert(
    audit_events,
    [
        "seq",
        "event_id",
        "ts",
        "actor",
        "action",
        "object_type",
        "object_id",
        "details",
        "prev_hash",
        "hash",
    ],
)


def _lock_chain(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        _LOCK(conn, (_CHAIN_LOCK,)).close()
    # SQLite: the write transaction (BEGIN IMMEDIATE) already holds the only write lock.


def _head(conn: Connection) -> tuple[int, str]:
    cursor = _HEAD(conn, ())
    row: Sequence[Any] | None = cursor.fetchone()
    cursor.close()
    return (0, GENESIS_HASH) if row is None else (int(row[0]), str(row[1]))


def append_events(conn: Connection, pending: list[PendingEvent]) -> list[AuditEvent]:
    """Append events to the chain inside the caller's write transaction.

    The chain lock is held until the transaction ends, so call this last, just
    before commit, to keep the lock short.
    """
    if not pending:
        return []
    _lock_chain(conn)
    seq, prev = _head(conn)
    events: list[AuditEvent] = []
    for item in pending:
        seq += 1
        event_id = new_id()
        digest = event_hash(
            seq=seq,
            event_id=event_id,
            ts=item.ts,
            actor=item.actor,
            action=item.action,
            object_type=item.object_type,
            object_id=item.object_id,
            details=item.details,
            prev_hash=prev,
        )
        events.append(
            AuditEvent(
                seq=seq,
                event_id=event_id,
                ts=item.ts,
                actor=item.actor,
                action=item.action,
                object_type=item.object_type,
                object_id=item.object_id,
                details=json.loads(item.details),
                prev_hash=prev,
                hash=digest,
            )
        )
        prev = digest
    # The columns of _INSERT, in order.
    _INSERT(
        conn,
        [
            (
                e.seq,
                e.event_id,
                e.ts,
                e.actor,
                e.action,
                e.object_type,
                e.object_id,
                p.details,
                e.prev_hash,
                e.hash,
            )
            for e, p in zip(events, pending, strict=True)
        ],
    )
    return events


def _to_event(row: Mapping[Any, Any]) -> AuditEvent:
    return AuditEvent(
        seq=int(row["seq"]),
        event_id=row["event_id"],
        ts=row["ts"],
        actor=row["actor"],
        action=row["action"],
        object_type=row["object_type"],
        object_id=row["object_id"],
        details=json.loads(row["details"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def iter_events(
    conn: Connection,
    *,
    actor: str | None = None,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_seq: int = 0,
    limit: int | None = None,
    newest_first: bool = False,
) -> Iterator[AuditEvent]:
    """Yield events matching every given filter, in sequence order."""
    query = sa.select(audit_events).where(audit_events.c.seq > after_seq)
    for column, value in (
        (audit_events.c.actor, actor),
        (audit_events.c.action, action),
        (audit_events.c.object_type, object_type),
        (audit_events.c.object_id, object_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(audit_events.c.ts >= since)
    if until is not None:
        query = query.where(audit_events.c.ts < until)
    query = query.order_by(audit_events.c.seq.desc() if newest_first else audit_events.c.seq)
    if limit is not None:
        query = query.limit(limit)
    for row in conn.execute(query).mappings():
        yield _to_event(row)


def verify_chain(conn: Connection, *, anchor: ChainAnchor | None = None) -> VerificationResult:
    """Recompute every link of the chain; report the first bad sequence number.

    Detects altered fields, removed, inserted and reordered events, and, given an
    ``anchor`` recorded earlier, removal of events from the end.
    """
    expected_seq = 1
    prev = GENESIS_HASH
    count = 0
    columns = [c for c in audit_events.c]
    after = 0
    while True:
        batch = conn.execute(
            sa.select(*columns)
            .where(audit_events.c.seq > after)
            .order_by(audit_events.c.seq)
            .limit(_VERIFY_BATCH)
        ).all()
        if not batch:
            break
        for row in batch:
            seq = int(row.seq)
            problem = _check_row(row, expected_seq, prev)
            if problem is not None:
                return VerificationResult(False, count, ChainAnchor(seq, row.hash), seq, problem)
            if anchor is not None and seq == anchor.seq and row.hash != anchor.hash:
                return VerificationResult(
                    False,
                    count,
                    ChainAnchor(seq, row.hash),
                    seq,
                    f"event {seq} does not match the anchor {anchor}",
                )
            prev = row.hash
            expected_seq = seq + 1
            count += 1
        after = int(batch[-1].seq)
    head = ChainAnchor(expected_seq - 1, prev) if count else None
    if anchor is not None and (head is None or head.seq < anchor.seq):
        return VerificationResult(
            False,
            count,
            head,
            (head.seq + 1) if head else 1,
            f"the chain ends at {head.seq if head else 0} but the anchor names event {anchor.seq}: "
            "events were removed from the end",
        )
    return VerificationResult(True, count, head)


def _check_row(row: Any, expected_seq: int, prev: str) -> str | None:
    seq = int(row.seq)
    if seq != expected_seq:
        return f"expected event {expected_seq} but found {seq}: events are missing"
    if row.prev_hash != prev:
        return f"event {seq} does not link to the event before it (prev_hash mismatch)"
    try:
        recomputed = event_hash(
            seq=seq,
            event_id=row.event_id,
            ts=row.ts,
            actor=row.actor,
            action=row.action,
            object_type=row.object_type,
            object_id=row.object_id,
            details=row.details,
            prev_hash=row.prev_hash,
        )
    except (InvalidInputError, TypeError, ValueError, AttributeError) as exc:
        return f"event {seq} cannot be hashed: {exc}"
    if recomputed != row.hash:
        return f"event {seq} was altered (its hash does not match its content)"
    return None
