"""Push: fresh rows served online at once and kept in the offline log for training."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.features.online._views import (
    EVENTS_SCHEMA,
    PROFILE_SCHEMA,
    TS,
    acting_as,
    apply,
    at,
    profile,
    profile_view,
    spend_view,
    write_rows,
)

from steward.core import InvalidInputError, PermissionDeniedError
from steward.features import FeatureStore, UnknownFeatureError, offline_push_log_path


def _pushed(key: Any, hours: float, score: Any, /, **extra: Any) -> dict[str, Any]:
    row = {
        "customer_id": key,
        "ts": at(hours),
        "score": score,
        "segment": "pushed",
        "email": f"p{key}@example.com",
    }
    row.update(extra)
    return row


@pytest.fixture
def profiles(feature_store: FeatureStore, tmp_path: Path) -> FeatureStore:
    folder = tmp_path / "profiles"
    write_rows(folder, "part-0", [profile(1, at(1), 10.0), profile(2, at(1), 20.0)], PROFILE_SCHEMA)
    apply(feature_store, profile_view(folder))
    feature_store.materialize(end=at(2), progress=False)
    return feature_store


def _log(features: FeatureStore, view: str = "profile") -> pa.Table:
    folder = offline_push_log_path(features.settings.resolved_offline_dir(), view)
    return pa.concat_tables(pq.read_table(path) for path in sorted(folder.glob("*.parquet")))


def test_pushed_rows_are_served_and_logged(profiles: FeatureStore) -> None:
    features = profiles
    assert features.push("profile", [_pushed(1, 5, 15.0), _pushed(3, 6, 30.0)]) == 2
    online = features.get_online_features(
        ["profile:score", "profile:segment"],
        entity_rows=[{"customer_id": 1}, {"customer_id": 2}, {"customer_id": 3}],
    )
    assert online.values["score"] == [15.0, 20.0, 30.0]
    assert online.event_timestamps["score"] == [at(5), at(1), at(6)]
    log = _log(features)
    # The source's columns, typed as the source types them; the created time is the push time.
    assert log.schema == PROFILE_SCHEMA
    assert log.column("customer_id").to_pylist() == [1, 3]
    assert all(created is not None for created in log.column("created").to_pylist())


def test_training_sees_pushed_rows(profiles: FeatureStore) -> None:
    features = profiles
    features.push("profile", [_pushed(1, 5, 15.0)])
    entities = pa.table(
        {
            "customer_id": pa.array([1, 1], pa.int64()),
            "event_timestamp": pa.array([at(4), at(6)], TS),
        }
    )
    training = features.get_historical_features(entities, ["profile:score"])
    assert training.column("score").to_pylist() == [10.0, 15.0]


def test_an_older_push_is_logged_but_not_served(profiles: FeatureStore) -> None:
    features = profiles
    features.push("profile", [_pushed(1, 5, 15.0)])
    assert features.push("profile", [_pushed(1, 4, 14.0)]) == 1
    online = features.get_online_features(["profile:score"], entity_rows=[{"customer_id": 1}])
    assert online.values["score"] == [15.0]
    assert sorted(_log(features).column("score").to_pylist()) == [14.0, 15.0]


def test_pushing_the_same_rows_again_is_harmless(profiles: FeatureStore) -> None:
    features = profiles
    rows = [_pushed(1, 5, 15.0, created=at(5))]
    features.push("profile", rows)
    features.push("profile", rows)
    online = features.get_online_features(["profile:score"], entity_rows=[{"customer_id": 1}])
    assert online.values["score"] == [15.0]
    (event, _) = features.store.audit.list_events(action="features.push")
    assert event.details["rows"] == 1 and event.details["written"] == 0


def test_keys_and_values_are_cast_to_the_source_types(profiles: FeatureStore) -> None:
    features = profiles
    naive = at(5).replace(tzinfo=None)
    features.push("profile", [_pushed("7", 5, 1, ts=naive)])  # type: ignore[arg-type]
    online = features.get_online_features(["profile:score"], entity_rows=[{"customer_id": 7}])
    assert online.values["score"] == [1.0]
    assert online.event_timestamps["score"] == [at(5)]
    log = _log(features)
    assert log.column("customer_id").to_pylist() == [7]
    assert log.column("score").type == pa.float64()


def test_pandas_and_arrow_rows(profiles: FeatureStore) -> None:
    pd = pytest.importorskip("pandas")
    features = profiles
    frame = pd.DataFrame([_pushed(8, 5, 8.0)])
    assert features.push("profile", frame) == 1
    assert features.push("profile", pa.Table.from_pylist([_pushed(9, 5, 9.0)])) == 1
    online = features.get_online_features(
        ["profile:score"], entity_rows=[{"customer_id": 8}, {"customer_id": 9}]
    )
    assert online.values["score"] == [8.0, 9.0]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [{"customer_id": 1, "ts": at(5), "score": 1.0}],
            r"lack the column\(s\) \['segment', 'email'\]",
        ),
        ([_pushed(1, 5, 1.0, scor=2.0)], "did you mean 'score'"),
        ([_pushed(1, 5, 1.0, customer_id=None)], "null in 1 row"),
        ([_pushed(1, 5, 1.0, ts=None)], "null in 1 row"),
        ([_pushed(1, 5, 1.0, score="high")], "'score'"),
        ([_pushed(1, 5, 1.0, customer_id="one")], "'customer_id'"),
        ([_pushed(1, 5, 1.0), {"customer_id": 2}], "row 1 has the columns"),
        ({"customer_id": 1}, "list of dicts"),
        ("customer_id=1", "list of dicts"),
        ([["customer_id", 1]], "row 0 is a list"),
    ],
)
def test_bad_pushes_are_refused_and_change_nothing(
    profiles: FeatureStore, rows: Any, message: str
) -> None:
    features = profiles
    with pytest.raises(InvalidInputError, match=message):
        features.push("profile", rows)
    folder = offline_push_log_path(features.settings.resolved_offline_dir(), "profile")
    assert not folder.exists() or not list(folder.glob("*"))
    online = features.get_online_features(["profile:score"], entity_rows=[{"customer_id": 1}])
    assert online.values["score"] == [10.0]
    assert features.store.audit.list_events(action="features.push") == []


def test_an_empty_push_does_nothing(profiles: FeatureStore) -> None:
    assert profiles.push("profile", []) == 0
    assert profiles.store.audit.list_events(action="features.push") == []


def test_unknown_view(profiles: FeatureStore) -> None:
    with pytest.raises(UnknownFeatureError, match="did you mean 'profile'"):
        profiles.push("profiles", [_pushed(1, 5, 1.0)])


def test_pushing_needs_the_scope(profiles: FeatureStore) -> None:
    reader = acting_as(profiles, "features:read")
    try:
        with pytest.raises(PermissionDeniedError, match="features:push"):
            reader.push("profile", [_pushed(1, 5, 15.0)])
    finally:
        reader.close()
    online = profiles.get_online_features(["profile:score"], entity_rows=[{"customer_id": 1}])
    assert online.values["score"] == [10.0]


def test_pushes_are_audited_without_values(profiles: FeatureStore) -> None:
    profiles.push("profile", [_pushed(1, 5, 15.0), _pushed(2, 5, 25.0)])
    (event,) = profiles.store.audit.list_events(action="features.push")
    assert event.object_id == "profile"
    assert event.details["rows"] == 2 and event.details["written"] == 2
    assert "example.com" not in str(event.details) and "15.0" not in str(event.details)


def test_pushed_events_update_window_aggregates(
    feature_store: FeatureStore, tmp_path: Path
) -> None:
    folder = tmp_path / "transactions"
    write_rows(
        folder,
        "part-0",
        [{"customer_id": 1, "ts": at(1), "amount": 10.0}],
        EVENTS_SCHEMA,
    )
    apply(feature_store, spend_view(folder))
    feature_store.materialize(end=at(2), progress=False)
    pushed = [
        {"customer_id": 1, "ts": at(3), "amount": 5.0},
        {"customer_id": 2, "ts": at(4), "amount": 7.0},
    ]
    assert feature_store.push("spend", pushed) == 2
    online = feature_store.get_online_features(
        ["spend:amount_sum_24h", "spend:amount_count_7d"],
        entity_rows=[{"customer_id": 1}, {"customer_id": 2}],
    )
    # Aggregated as of the newest pushed event, over the source and the log together.
    assert online.values == {"amount_sum_24h": [15.0, 7.0], "amount_count_7d": [2, 1]}
    assert online.event_timestamps["amount_sum_24h"] == [at(4), at(4)]
    # A later materialization as of an earlier time does not undo it.
    feature_store.materialize(end=at(3), progress=False)
    again = feature_store.get_online_features(
        ["spend:amount_sum_24h"], entity_rows=[{"customer_id": 2}]
    )
    assert again.values["amount_sum_24h"] == [7.0]
    assert (
        feature_store.materialize(end=at(4) + timedelta(hours=1), progress=False).rows_written == 2
    )
