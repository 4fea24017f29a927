"""Online transactions, on every backend: all rows at commit, the view as it was after rollback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from steward.core import InvalidInputError
from steward.features._online import OnlineRow, OnlineStore

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def _t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _batch(keys: list[str], seconds: list[float], **features: list[Any]) -> pa.Table:
    times = pa.array([_t(s) for s in seconds], pa.timestamp("us", tz="UTC"))
    return pa.table({"k": keys, "ts": times, **features})


def _stage(transaction: Any, batch: pa.Table) -> int:
    staged: int = transaction.write_batch(batch, join_keys=["k"], event_timestamp="ts")
    return staged


def _snapshot(store: OnlineStore, keys: list[str], features: list[str]) -> list[Any]:
    found = store.read("v", [(k,) for k in keys], features)
    return [None if r is None else (r.values, r.event_ts, r.created_ts) for r in found]


def test_commit_stores_the_newer_rows_and_counts_them(store: OnlineStore) -> None:
    store.write("v", [OnlineRow(("a",), {"x": 10}, _t(10)), OnlineRow(("b",), {"x": 1}, _t(0))])
    with store.begin("v") as transaction:
        assert _stage(transaction, _batch(["a", "b"], [5, 1], x=[5, 2])) == 2
        assert _stage(transaction, _batch(["c"], [0], x=[3])) == 1
    a, b, c = store.read("v", [("a",), ("b",), ("c",)], ["x"])
    assert a is not None and a.values == {"x": 10}  # older than what was stored: kept out
    assert b is not None and b.values == {"x": 2} and b.event_ts == _t(1)
    assert c is not None and c.values == {"x": 3}
    again = store.begin("v")
    _stage(again, _batch(["a", "b", "c"], [5, 1, 0], x=[5, 2, 3]))
    assert again.commit() == 0  # nothing newer: committing the same rows changes nothing


def test_commit_returns_rows_written(store: OnlineStore) -> None:
    transaction = store.begin("v")
    _stage(transaction, _batch(["a", "b"], [0, 0], x=[1, 2]))
    assert transaction.commit() == 2
    assert store.begin("v").commit() == 0  # an empty transaction writes nothing


def test_rollback_leaves_the_view_as_it_was(store: OnlineStore) -> None:
    store.write(
        "v",
        [
            OnlineRow(("a",), {"x": 1, "s": "one"}, _t(0), _t(1)),
            OnlineRow(("b",), {"x": 2, "s": None}, _t(0)),
        ],
    )
    store.write("v", [OnlineRow(("q\x1f'\x1e\"",), {"x": 7, "s": "ü\n"}, _t(0))])
    keys = ["a", "b", "c", "q\x1f'\x1e\"", "ünï ✓"]  # hostile keys are only data
    before = _snapshot(store, keys, ["x", "s"])
    transaction = store.begin("v")
    _stage(transaction, _batch(keys, [5] * 5, x=[10, 20, 30, 40, 50], s=["n"] * 5))
    _stage(transaction, _batch(["a"], [6], x=[11], s=["again"]))  # the same entity twice
    transaction.rollback()
    assert _snapshot(store, keys, ["x", "s"]) == before
    transaction.rollback()  # a second rollback is a no-op


def _first_load(count: int) -> pa.Table:
    # Rows for an empty view, over several script calls; "dup" comes three times, its
    # second row older than its first and its third the newest (the last call's).
    keys = [f"e{i}" for i in range(count)]
    keys[10], keys[11], keys[-1] = "dup", "dup", "dup"
    seconds = [float(i % 7) for i in range(count)]
    seconds[10], seconds[11], seconds[-1] = 5.0, 4.0, 6.0
    return _batch(keys, seconds, x=list(range(count)))


def test_a_first_load_keeps_the_newest_of_repeated_keys(store: OnlineStore) -> None:
    transaction = store.begin("v")
    _stage(transaction, _first_load(2_500))
    assert transaction.commit() == 2_499  # 2,497 keys once, "dup" twice: its older row is not
    dup, first, last = store.read("v", [("dup",), ("e0",), ("e2498",)], ["x"])
    assert dup is not None and dup.values == {"x": 2_499} and dup.event_ts == _t(6)
    assert first is not None and first.values == {"x": 0}
    assert last is not None and last.values == {"x": 2_498}


def test_rollback_of_a_first_load_leaves_the_view_empty(store: OnlineStore) -> None:
    keys = [(f"e{i}",) for i in range(2_500)] + [("dup",)]
    transaction = store.begin("v")
    _stage(transaction, _first_load(2_500))
    transaction.rollback()
    assert store.read("v", keys, ["x"]) == [None] * len(keys)
    store.write("v", [OnlineRow(("e0",), {"x": -1}, _t(0))])  # the view is usable after
    assert _snapshot(store, ["e0"], ["x"]) == [({"x": -1}, _t(0), None)]


def test_an_exception_in_the_block_rolls_back(store: OnlineStore) -> None:
    store.write("v", [OnlineRow(("a",), {"x": 1}, _t(0))])
    with pytest.raises(RuntimeError, match="mid-way"), store.begin("v") as transaction:
        _stage(transaction, _batch(["a", "b"], [5, 5], x=[2, 3]))
        raise RuntimeError("failed mid-way")
    assert _snapshot(store, ["a", "b"], ["x"]) == [({"x": 1}, _t(0), None), None]


def test_a_rollback_keeps_rows_others_wrote_since(store: OnlineStore) -> None:
    store.write("v", [OnlineRow(("a",), {"x": 1}, _t(0)), OnlineRow(("b",), {"x": 1}, _t(0))])
    transaction = store.begin("v")
    _stage(transaction, _batch(["a", "b"], [5, 5], x=[2, 2]))
    # Another writer's newer row for "a" (a push, say) lands before the rollback.
    store.write("v", [OnlineRow(("a",), {"x": 9}, _t(9))])
    transaction.rollback()
    a, b = store.read("v", [("a",), ("b",)], ["x"])
    assert a is not None and a.values == {"x": 9} and a.event_ts == _t(9)
    assert b is not None and b.values == {"x": 1} and b.event_ts == _t(0)


def test_features_added_by_others_meanwhile_keep_their_values(store: OnlineStore) -> None:
    store.write("v", [OnlineRow(("a",), {"x": 1}, _t(0))])
    transaction = store.begin("v")
    _stage(transaction, _batch(["b"], [1], x=[2], z=["zed"]))
    store.write("v", [OnlineRow(("c",), {"y": 3.5}, _t(1))])  # "y" is recorded first
    transaction.commit()
    a, b, c = store.read("v", [("a",), ("b",), ("c",)], ["x", "y", "z"])
    assert a is not None and a.values == {"x": 1, "y": None, "z": None}
    assert b is not None and b.values == {"x": 2, "y": None, "z": "zed"}
    assert c is not None and c.values == {"x": None, "y": 3.5, "z": None}


def test_a_finished_transaction_refuses_more_work(store: OnlineStore) -> None:
    transaction = store.begin("v")
    _stage(transaction, _batch(["a"], [0], x=[1]))
    transaction.commit()
    with pytest.raises(InvalidInputError, match="finished"):
        _stage(transaction, _batch(["b"], [0], x=[1]))
    with pytest.raises(InvalidInputError, match="finished"):
        transaction.commit()
    with pytest.raises(InvalidInputError, match="snake_case"):
        store.begin("Bad View")


def test_bad_batches_are_refused_and_stage_nothing(store: OnlineStore) -> None:
    transaction = store.begin("v")
    with pytest.raises(InvalidInputError, match="null in 1 row"):
        _stage(transaction, pa.table({"k": ["a", None], "ts": [T0, T0], "x": [1, 2]}))
    _stage(transaction, _batch(["a"], [0], x=[1]))
    assert transaction.commit() == 1


def test_read_columns_lays_rows_out_per_feature(store: OnlineStore) -> None:
    store.write(
        "v",
        [
            OnlineRow(("a",), {"x": 1, "when": _t(3)}, _t(0), _t(1)),
            OnlineRow(("b",), {"x": None, "when": None}, _t(2)),
        ],
    )
    read = store.read_columns("v", [("b",), ("zz",), ("a",), ("a",)], ["when", "x", "nope"])
    assert read.values == {
        "when": [None, None, _t(3), _t(3)],
        "x": [None, None, 1, 1],
        "nope": [None, None, None, None],
    }
    micros = int((_t(0) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1_000_000)
    assert read.event_us == [micros + 2_000_000, None, micros, micros]
    assert read.created_us == [None, None, micros + 1_000_000, micros + 1_000_000]
    one = store.read_columns("v", [("a",)], ["x"])
    assert one.values == {"x": [1]} and one.event_us == [micros]
    assert store.read_columns("v", [], ["x"]).values == {"x": []}
    assert store.read_columns("nothing", [("a",)], ["x"]).event_us == [None]
