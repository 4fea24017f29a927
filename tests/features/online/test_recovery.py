"""What each backend does about files of other versions and transactions whose process died."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from tests.features.online._backends import open_store

from steward.core import SchemaVersionError
from steward.features._online import OnlineRow, RedisOnlineStore, SqliteOnlineStore

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
_US = 1_000_000


def _micros(value: datetime) -> int:
    return int((value - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * _US


def _layout_1_file(path: Path) -> None:
    # A store as the first layout wrote it: one typed column per feature, kinds as a dict.
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE steward_online_views (view TEXT PRIMARY KEY, columns TEXT)")
    kinds = {"score": "float", "flag": "bool", "seen": "timestamp", "name": "string"}
    conn.execute("INSERT INTO steward_online_views VALUES ('v', ?)", (json.dumps(kinds),))
    conn.execute(
        'CREATE TABLE "fv_v" (_key TEXT PRIMARY KEY NOT NULL, _event_us INTEGER NOT NULL, '
        '_created_us INTEGER, "score", "flag", "seen", "name") WITHOUT ROWID'
    )
    conn.executemany(
        'INSERT INTO "fv_v" VALUES (?, ?, ?, ?, ?, ?, ?)',
        [
            ("a", _micros(T0), _micros(T0) + 5, 0.5, 1, _micros(T0) - 7, "x"),
            ("b", _micros(T0) + _US, None, None, 0, None, None),
        ],
    )
    conn.commit()
    conn.close()


def test_a_layout_1_file_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    _layout_1_file(path)
    store = SqliteOnlineStore(path)
    try:
        a, b = store.read("v", [("a",), ("b",)], ["score", "flag", "seen", "name"])
        assert a is not None and b is not None
        assert a.values == {
            "score": 0.5,
            "flag": True,
            "seen": T0 - timedelta(microseconds=7),
            "name": "x",
        }
        assert a.event_ts == T0 and a.created_ts == T0 + timedelta(microseconds=5)
        assert b.values == {"score": None, "flag": False, "seen": None, "name": None}
        assert type(b.values["flag"]) is bool
        store.write("v", [OnlineRow(("a",), {"score": 1.5}, T0 + timedelta(hours=1))])
        (newer,) = store.read("v", [("a",)], ["score", "name"])
        assert newer is not None and newer.values == {"score": 1.5, "name": None}
    finally:
        store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone() == (2,)
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert "fv_v" not in tables and "steward_online_views_1" not in tables
    finally:
        conn.close()


def test_a_file_of_a_newer_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    SqliteOnlineStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 9")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaVersionError, match=r"layout 9.*upgrade steward"):
        SqliteOnlineStore(path)


def test_a_reader_with_a_stale_layout_finds_the_recreated_view(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    writer, reader = SqliteOnlineStore(path), SqliteOnlineStore(path)
    try:
        writer.write("v", [OnlineRow(("k",), {"a": 1, "b": 2}, T0)])
        assert reader.read_columns("v", [("k",)], ["a", "b"]).values == {"a": [1], "b": [2]}
        # Dropped and written again with the features in the other order.
        writer.delete_view("v")
        writer.write("v", [OnlineRow(("k",), {"b": 20, "a": 10}, T0)])
        assert reader.read_columns("v", [("k",)], ["a", "b"]).values == {"a": [10], "b": [20]}
    finally:
        writer.close()
        reader.close()


def test_a_sqlite_transaction_is_invisible_until_commit(tmp_path: Path) -> None:
    with open_store("sqlite", tmp_path) as store:
        store.write("v", [OnlineRow(("a",), {"x": 1}, T0)])
        transaction = store.begin("v")
        batch = pa.table(
            {"k": ["a", "b"], "ts": pa.array([T0 + timedelta(hours=1)] * 2), "x": [2, 3]}
        )
        transaction.write_batch(batch, join_keys=["k"], event_timestamp="ts")
        assert store.read_columns("v", [("a",), ("b",)], ["x"]).values == {"x": [1, None]}
        transaction.commit()
        assert store.read_columns("v", [("a",), ("b",)], ["x"]).values == {"x": [2, 3]}


@pytest.mark.redis
def test_a_redis_transaction_of_a_dead_process_is_rolled_back_by_the_next(
    tmp_path: Path,
) -> None:
    with open_store("redis", tmp_path) as store:
        assert isinstance(store, RedisOnlineStore)
        store.write("v", [OnlineRow(("a",), {"x": 1}, T0)])
        client = store._client
        before = {key: client.hgetall(key) for key in client.scan_iter(f"{store.prefix}fv:*")}
        dead = store.begin("v")
        later = T0 + timedelta(hours=1)
        batch = pa.table({"k": ["a", "b"], "ts": pa.array([later, later]), "x": [2, 3]})
        dead.write_batch(batch, join_keys=["k"], event_timestamp="ts")
        # The process dies: its lease is no longer renewed and lapses.
        dead._stop.set()
        client.delete(dead._lease)
        assert store.read_columns("v", [("a",), ("b",)], ["x"]).values == {"x": [2, 3]}
        alive = store.begin("v")  # rolls the dead one back first
        assert store.read_columns("v", [("a",), ("b",)], ["x"]).values == {"x": [1, None]}
        after = {key: client.hgetall(key) for key in client.scan_iter(f"{store.prefix}fv:*")}
        assert after == before
        assert alive.commit() == 0
        assert not list(client.scan_iter(f"{store.prefix}undo:*"))


@pytest.mark.redis
def test_a_live_redis_transaction_is_not_rolled_back_by_another(tmp_path: Path) -> None:
    with open_store("redis", tmp_path) as store:
        first = store.begin("v")
        batch = pa.table({"k": ["a"], "ts": pa.array([T0]), "x": [1]})
        first.write_batch(batch, join_keys=["k"], event_timestamp="ts")
        second = store.begin("v")
        second.rollback()
        assert store.read_columns("v", [("a",)], ["x"]).values == {"x": [1]}
        assert first.commit() == 1
        assert store.read_columns("v", [("a",)], ["x"]).values == {"x": [1]}
