"""The audit chain: appends, filters, export, and detection of every kind of tampering."""

from __future__ import annotations

import io
import json
import multiprocessing
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from steward.core import FrozenClock, InvalidInputError
from steward.store import AuditLog, ChainAnchor, Database, unit_of_work

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _record(
    db: Database, n: int, *, actor: str = "alice", clock: FrozenClock | None = None
) -> None:
    clock = clock or FrozenClock(T0)
    for i in range(n):
        with unit_of_work(db, actor=actor, clock=clock) as uow:
            uow.audit("thing.create", "thing", f"t{i}", {"i": i, "note": "é"})
        clock.advance(minutes=1)


def _exec(db: Database, sql: str, **params: object) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def test_audit_chain_verifies_after_appends(database: Database) -> None:
    _record(database, 5)
    result = AuditLog(database).verify()
    assert result.ok
    assert result.events == 5
    assert result.head is not None and result.head.seq == 5


def test_audit_empty_chain_verifies(database: Database) -> None:
    result = AuditLog(database).verify()
    assert result.ok and result.events == 0 and result.head is None


def test_audit_events_in_one_unit_are_consecutive(database: Database) -> None:
    with unit_of_work(database, actor="bob", clock=FrozenClock(T0)) as uow:
        for i in range(3):
            uow.audit("thing.update", "thing", "x", {"i": i})
    assert [e.seq for e in uow.events] == [1, 2, 3]
    assert uow.events[1].prev_hash == uow.events[0].hash


@pytest.mark.parametrize(
    ("sql", "bad_seq"),
    [
        ("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3", 3),
        ("UPDATE audit_events SET details = replace(details, '0', '7') WHERE seq = 1", 1),
        ("DELETE FROM audit_events WHERE seq = 3", 4),
    ],
    ids=["altered-actor", "altered-details", "removed"],
)
def test_audit_verify_detects_tampering(database: Database, sql: str, bad_seq: int) -> None:
    _record(database, 5)
    _exec(database, sql)
    result = AuditLog(database).verify()
    assert not result.ok
    assert result.first_bad_seq == bad_seq
    assert result.problem


def test_audit_verify_detects_altered_time(database: Database) -> None:
    _record(database, 4)
    _exec(
        database,
        "UPDATE audit_events SET ts = :ts WHERE seq = 2",
        ts=(T0 + timedelta(days=9)).replace(tzinfo=None),
    )
    result = AuditLog(database).verify()
    assert (result.ok, result.first_bad_seq) == (False, 2)


def test_audit_verify_detects_swapped_rows(database: Database) -> None:
    _record(database, 5)
    columns = "event_id, ts, actor, action, object_type, object_id, details, prev_hash, hash"
    with database.engine.begin() as conn:
        rows = {
            r.seq: r._mapping
            for r in conn.execute(
                sa.text(f"SELECT seq, {columns} FROM audit_events WHERE seq IN (2, 4)")
            )
        }
        conn.execute(sa.text("UPDATE audit_events SET event_id = 'tmp' WHERE seq = 2"))
        assign = ", ".join(f"{c.strip()} = :{c.strip()}" for c in columns.split(","))
        for seq, other in ((4, 2), (2, 4)):
            values = {k: v for k, v in rows[other].items() if k != "seq"}
            conn.execute(
                sa.text(f"UPDATE audit_events SET {assign} WHERE seq = :seq"),
                {**values, "seq": seq},
            )
    result = AuditLog(database).verify()
    assert (result.ok, result.first_bad_seq) == (False, 2)


def test_audit_verify_detects_inserted_event(database: Database) -> None:
    _record(database, 3)
    # Forge an event with a correct-looking hash at the end but no valid link.
    _exec(
        database,
        "INSERT INTO audit_events (seq, event_id, ts, actor, action, object_type, object_id, "
        "details, prev_hash, hash) VALUES (4, 'forged', :ts, 'mallory', 'thing.delete', 'thing', "
        "'t0', '{}', :prev, :hash)",
        ts=T0.replace(tzinfo=None),
        prev="0" * 64,
        hash="f" * 64,
    )
    result = AuditLog(database).verify()
    assert (result.ok, result.first_bad_seq) == (False, 4)


def test_audit_anchor_detects_truncation(database: Database) -> None:
    _record(database, 5)
    log = AuditLog(database)
    anchor = log.head()
    assert anchor is not None
    _exec(database, "DELETE FROM audit_events WHERE seq >= 4")
    assert log.verify().ok  # a shorter chain is consistent on its own...
    result = log.verify(anchor=anchor)  # ...but not with the anchor kept elsewhere
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "removed from the end" in (result.problem or "")


def test_audit_anchor_parse_rejects_garbage() -> None:
    with pytest.raises(InvalidInputError, match="SEQ:HASH"):
        ChainAnchor.parse("12:nothex")
    assert ChainAnchor.parse("3:" + "a" * 64).seq == 3


def test_audit_list_filters(database: Database) -> None:
    clock = FrozenClock(T0)
    _record(database, 3, actor="alice", clock=clock)
    _record(database, 2, actor="bob", clock=clock)
    log = AuditLog(database)
    assert [e.actor for e in log.list_events(actor="bob")] == ["bob", "bob"]
    assert [e.object_id for e in log.list_events(object_type="thing", object_id="t1")] == [
        "t1",
        "t1",
    ]
    since = log.list_events(since=T0 + timedelta(minutes=3), newest_first=False)
    assert [e.seq for e in since] == [4, 5]
    until = log.list_events(until=T0 + timedelta(minutes=1))
    assert [e.seq for e in until] == [1]
    assert log.list_events(limit=2)[0].seq == 5


def test_audit_export_jsonl_is_one_event_per_line(database: Database) -> None:
    _record(database, 3)
    out = io.StringIO()
    assert AuditLog(database).export_jsonl(out) == 3
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3]
    assert lines[0]["details"] == {"i": 0, "note": "é"}
    assert lines[1]["prev_hash"] == lines[0]["hash"]
    assert lines[0]["ts"] == "2026-01-01T00:00:00.000000+00:00"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("action", "", "action must be a non-empty string"),
        ("object_id", "x" * 201, "object_id is 201 characters"),
        ("details", {"v": float("nan")}, "no representation"),
    ],
)
def test_audit_rejects_bad_events(
    database: Database, field: str, value: object, message: str
) -> None:
    args: dict[str, object] = {"action": "a", "object_type": "t", "object_id": "o", "details": {}}
    args[field] = value
    with pytest.raises(InvalidInputError, match=message):
        with unit_of_work(database, actor="alice", clock=FrozenClock(T0)) as uow:
            uow.audit(**args)  # type: ignore[arg-type]
    assert AuditLog(database).verify().events == 0


def _append_many(url: str, actor: str, count: int) -> None:
    db = Database(url)
    clock = FrozenClock(T0)
    for i in range(count):
        with unit_of_work(db, actor=actor, clock=clock) as uow:
            uow.audit("thing.create", "thing", f"{actor}-{i}", {"i": i})
    db.dispose()


def test_audit_concurrent_processes_keep_one_chain(database: Database, database_url: str) -> None:
    per_process = 150
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_append_many, args=(database_url, f"p{n}", per_process))
        for n in range(2)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
        assert proc.exitcode == 0
    log = AuditLog(database)
    result = log.verify()
    assert result.ok, result.problem
    assert result.events == 2 * per_process
    actors = [e.actor for e in log.list_events(limit=None)]
    assert actors.count("p0") == actors.count("p1") == per_process
