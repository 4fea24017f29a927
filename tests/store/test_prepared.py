"""Prepared driver-level statements store values exactly as SQLAlchemy Core does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from steward.store import Database, PreparedInsert, PreparedStatement, UTCDateTime, metadata

probe = sa.Table(
    "prepared_probe",
    sa.MetaData(),
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user", sa.String(50)),  # a reserved word: must be quoted
    sa.Column("at", UTCDateTime()),
    sa.Column("score", sa.Float()),
    sa.Column("n", sa.Integer()),
)

INSERT = PreparedInsert(probe, ["id", "user", "at", "score", "n"])
UPSERT = PreparedInsert(
    probe,
    ["id", "user", "at", "score", "n"],
    suffix=" ON CONFLICT (id) DO UPDATE SET n = excluded.n WHERE excluded.n > prepared_probe.n",
)
RENAME = PreparedStatement(
    'UPDATE prepared_probe SET "user" = {} WHERE id = {}', [probe.c.user, probe.c.id]
)


@pytest.fixture
def conn_probe(database: Database):
    assert "prepared_probe" not in metadata.tables
    probe.create(database.engine)
    try:
        yield database
    finally:
        probe.drop(database.engine)


def test_insert_round_trips_typed_values(conn_probe: Database) -> None:
    paris = timezone(timedelta(hours=2))
    at = datetime(2026, 3, 29, 2, 30, 0, 123456, tzinfo=paris)
    with conn_probe.write() as conn:
        INSERT(conn, [("a", "alice", at, 0.5, 1), ("b", None, None, None, None)])
        INSERT(conn, [("c", "carol", at, 1.5, 3)])  # a single row takes the execute path
    with conn_probe.read() as conn:
        rows = {r.id: r for r in conn.execute(sa.select(probe).order_by(probe.c.id))}
    assert rows["a"].at == at.astimezone(UTC)
    assert rows["a"].at.tzinfo is not None
    assert (rows["a"].user, rows["a"].score, rows["a"].n) == ("alice", 0.5, 1)
    assert rows["b"].at is None and rows["b"].user is None
    assert rows["c"].n == 3


def test_naive_datetime_is_refused_like_the_core_path(conn_probe: Database) -> None:
    with pytest.raises(ValueError, match="naive datetime"), conn_probe.write() as conn:
        INSERT(conn, [("a", "alice", datetime(2026, 1, 1), 0.5, 1)])
    with conn_probe.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(probe)).scalar_one() == 0


def test_suffix_and_statement(conn_probe: Database) -> None:
    now = datetime.now(UTC)
    with conn_probe.write() as conn:
        UPSERT(conn, [("a", "alice", now, 0.0, 5)])
        UPSERT(conn, [("a", "alice", now, 0.0, 3), ("a", "alice", now, 0.0, 9)])
        assert RENAME(conn, ("alicia", "a")).rowcount == 1
        assert RENAME(conn, ("nobody", "zzz")).rowcount == 0
    with conn_probe.read() as conn:
        row = conn.execute(sa.select(probe)).one()
    assert (row.user, row.n) == ("alicia", 9)


def test_wrong_number_of_values_is_an_error(conn_probe: Database) -> None:
    with pytest.raises(ValueError, match=r"shorter|longer"), conn_probe.write() as conn:
        INSERT(conn, [("a", "alice")])
