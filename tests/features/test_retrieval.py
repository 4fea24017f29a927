"""Point-in-time retrieval, built around leakage traps."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.features._data import T0, TS, US, entity_frame, write_parquet

from steward.features import (
    Aggregation,
    Definitions,
    Entity,
    Feature,
    FeatureService,
    FeatureStore,
    FeatureView,
    FileSource,
    QuerySource,
)
from steward.features._pushlog import append_push_log

CUSTOMER = Entity("customer", ["customer_id"])
SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("ts", TS),
        ("created", TS),
        ("score", pa.float64()),
        ("segment", pa.string()),
    ]
)
TTL = timedelta(days=1)


def _row(
    key: int, ts: datetime, score: float, *, created: datetime | None = None
) -> dict[str, Any]:
    return {
        "customer_id": key,
        "ts": ts,
        "created": created or ts,
        "score": score,
        "segment": f"s{score:g}",
    }


def _apply(features: FeatureStore, path: Path, *extra: FeatureView, created: bool = True) -> None:
    source = FileSource("profiles", str(path), "ts", "created" if created else None)
    view = FeatureView(
        "profile",
        CUSTOMER,
        source,
        [Feature("score", "float64"), Feature("segment", "string")],
        ttl=TTL,
    )
    features.apply(Definitions(views=[view, *extra]))


def _values(table: pa.Table, column: str = "score") -> list[Any]:
    return table.column(column).to_pylist()


def test_value_after_the_event_never_leaks(feature_store: FeatureStore, tmp_path: Path) -> None:
    path = write_parquet(
        tmp_path / "p.parquet",
        [_row(1, T0 - timedelta(hours=1), 1.0), _row(1, T0 + US, 2.0), _row(1, T0 + 2 * US, 3.0)],
        SCHEMA,
    )
    _apply(feature_store, path)
    out = feature_store.get_historical_features(entity_frame([(1, T0)]), ["profile:score"])
    assert _values(out) == [1.0]


def test_value_stamped_exactly_at_the_event_is_known(
    feature_store: FeatureStore, tmp_path: Path
) -> None:
    path = write_parquet(tmp_path / "p.parquet", [_row(1, T0 - US, 1.0), _row(1, T0, 2.0)], SCHEMA)
    _apply(feature_store, path)
    out = feature_store.get_historical_features(entity_frame([(1, T0)]), ["profile:score"])
    assert _values(out) == [2.0]


def test_ttl_bound_on_both_sides(feature_store: FeatureStore, tmp_path: Path) -> None:
    path = write_parquet(
        tmp_path / "p.parquet", [_row(1, T0 - TTL, 1.0), _row(2, T0 - TTL + US, 2.0)], SCHEMA
    )
    _apply(feature_store, path)
    out = feature_store.get_historical_features(
        entity_frame([(1, T0), (2, T0), (1, T0 - US), (2, T0 + US)]), ["profile:score"]
    )
    # Exactly TTL old is expired; one microsecond younger is alive.
    assert _values(out) == [None, 2.0, 1.0, None]


def test_ties_on_event_time_are_broken_by_created_time(
    feature_store: FeatureStore, tmp_path: Path
) -> None:
    rows = [
        _row(1, T0, 9.0, created=T0 + timedelta(minutes=5)),  # the correction, written first
        _row(1, T0, 1.0, created=T0),
        _row(1, T0, 2.0, created=T0 + timedelta(minutes=1)),
    ]
    path = write_parquet(tmp_path / "p.parquet", rows, SCHEMA)
    _apply(feature_store, path)
    out = feature_store.get_historical_features(
        entity_frame([(1, T0), (1, T0 + timedelta(hours=1))]), ["profile:score", "profile:segment"]
    )
    assert _values(out) == [9.0, 9.0]
    assert _values(out, "segment") == ["s9", "s9"]


def test_out_of_order_rows_across_files(feature_store: FeatureStore, tmp_path: Path) -> None:
    folder = tmp_path / "profiles"
    write_parquet(folder / "b.parquet", [_row(1, T0 - timedelta(hours=2), 2.0)], SCHEMA)
    write_parquet(
        folder / "a.parquet",
        [_row(1, T0 + timedelta(hours=1), 3.0), _row(1, T0 - timedelta(hours=5), 1.0)],
        SCHEMA,
    )
    write_parquet(folder / "nested" / "c.parquet", [_row(1, T0 - timedelta(hours=3), 1.5)], SCHEMA)
    _apply(feature_store, folder)
    frame = entity_frame(
        [(1, T0), (1, T0 - timedelta(hours=4)), (1, T0 - timedelta(hours=2, microseconds=1))]
    )
    out = feature_store.get_historical_features(frame, ["profile:score"])
    assert _values(out) == [2.0, 1.0, 1.5]


def test_every_entity_row_returned_in_input_order_with_nulls(
    feature_store: FeatureStore, tmp_path: Path
) -> None:
    path = write_parquet(
        tmp_path / "p.parquet",
        [_row(k, T0 - timedelta(minutes=k), float(k)) for k in range(5)],
        SCHEMA,
    )
    _apply(feature_store, path)
    keys = [4, 99, 0, 3, 4, 3, 100, 1]
    frame = entity_frame([(k, T0) for k in keys]).append_column("label", pa.array(range(len(keys))))
    out = feature_store.get_historical_features(frame, ["profile:score"])
    assert out.column_names == ["customer_id", "event_timestamp", "label", "score"]
    assert out.column("label").to_pylist() == list(range(len(keys)))
    assert _values(out) == [4.0, None, 0.0, 3.0, 4.0, 3.0, None, 1.0]
    assert out.schema.field("score").type == pa.float64()


def test_multiple_views_and_two_join_columns(feature_store: FeatureStore, tmp_path: Path) -> None:
    profiles = write_parquet(tmp_path / "p.parquet", [_row(1, T0 - US, 1.0)], SCHEMA)
    pair_schema = pa.schema(
        [
            ("customer_id", pa.int64()),
            ("merchant", pa.string()),
            ("ts", TS),
            ("spend", pa.float64()),
        ]
    )
    pairs = write_parquet(
        tmp_path / "pairs.parquet",
        [
            {"customer_id": 1, "merchant": "m1", "ts": T0 - timedelta(hours=1), "spend": 10.0},
            {"customer_id": 1, "merchant": "m2", "ts": T0 - timedelta(hours=1), "spend": 20.0},
            {"customer_id": 2, "merchant": "m1", "ts": T0 - timedelta(hours=1), "spend": 30.0},
            {"customer_id": 1, "merchant": "m1", "ts": T0 + US, "spend": 99.0},
        ],
        pair_schema,
    )
    merchant = Entity("merchant", ["merchant"])
    pair_view = FeatureView(
        "customer_merchant",
        [CUSTOMER, merchant],
        FileSource("pairs", str(pairs), "ts"),
        [Feature("spend", "float64")],
        ttl=timedelta(days=7),
    )
    _apply(feature_store, profiles, pair_view)
    frame = pa.table(
        {
            "customer_id": [1, 1, 2, 2],
            "merchant": ["m1", "m2", "m1", "m2"],
            "event_timestamp": pa.array([T0] * 4, TS),
        }
    )
    out = feature_store.get_historical_features(
        frame, ["profile:score", "customer_merchant:spend"], full_feature_names=True
    )
    assert _values(out, "profile__score") == [1.0, 1.0, None, None]
    assert _values(out, "customer_merchant__spend") == [10.0, 20.0, 30.0, None]


def test_feature_service_and_wildcards(feature_store: FeatureStore, tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "p.parquet", [_row(1, T0, 5.0)], SCHEMA)
    source = FileSource("profiles", str(path), "ts", "created")
    view = FeatureView(
        "profile", CUSTOMER, source, [Feature("score", "float64"), Feature("segment", "string")]
    )
    feature_store.apply(
        Definitions(views=[view], services=[FeatureService("fraud_model", ["profile:*"])])
    )
    out = feature_store.get_historical_features(entity_frame([(1, T0)]), service="fraud_model")
    assert out.column_names[-2:] == ["score", "segment"]
    assert out.to_pylist()[0]["segment"] == "s5"


def test_timezones_are_normalized_to_utc(feature_store: FeatureStore, tmp_path: Path) -> None:
    naive_schema = pa.schema(
        [("customer_id", pa.int64()), ("ts", pa.timestamp("ns")), ("score", pa.float64())]
    )
    naive = T0.replace(tzinfo=None)
    path = write_parquet(
        tmp_path / "p.parquet",
        [
            {"customer_id": 1, "ts": naive - timedelta(hours=1), "score": 1.0},
            {"customer_id": 1, "ts": naive + timedelta(hours=1), "score": 2.0},
        ],
        naive_schema,
    )
    feature_store.apply(
        Definitions(
            views=[
                FeatureView(
                    "profile",
                    CUSTOMER,
                    FileSource("profiles", str(path), "ts"),
                    [Feature("score", "float64")],
                )
            ]
        )
    )
    plus_two = timezone(timedelta(hours=2))
    # 12:30 UTC as an aware time in UTC+2 (14:30+02:00), as naive UTC, and 13:30 naive.
    aware = pa.table(
        {
            "customer_id": [1, 1],
            "event_timestamp": pa.array(
                [
                    T0.astimezone(plus_two) + timedelta(minutes=30),
                    T0 + timedelta(hours=1, minutes=30),
                ],
                pa.timestamp("us", tz="+02:00"),
            ),
        }
    )
    naive_frame = pa.table(
        {
            "customer_id": [1, 1],
            "event_timestamp": pa.array(
                [naive + timedelta(minutes=30), naive + timedelta(hours=1, minutes=30)],
                pa.timestamp("us"),
            ),
        }
    )
    for frame in (aware, naive_frame):
        out = feature_store.get_historical_features(frame, ["profile:score"])
        assert _values(out) == [1.0, 2.0]
        assert out.column("event_timestamp").type == frame.column("event_timestamp").type


def test_nanosecond_source_times_never_leak(feature_store: FeatureStore, tmp_path: Path) -> None:
    schema = pa.schema(
        [("customer_id", pa.int64()), ("ts", pa.timestamp("ns", tz="UTC")), ("score", pa.float64())]
    )
    base = int(T0.timestamp()) * 10**9
    table = pa.table(
        {
            "customer_id": [1, 1],
            "ts": pa.array(
                [base - 1_000, base + 1], schema.field("ts").type
            ),  # 1 us before, 1 ns after
            "score": [1.0, 2.0],
        },
        schema=schema,
    )
    pq.write_table(table, tmp_path / "p.parquet")
    feature_store.apply(
        Definitions(
            views=[
                FeatureView(
                    "profile",
                    CUSTOMER,
                    FileSource("profiles", str(tmp_path / "p.parquet"), "ts"),
                    [Feature("score", "float64")],
                )
            ]
        )
    )
    out = feature_store.get_historical_features(entity_frame([(1, T0)]), ["profile:score"])
    assert _values(out) == [1.0]


def test_query_source_and_pandas_entity_frame(feature_store: FeatureStore, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    path = write_parquet(
        tmp_path / "p.parquet", [_row(1, T0 - US, 4.0), _row(2, T0 - US, 8.0)], SCHEMA
    )
    query = f"SELECT customer_id, ts, score * 10 AS score FROM read_parquet('{path}')"
    view = FeatureView(
        "scaled",
        CUSTOMER,
        QuerySource("scaled_profiles", query, "ts"),
        [Feature("score", "float64")],
        ttl=TTL,
    )
    feature_store.apply(Definitions(views=[view]))
    frame = pd.DataFrame(
        {"customer_id": [2, 1], "event_timestamp": pd.to_datetime([T0, T0], utc=True)}
    )
    out = feature_store.get_historical_features(frame, ["scaled:score"])
    assert isinstance(out, pa.Table)
    assert _values(out) == [80.0, 40.0]


def test_typed_features_come_back_in_their_declared_types(
    feature_store: FeatureStore, tmp_path: Path
) -> None:
    schema = pa.schema(
        [
            ("customer_id", pa.int32()),
            ("ts", TS),
            ("n", pa.int16()),
            ("flag", pa.bool_()),
            ("seen", pa.timestamp("ms", tz="UTC")),
            ("ratio", pa.int64()),
        ]
    )
    path = write_parquet(
        tmp_path / "p.parquet",
        [
            {
                "customer_id": 1,
                "ts": T0,
                "n": 3,
                "flag": True,
                "seen": T0 - timedelta(days=3),
                "ratio": 2,
            }
        ],
        schema,
    )
    view = FeatureView(
        "typed",
        CUSTOMER,
        FileSource("typed_src", str(path), "ts"),
        [
            Feature("n", "int64"),
            Feature("flag", "bool"),
            Feature("seen", "timestamp"),
            Feature("ratio", "float32"),
        ],
    )
    feature_store.apply(Definitions(views=[view]))
    out = feature_store.get_historical_features(entity_frame([(1, T0)]), ["typed:*"])
    assert out.schema.field("n").type == pa.int64()
    assert out.schema.field("flag").type == pa.bool_()
    assert out.schema.field("seen").type == pa.timestamp("us", tz="UTC")
    assert out.schema.field("ratio").type == pa.float32()
    assert out.to_pylist()[0]["seen"] == T0 - timedelta(days=3)
    assert out.to_pylist()[0]["n"] == 3


def test_empty_entity_frame_gives_empty_columns(
    feature_store: FeatureStore, tmp_path: Path
) -> None:
    path = write_parquet(tmp_path / "p.parquet", [_row(1, T0, 1.0)], SCHEMA)
    _apply(feature_store, path)
    out = feature_store.get_historical_features(entity_frame([]), ["profile:score"])
    assert out.num_rows == 0
    assert out.column_names[-1] == "score"


def test_entity_timestamp_column_can_be_renamed(
    feature_store: FeatureStore, tmp_path: Path
) -> None:
    path = write_parquet(tmp_path / "p.parquet", [_row(1, T0, 1.0)], SCHEMA)
    _apply(feature_store, path)
    frame = entity_frame([(1, T0)]).rename_columns(["customer_id", "when"])
    out = feature_store.get_historical_features(frame, ["profile:score"], timestamp_column="when")
    assert _values(out) == [1.0]


def test_many_rows_match_a_brute_force_reference(
    feature_store: FeatureStore, tmp_path: Path
) -> None:
    rng = random.Random(5)
    rows = []
    for key in range(20):
        for _ in range(30):
            ts = T0 + timedelta(minutes=rng.randrange(0, 60 * 24 * 3))
            rows.append(
                _row(
                    key,
                    ts,
                    round(rng.random(), 6),
                    created=ts + timedelta(seconds=rng.randrange(5)),
                )
            )
    path = write_parquet(tmp_path / "p.parquet", rows, SCHEMA)
    _apply(feature_store, path)
    queries = [
        (rng.randrange(22), T0 + timedelta(minutes=rng.randrange(-60, 60 * 24 * 4)))
        for _ in range(500)
    ]
    # Some events exactly at feature times.
    queries += [(r["customer_id"], r["ts"]) for r in rows[:50]]
    out = feature_store.get_historical_features(entity_frame(queries), ["profile:score"])

    def expected(key: int, at: datetime) -> float | None:
        alive = [r for r in rows if r["customer_id"] == key and at - TTL < r["ts"] <= at]
        if not alive:
            return None
        return max(alive, key=lambda r: (r["ts"], r["created"]))["score"]

    assert _values(out) == [expected(k, at) for k, at in queries]


def test_window_and_plain_views_in_one_call(feature_store: FeatureStore, tmp_path: Path) -> None:
    profiles = write_parquet(tmp_path / "p.parquet", [_row(1, T0 - US, 1.0)], SCHEMA)
    txn_schema = pa.schema([("customer_id", pa.int64()), ("ts", TS), ("amount", pa.float64())])
    txns = write_parquet(
        tmp_path / "t.parquet",
        [
            {"customer_id": 1, "ts": T0 - timedelta(hours=2), "amount": 5.0},
            {"customer_id": 1, "ts": T0, "amount": 7.0},
            {"customer_id": 1, "ts": T0 + US, "amount": 1000.0},
        ],
        txn_schema,
    )
    windows = FeatureView(
        "txn",
        CUSTOMER,
        FileSource("transactions", str(txns), "ts"),
        aggregations=[
            Aggregation("amount", "sum", timedelta(hours=1)),
            Aggregation("amount", "count", timedelta(days=1)),
        ],
    )
    _apply(feature_store, profiles, windows)
    out = feature_store.get_historical_features(
        entity_frame([(1, T0), (2, T0)]),
        ["txn:amount_sum_1h", "profile:score", "txn:amount_count_24h"],
    )
    assert out.column_names[-3:] == ["amount_sum_1h", "amount_count_24h", "score"]
    assert _values(out, "amount_sum_1h") == [7.0, 0.0]
    assert _values(out, "amount_count_24h") == [2, 0]
    assert _values(out) == [1.0, None]


def test_rows_in_the_offline_push_log_are_read_with_the_source(
    feature_store: FeatureStore, tmp_path: Path
) -> None:
    path = write_parquet(tmp_path / "p.parquet", [_row(1, T0 - timedelta(hours=2), 1.0)], SCHEMA)
    _apply(feature_store, path)
    pushed = pa.Table.from_pylist(
        [_row(1, T0 - timedelta(hours=1), 5.0), _row(1, T0 + US, 6.0)], schema=SCHEMA
    )
    append_push_log(feature_store.settings.resolved_offline_dir(), "profile", pushed, at=T0)
    out = feature_store.get_historical_features(
        entity_frame([(1, T0), (1, T0 - timedelta(minutes=90))]), ["profile:score"]
    )
    assert _values(out) == [5.0, 1.0]
