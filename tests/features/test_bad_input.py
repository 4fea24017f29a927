"""Bad input gets a specific error naming what was wrong; nothing registered is lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from tests.features._data import T0, TS, entity_frame, write_parquet

from steward.core import InvalidInputError, NotFoundError
from steward.features import (
    Aggregation,
    Definitions,
    Entity,
    EntityFrameError,
    Feature,
    FeatureStore,
    FeatureView,
    FileSource,
    QuerySource,
    SourceSchemaError,
    UnknownFeatureError,
)

CUSTOMER = Entity("customer", ["customer_id"])
SCHEMA = pa.schema([("customer_id", pa.int64()), ("ts", TS), ("score", pa.float64())])


@pytest.fixture
def applied(feature_store: FeatureStore, tmp_path: Path) -> tuple[FeatureStore, Path]:
    path = write_parquet(
        tmp_path / "p.parquet", [{"customer_id": 1, "ts": T0, "score": 1.0}], SCHEMA
    )
    view = FeatureView(
        "profile",
        CUSTOMER,
        FileSource("profiles", str(path), "ts"),
        [Feature("score", "float64")],
        ttl=timedelta(days=1),
    )
    feature_store.apply(Definitions(views=[view]))
    return feature_store, path


def test_entity_frame_missing_join_key(applied: tuple[FeatureStore, Path]) -> None:
    features, _ = applied
    frame = pa.table({"client": [1], "event_timestamp": pa.array([T0], TS)})
    with pytest.raises(EntityFrameError, match=r"lacks column\(s\) \['customer_id'\]") as info:
        features.get_historical_features(frame, ["profile:score"])
    assert isinstance(info.value, InvalidInputError)


def test_entity_frame_missing_timestamp(applied: tuple[FeatureStore, Path]) -> None:
    features, _ = applied
    with pytest.raises(EntityFrameError, match="timestamp_column="):
        features.get_historical_features(pa.table({"customer_id": [1]}), ["profile:score"])


def test_entity_frame_with_null_keys_or_times(applied: tuple[FeatureStore, Path]) -> None:
    features, _ = applied
    frame = pa.table({"customer_id": [1, None], "event_timestamp": pa.array([T0, T0], TS)})
    with pytest.raises(EntityFrameError, match="'customer_id' has 1 null"):
        features.get_historical_features(frame, ["profile:score"])
    frame = pa.table({"customer_id": [1, 2], "event_timestamp": pa.array([T0, None], TS)})
    with pytest.raises(EntityFrameError, match="1 null timestamp"):
        features.get_historical_features(frame, ["profile:score"])


@pytest.mark.parametrize(
    "stamps",
    [pa.array(["2025-03-01T12:00:00"]), pa.array([1_740_830_400]), pa.array([1.5])],
    ids=["string", "int", "float"],
)
def test_entity_frame_with_wrong_timestamp_type(
    applied: tuple[FeatureStore, Path], stamps: pa.Array
) -> None:
    features, _ = applied
    frame = pa.table({"customer_id": [1], "event_timestamp": stamps})
    with pytest.raises(EntityFrameError, match=r"'event_timestamp' is .*not a timestamp"):
        features.get_historical_features(frame, ["profile:score"])


def test_entity_frame_mixing_naive_and_aware_times(applied: tuple[FeatureStore, Path]) -> None:
    pd = pytest.importorskip("pandas")
    features, _ = applied
    frame = pd.DataFrame(
        {
            "customer_id": [1, 1],
            "event_timestamp": pd.Series([T0, T0.replace(tzinfo=None)], dtype=object),
        }
    )
    with pytest.raises(EntityFrameError, match="'event_timestamp' mixes timezone-naive"):
        features.get_historical_features(frame, ["profile:score"])


def test_entity_frame_dates_are_midnight_utc(applied: tuple[FeatureStore, Path]) -> None:
    features, _ = applied
    frame = pa.table(
        {"customer_id": [1, 1], "event_timestamp": pa.array([T0.date(), T0.date() + timedelta(1)])}
    )
    out = features.get_historical_features(frame, ["profile:score"])
    assert out.column("score").to_pylist() == [None, 1.0]


def test_entity_frame_of_an_unsupported_type(applied: tuple[FeatureStore, Path]) -> None:
    features, _ = applied
    with pytest.raises(EntityFrameError, match="type list is not supported"):
        features.get_historical_features([{"customer_id": 1}], ["profile:score"])


def test_entity_key_text_against_numeric_source(applied: tuple[FeatureStore, Path]) -> None:
    features, _ = applied
    frame = pa.table({"customer_id": ["1"], "event_timestamp": pa.array([T0], TS)})
    with pytest.raises(EntityFrameError, match="'customer_id' is string in the entity frame"):
        features.get_historical_features(frame, ["profile:score"])


def test_unknown_features_list_close_matches(applied: tuple[FeatureStore, Path]) -> None:
    features, _ = applied
    frame = entity_frame([(1, T0)])
    with pytest.raises(UnknownFeatureError, match="did you mean 'profile:score'") as info:
        features.get_historical_features(frame, ["profile:scor"])
    assert isinstance(info.value, NotFoundError)
    with pytest.raises(UnknownFeatureError, match="did you mean 'profile'"):
        features.get_historical_features(frame, ["profiles:score"])
    with pytest.raises(UnknownFeatureError, match="no feature service 'fraud'"):
        features.get_historical_features(frame, service="fraud")


def test_features_and_service_are_exclusive(applied: tuple[FeatureStore, Path]) -> None:
    features, _ = applied
    frame = entity_frame([(1, T0)])
    with pytest.raises(InvalidInputError, match="either features"):
        features.get_historical_features(frame)
    with pytest.raises(InvalidInputError, match="either features"):
        features.get_historical_features(frame, ["profile:score"], service="x")
    with pytest.raises(InvalidInputError, match="must be a list"):
        features.get_historical_features(frame, "profile:score")


def test_nothing_registered_says_to_apply(feature_store: FeatureStore) -> None:
    with pytest.raises(UnknownFeatureError, match="steward features apply"):
        feature_store.get_historical_features(entity_frame([(1, T0)]), ["profile:score"])


def test_output_name_clashes(applied: tuple[FeatureStore, Path]) -> None:
    features, _ = applied
    frame = entity_frame([(1, T0)]).append_column("score", pa.array([0.5]))
    with pytest.raises(EntityFrameError, match="full_feature_names=True"):
        features.get_historical_features(frame, ["profile:score"])
    out = features.get_historical_features(frame, ["profile:score"], full_feature_names=True)
    assert out.column("profile__score").to_pylist() == [1.0]


def test_source_schema_drift_after_apply(applied: tuple[FeatureStore, Path]) -> None:
    features, path = applied
    write_parquet(
        path,
        [{"customer_id": 1, "ts": T0, "points": 1.0}],
        pa.schema([("customer_id", pa.int64()), ("ts", TS), ("points", pa.float64())]),
    )
    with pytest.raises(SourceSchemaError, match=r"no column 'score'.*columns: customer_id, points"):
        features.get_historical_features(entity_frame([(1, T0)]), ["profile:score"])
    write_parquet(
        path,
        [{"customer_id": 1, "ts": T0, "score": "high"}],
        pa.schema([("customer_id", pa.int64()), ("ts", TS), ("score", pa.string())]),
    )
    with pytest.raises(SourceSchemaError, match=r"declared float64 but .* holds it as VARCHAR"):
        features.get_historical_features(entity_frame([(1, T0)]), ["profile:score"])


def test_source_files_removed(applied: tuple[FeatureStore, Path]) -> None:
    features, path = applied
    path.unlink()
    with pytest.raises(SourceSchemaError, match="matches no Parquet files"):
        features.get_historical_features(entity_frame([(1, T0)]), ["profile:score"])


def test_apply_refuses_views_over_missing_columns(
    applied: tuple[FeatureStore, Path], tmp_path: Path
) -> None:
    features, path = applied
    before = features.definitions_version()
    view = FeatureView(
        "profile",
        CUSTOMER,
        FileSource("profiles", str(path), "ts"),
        [Feature("score", "float64"), Feature("age", "int64")],
    )
    with pytest.raises(SourceSchemaError, match="no column 'age'"):
        features.apply(Definitions(views=[view]))
    bad_ts = FeatureView(
        "profile",
        CUSTOMER,
        FileSource("profiles", str(path), "score"),
        [Feature("score", "float64")],
    )
    with pytest.raises(SourceSchemaError, match="timestamp_field 'score' is DOUBLE"):
        features.apply(Definitions(views=[bad_ts]))
    missing = FeatureView(
        "other",
        CUSTOMER,
        FileSource("gone", str(tmp_path / "nope" / "*.parquet"), "ts"),
        [Feature("score", "float64")],
    )
    with pytest.raises(SourceSchemaError, match="matches no Parquet files"):
        features.apply(Definitions(views=[missing]))
    assert features.definitions_version() == before
    assert sorted(features.definitions().views) == ["profile"]


def test_apply_refuses_aggregating_text(feature_store: FeatureStore, tmp_path: Path) -> None:
    schema = pa.schema([("customer_id", pa.int64()), ("ts", TS), ("merchant", pa.string())])
    path = write_parquet(
        tmp_path / "t.parquet", [{"customer_id": 1, "ts": T0, "merchant": "a"}], schema
    )
    view = FeatureView(
        "txn",
        CUSTOMER,
        FileSource("t", str(path), "ts"),
        aggregations=[Aggregation("merchant", "sum", timedelta(hours=1))],
    )
    with pytest.raises(SourceSchemaError, match="sum of 'merchant' needs a numeric column"):
        feature_store.apply(Definitions(views=[view]))


def test_broken_query_source(feature_store: FeatureStore) -> None:
    view = FeatureView(
        "q",
        CUSTOMER,
        QuerySource("q_src", "SELECT * FROM no_such_table", "ts"),
        [Feature("score", "float64")],
    )
    with pytest.raises(SourceSchemaError, match="source 'q_src' cannot be read"):
        feature_store.apply(Definitions(views=[view]))


def test_hostile_names_are_refused_before_reaching_sql() -> None:
    with pytest.raises(InvalidInputError, match="snake_case"):
        Feature('score"; DROP TABLE x; --', "float64")
    with pytest.raises(InvalidInputError, match="snake_case"):
        Entity("customer", ["id) OR 1=1"])


def test_quoted_source_path_is_safe(feature_store: FeatureStore, tmp_path: Path) -> None:
    folder = tmp_path / "it's"
    path = write_parquet(folder / "p.parquet", [{"customer_id": 1, "ts": T0, "score": 3.0}], SCHEMA)
    view = FeatureView(
        "profile", CUSTOMER, FileSource("profiles", str(path), "ts"), [Feature("score", "float64")]
    )
    feature_store.apply(Definitions(views=[view]))
    out = feature_store.get_historical_features(
        entity_frame([(1, datetime(2026, 1, 1, tzinfo=UTC))]), ["profile:score"]
    )
    assert out.column("score").to_pylist() == [3.0]
