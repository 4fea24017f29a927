"""The online store contract: every backend keeps the newest row per entity, exactly."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest
from tests.features.online._backends import open_store

from steward.core import InvalidInputError
from steward.features._online import OnlineRow, OnlineStore, open_online_store

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def _t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_write_then_read_returns_values_and_times(store: OnlineStore) -> None:
    written = store.write(
        "customer",
        [
            OnlineRow(("c1",), {"age": 41, "score": 0.5}, _t(0), _t(5)),
            OnlineRow(("c2",), {"age": 7, "score": 1.25}, _t(1)),
        ],
    )
    assert written == 2
    c1, c2, c3 = store.read("customer", [("c1",), ("c2",), ("c3",)], ["score", "age"])
    assert c1 is not None and c2 is not None
    assert c3 is None
    assert c1.values == {"score": 0.5, "age": 41}
    assert list(c1.values) == ["score", "age"]
    assert c1.event_ts == _t(0) and c1.created_ts == _t(5)
    assert c1.event_ts.tzinfo is not None
    assert c2.values == {"score": 1.25, "age": 7} and c2.created_ts is None


def test_read_of_unknown_view_or_feature_is_empty(store: OnlineStore) -> None:
    assert store.read("nothing_here", [("c1",)], ["age"]) == [None]
    store.write("customer", [OnlineRow(("c1",), {"age": 41}, _t(0))])
    (record,) = store.read("customer", [("c1",)], ["age", "never_written"])
    assert record is not None and record.values == {"age": 41, "never_written": None}
    assert store.read("customer", [], ["age"]) == []


def test_every_kind_of_value_round_trips(store: OnlineStore) -> None:
    stamp = datetime(1969, 7, 20, 20, 17, 40, 123456, tzinfo=UTC)  # before the epoch
    values = {
        "f": 0.1,
        "big": 2**62 + 1,
        "neg": -3,
        "flag": True,
        "off": False,
        "name": 'quote " backslash \\ newline \n ünïcode ✓',
        "when": stamp,
        "none": None,
        "inf": float("inf"),
        "empty": "",
    }
    store.write("kinds", [OnlineRow(("k",), values, _t(0))])
    (record,) = store.read("kinds", [("k",)], list(values))
    assert record is not None
    got = record.values
    assert got == values
    assert type(got["flag"]) is bool and type(got["off"]) is bool
    assert type(got["big"]) is int and type(got["f"]) is float
    assert got["when"] == stamp and got["when"].tzinfo is not None


def test_nan_is_stored_as_null(store: OnlineStore) -> None:
    store.write("v", [OnlineRow(("k",), {"x": float("nan"), "y": 1.0}, _t(0))])
    (record,) = store.read("v", [("k",)], ["x", "y"])
    assert record is not None and record.values == {"x": None, "y": 1.0}


def test_older_rows_never_replace_newer_ones(store: OnlineStore) -> None:
    store.write("v", [OnlineRow(("k",), {"x": 2}, _t(10))])
    assert store.write("v", [OnlineRow(("k",), {"x": 1}, _t(5))]) == 0
    (record,) = store.read("v", [("k",)], ["x"])
    assert record is not None and record.values == {"x": 2} and record.event_ts == _t(10)
    assert store.write("v", [OnlineRow(("k",), {"x": 3}, _t(11))]) == 1
    (record,) = store.read("v", [("k",)], ["x"])
    assert record is not None and record.values == {"x": 3}


def test_created_time_breaks_ties_and_equal_rows_are_idempotent(store: OnlineStore) -> None:
    assert store.write("v", [OnlineRow(("k",), {"x": 1}, _t(0))]) == 1
    # Same event time, no created time on either side: not newer.
    assert store.write("v", [OnlineRow(("k",), {"x": 9}, _t(0))]) == 0
    # A created time beats none.
    assert store.write("v", [OnlineRow(("k",), {"x": 2}, _t(0), _t(1))]) == 1
    # An earlier created time, or none, loses.
    assert store.write("v", [OnlineRow(("k",), {"x": 3}, _t(0), _t(0.5))]) == 0
    assert store.write("v", [OnlineRow(("k",), {"x": 4}, _t(0))]) == 0
    # A later one wins.
    assert store.write("v", [OnlineRow(("k",), {"x": 5}, _t(0), _t(2))]) == 1
    (record,) = store.read("v", [("k",)], ["x"])
    assert record is not None and record.values == {"x": 5} and record.created_ts == _t(2)


def test_writing_the_same_rows_twice_changes_nothing(store: OnlineStore) -> None:
    rows = [OnlineRow((f"c{i}",), {"x": i, "s": str(i)}, _t(i), _t(i + 1)) for i in range(50)]
    assert store.write("v", rows) == 50
    before = store.read("v", [(f"c{i}",) for i in range(50)], ["x", "s"])
    assert store.write("v", rows) == 0
    assert store.read("v", [(f"c{i}",) for i in range(50)], ["x", "s"]) == before


def test_out_of_order_duplicates_in_one_batch_keep_the_latest(store: OnlineStore) -> None:
    rows = [
        OnlineRow(("k",), {"x": 3}, _t(3)),
        OnlineRow(("k",), {"x": 1}, _t(1)),
        OnlineRow(("k",), {"x": 5}, _t(3), _t(9)),
        OnlineRow(("k",), {"x": 2}, _t(2)),
        OnlineRow(("k",), {"x": 4}, _t(3), _t(8)),
    ]
    store.write("v", rows)
    (record,) = store.read("v", [("k",)], ["x"])
    assert record is not None and record.values == {"x": 5}
    assert record.event_ts == _t(3) and record.created_ts == _t(9)


def test_keys_compare_as_text(store: OnlineStore) -> None:
    store.write(
        "v",
        [
            OnlineRow((42,), {"x": 1}, _t(0)),
            OnlineRow(("eu", 7), {"x": 2}, _t(0)),
            OnlineRow((True,), {"x": 3}, _t(0)),
        ],
    )
    found = store.read("v", [("42",), (42.0,), ("eu", "7"), ("eu", 7.0), ("true",), (True,)], ["x"])
    assert [r.values["x"] if r else None for r in found] == [1, 1, 2, 2, 3, 3]
    assert store.read("v", [("7", "eu")], ["x"]) == [None]  # order of parts matters


@pytest.mark.parametrize(
    ("key", "message"),
    [((None,), "null"), ((1.5,), "cannot key"), ((object(),), "cannot key"), ((), "at least one")],
)
def test_malformed_keys_are_refused_by_name(store: OnlineStore, key: tuple, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        store.write("v", [OnlineRow(key, {"x": 1}, _t(0))])
    with pytest.raises(InvalidInputError, match=message):
        store.read("v", [key], ["x"])


def test_many_keys_in_order_with_repeats(store: OnlineStore) -> None:
    rows = [OnlineRow((i,), {"x": i * 2}, _t(0)) for i in range(1_200)]
    assert store.write("v", rows) == 1_200
    # Over one statement's worth of keys (500 on SQLite), missing and repeated ones too.
    wanted = [(i,) for i in range(1_300, -1, -3)] + [(i,) for i in range(0, 1_300, 2)] + [(5,)]
    found = store.read("v", wanted, ["x"])
    expected = [key[0] * 2 if key[0] < 1_200 else None for key in wanted]
    assert [r.values["x"] if r else None for r in found] == expected


def test_new_features_are_added_and_missing_ones_are_null(store: OnlineStore) -> None:
    store.write("v", [OnlineRow(("a",), {"x": 1, "y": 10}, _t(0))])
    store.write("v", [OnlineRow(("b",), {"x": 2, "z": "new"}, _t(0))])
    # A newer row that lacks "y" stores null there, not the older row's value.
    store.write("v", [OnlineRow(("a",), {"x": 3}, _t(1))])
    a, b = store.read("v", [("a",), ("b",)], ["x", "y", "z"])
    assert a is not None and a.values == {"x": 3, "y": None, "z": None}
    assert b is not None and b.values == {"x": 2, "y": None, "z": "new"}


def test_views_are_kept_apart_and_deleted_alone(store: OnlineStore) -> None:
    store.write("one", [OnlineRow(("k",), {"x": 1}, _t(0))])
    store.write("two", [OnlineRow(("k",), {"x": 2}, _t(0))])
    store.delete_view("one")
    assert store.read("one", [("k",)], ["x"]) == [None]
    (two,) = store.read("two", [("k",)], ["x"])
    assert two is not None and two.values == {"x": 2}
    store.delete_view("one")  # again: nothing to do
    store.delete_view("never_written")
    assert store.write("one", [OnlineRow(("k",), {"x": 5}, _t(-10))]) == 1


def test_arrow_batches_with_keys_times_and_types(store: OnlineStore) -> None:
    batch = pa.table(
        {
            "region": ["eu", "eu", "us", "eu"],
            "customer_id": pa.array([1, 2, 1, 1], pa.int32()),
            "ts": pa.array(
                [datetime(2024, 1, 1, 12), datetime(2024, 1, 2), datetime(2024, 1, 3), None],
                pa.timestamp("ns"),
            ).fill_null(datetime(2023, 1, 1)),
            "created": pa.array([1, 2, 3, 4], pa.int64()),
            "amount": pa.array([1.5, float("nan"), 3.0, 9.0], pa.float32()),
            "n": pa.array([1, 2, 3, 4], pa.uint8()),
            "tier": pa.array(["a", "b", "a", "c"]).dictionary_encode(),
            "seen": pa.array(
                [datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=2)))] * 4,
                pa.timestamp("ms", tz="+02:00"),
            ),
        }
    )
    written = store.write_batch(
        "spend",
        batch,
        join_keys=["region", "customer_id"],
        event_timestamp="ts",
        created_timestamp="created",
    )
    assert written == 3  # the 2023 row of (eu, 1) is older than its 2024 one
    eu1, eu2, us1 = store.read(
        "spend", [("eu", 1), ("eu", "2"), ("us", 1)], ["amount", "n", "tier", "seen"]
    )
    assert eu1 is not None and eu2 is not None and us1 is not None
    assert eu1.values == {
        "amount": 1.5,
        "n": 1,
        "tier": "a",
        "seen": datetime(2019, 12, 31, 22, tzinfo=UTC),
    }
    assert eu1.event_ts == datetime(2024, 1, 1, 12, tzinfo=UTC)  # naive taken as UTC
    assert eu1.created_ts == datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC)  # int64 µs
    assert eu2.values["amount"] is None  # NaN
    assert us1.values["tier"] == "a"


def test_bad_batches_are_refused_and_store_nothing(store: OnlineStore) -> None:
    good = {"k": ["a", "b"], "ts": pa.array([T0, T0], pa.timestamp("us", tz="UTC"))}
    cases = [
        (pa.table({**good, "x": [[1], [2]]}), "cannot hold"),
        (pa.table({"k": ["a", None], "ts": good["ts"], "x": [1, 2]}), "null in 1 row"),
        (pa.table({"k": [1.5, 2.0], "ts": good["ts"], "x": [1, 2]}), "fractional"),
        (pa.table({"k": ["a", "b"], "ts": ["x", "y"], "x": [1, 2]}), "time column"),
        (pa.table({"k": ["a", "b"], "ts": pa.array([T0, None]), "x": [1, 2]}), "null in 1 row"),
        (pa.table({"k": ["a", "b"], "x": [1, 2]}), "lacks the column"),
        (pa.table({**good, "Bad-Name": [1, 2]}), "snake_case"),
    ]
    for batch, message in cases:
        with pytest.raises(InvalidInputError, match=message):
            store.write_batch("v", batch, join_keys=["k"], event_timestamp="ts")
    with pytest.raises(InvalidInputError, match="snake_case"):
        store.write_batch(
            "Bad View", pa.table({**good, "x": [1, 2]}), join_keys=["k"], event_timestamp="ts"
        )
    assert store.read("v", [("a",), ("b",)], ["x"]) == [None, None]


def test_rows_with_values_of_mixed_types_are_refused(store: OnlineStore) -> None:
    with pytest.raises(InvalidInputError, match="'x' mixes"):
        store.write(
            "v", [OnlineRow(("a",), {"x": 1}, _t(0)), OnlineRow(("b",), {"x": "one"}, _t(0))]
        )
    with pytest.raises(InvalidInputError, match="expected a datetime"):
        store.write("v", [OnlineRow(("a",), {"x": 1}, "2024-01-01")])  # type: ignore[arg-type]
    assert store.read("v", [("a",)], ["x"]) == [None]


def test_an_empty_write_is_a_no_op(store: OnlineStore) -> None:
    assert store.write("v", []) == 0
    empty = pa.table({"k": pa.array([], pa.string()), "ts": pa.array([], pa.timestamp("us"))})
    assert store.write_batch("v", empty, join_keys=["k"], event_timestamp="ts") == 0


def test_a_second_handle_sees_writes_and_new_columns(
    backend: str, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from steward.features._online import _redis, _sqlite

    monkeypatch.setattr(_sqlite, "_REFRESH_SECONDS", 0.0)
    monkeypatch.setattr(_redis, "_REFRESH_SECONDS", 0.0)
    with open_store(backend, tmp_path, url) as writer:
        reader = open_online_store(url)
        try:
            writer.write("v", [OnlineRow(("k",), {"x": 1}, _t(0))])
            (first,) = reader.read("v", [("k",)], ["x", "when"])
            assert first is not None and first.values == {"x": 1, "when": None}
            writer.write("v", [OnlineRow(("k",), {"x": 2, "when": T0}, _t(1))])
            (second,) = reader.read("v", [("k",)], ["x", "when"])
            assert second is not None and second.values == {"x": 2, "when": T0}
            writer.delete_view("v")
            assert reader.read("v", [("k",)], ["x"]) == [None]
        finally:
            reader.close()


def test_concurrent_writers_end_with_the_newest_row(store: OnlineStore) -> None:
    # Four threads write interleaved times for the same keys; the newest must win.
    def work(offset: int) -> None:
        for round_ in range(10):
            seconds = round_ * 4 + offset
            store.write(
                "v", [OnlineRow((f"k{i}",), {"x": seconds}, _t(seconds)) for i in range(20)]
            )

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    found = store.read("v", [(f"k{i}",) for i in range(20)], ["x"])
    assert all(r is not None and r.values == {"x": 39} and r.event_ts == _t(39) for r in found)


def test_hostile_keys_and_values_are_only_data(store: OnlineStore) -> None:
    keys = ["*", "a'b", 'q"; DROP TABLE x; --', "line\nbreak", "ünï ✓", "k" * 10_000, ""]
    rows = [OnlineRow((key,), {"x": key[:50], "n": i}, _t(0)) for i, key in enumerate(keys)]
    assert store.write("v", rows) == len(keys)
    found = store.read("v", [(key,) for key in keys], ["x", "n"])
    assert [r.values["n"] if r else None for r in found] == list(range(len(keys)))
    assert [r.values["x"] if r else None for r in found] == [key[:50] for key in keys]
    store.delete_view("v")
    assert store.read("v", [("*",)], ["x"]) == [None]
