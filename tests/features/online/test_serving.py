"""get_online_features: values with event times and statuses, access, bad requests, backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from tests.features.online._backends import BACKENDS, open_store, store_url
from tests.features.online._views import (
    CUSTOMER,
    PROFILE_SCHEMA,
    T0,
    acting_as,
    apply,
    at,
    profile,
    profile_view,
    write_rows,
)

from steward.core import FrozenClock, InvalidInputError, PermissionDeniedError, load_settings
from steward.features import (
    Definitions,
    Entity,
    EntityFrameError,
    Feature,
    FeatureSettings,
    FeatureStore,
    FeatureView,
    FileSource,
    UnknownFeatureError,
)
from steward.store import Store, StoreSettings

SCORES = ["profile:score", "profile:segment"]


@pytest.fixture
def served(feature_store: FeatureStore, tmp_path: Path) -> FeatureStore:
    folder = tmp_path / "profiles"
    rows = [profile(1, at(1), 10.0), profile(2, at(2), 20.0), profile(3, at(3), 30.0)]
    rows[2]["segment"] = None
    write_rows(folder, "part-0", rows, PROFILE_SCHEMA)
    apply(feature_store, profile_view(folder))
    feature_store.store.clock = FrozenClock(at(10))
    feature_store.materialize(progress=False)
    return feature_store


def _rows(*keys: Any) -> list[dict[str, Any]]:
    return [{"customer_id": key} for key in keys]


def test_values_event_times_and_statuses(served: FeatureStore) -> None:
    online = served.get_online_features(SCORES, entity_rows=_rows(1, 3, 4))
    assert len(online) == 3 and online.names == ["score", "segment"]
    assert online.to_dict() == {
        "customer_id": [1, 3, 4],
        "score": [10.0, 30.0, None],
        "segment": ["s10", None, None],
    }
    assert online.event_timestamps["score"] == [at(1), at(3), None]
    assert online.statuses == {
        "score": ["present", "present", "not_found"],
        "segment": ["present", "null", "not_found"],
    }
    assert online.missing["segment"] == [False, True, True]


def test_values_older_than_the_ttl_are_flagged_and_optionally_dropped(served: FeatureStore) -> None:
    served.store.clock = FrozenClock(at(1) + timedelta(days=30, minutes=30))
    online = served.get_online_features(["profile:score"], entity_rows=_rows(1, 2))
    assert online.values["score"] == [10.0, 20.0]  # served, with their age visible
    assert online.statuses["score"] == ["outside_ttl", "present"]
    strict = served.get_online_features(
        ["profile:score"], entity_rows=_rows(1, 2), enforce_ttl=True
    )
    assert strict.values["score"] == [None, 20.0]
    assert strict.missing["score"] == [True, False]
    assert strict.event_timestamps["score"] == [at(1), at(2)]


def test_entity_rows_as_arrow_or_pandas(served: FeatureStore) -> None:
    table = pa.table({"customer_id": [2, 1]})
    online = served.get_online_features(["profile:score"], entity_rows=table)
    assert online.to_dict() == {"customer_id": [2, 1], "score": [20.0, 10.0]}
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"customer_id": [3]})
    assert served.get_online_features(["profile:score"], frame).values == {"score": [30.0]}


def test_keys_typed_as_text_find_integer_keys(served: FeatureStore) -> None:
    online = served.get_online_features(["profile:score"], entity_rows=_rows("2", 2.0))
    assert online.values["score"] == [20.0, 20.0]


def test_services_and_full_feature_names(served: FeatureStore) -> None:
    online = served.get_online_features(service="scoring", entity_rows=_rows(2))
    assert online.to_dict() == {"customer_id": [2], "score": [20.0], "segment": ["s20"]}
    full = served.get_online(["profile:*"], _rows(2), full_feature_names=True)
    assert full.names == ["profile__score", "profile__segment", "profile__email"]
    once = served.get_online_features((ref for ref in ["profile:score"]), _rows(2))
    assert once.values == {"score": [20.0]}


def test_to_arrow_types_columns_and_adds_metadata(served: FeatureStore) -> None:
    table = served.get_online_features(SCORES, entity_rows=_rows(1, 4)).to_arrow(metadata=True)
    assert table.column_names == [
        "customer_id",
        "score",
        "segment",
        "score__event_timestamp",
        "score__status",
        "segment__event_timestamp",
        "segment__status",
    ]
    assert table.schema.field("score").type == pa.float64()
    assert table.column("score__status").to_pylist() == ["present", "not_found"]
    assert table.column("score__event_timestamp").to_pylist() == [at(1), None]


def test_views_of_different_entities_in_one_request(served: FeatureStore, tmp_path: Path) -> None:
    merchant = Entity("merchant", ["merchant_id", "region"])
    folder = tmp_path / "merchants"
    schema = pa.schema(
        [
            ("merchant_id", pa.int64()),
            ("region", pa.string()),
            ("ts", PROFILE_SCHEMA.field("ts").type),
            ("risk", pa.float64()),
        ]
    )
    write_rows(
        folder, "part-0", [{"merchant_id": 7, "region": "eu", "ts": at(1), "risk": 0.9}], schema
    )
    merchants = FeatureView(
        "merchant_risk",
        merchant,
        FileSource("merchants", str(folder), "ts"),
        [Feature("risk", "float64")],
        ttl=timedelta(days=1),
    )
    served.apply(
        Definitions(
            entities=[CUSTOMER, merchant], views=[profile_view(tmp_path / "profiles"), merchants]
        )
    )
    served.materialize(views=["merchant_risk"], progress=False)
    online = served.get_online_features(
        ["profile:score", "merchant_risk:risk"],
        entity_rows=[
            {"customer_id": 1, "merchant_id": 7, "region": "eu"},
            {"customer_id": 2, "merchant_id": 7, "region": "us"},
        ],
    )
    assert online.to_dict() == {
        "customer_id": [1, 2],
        "merchant_id": [7, 7],
        "region": ["eu", "us"],
        "score": [10.0, 20.0],
        "risk": [0.9, None],
    }


def test_a_newly_applied_feature_is_served_once_materialized(
    served: FeatureStore, tmp_path: Path
) -> None:
    before = served.get_online_features(["profile:score"], entity_rows=_rows(1))
    assert before.values["score"] == [10.0]
    folder = tmp_path / "profiles"
    view = profile_view(folder)
    wider = FeatureView(
        "profile",
        CUSTOMER,
        view.source,
        [*view.features, Feature("created_at_source", "timestamp")],
        ttl=view.ttl,
    )
    write_rows(
        folder,
        "part-0",
        [{**profile(1, at(4), 11.0), "created_at_source": at(0)}],
        PROFILE_SCHEMA.append(pa.field("created_at_source", PROFILE_SCHEMA.field("ts").type)),
    )
    served.apply(Definitions(entities=[CUSTOMER], views=[wider]))
    online = served.get_online_features(["profile:created_at_source"], entity_rows=_rows(1))
    assert online.statuses["created_at_source"] == ["null"]
    served.materialize(progress=False)
    online = served.get_online_features(["profile:score", "profile:created_at_source"], _rows(1))
    assert online.values == {"score": [11.0], "created_at_source": [at(0)]}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"features": ["profile:scor"], "entity_rows": _rows(1)},
            UnknownFeatureError,
            "profile:score",
        ),
        ({"features": ["profle:score"], "entity_rows": _rows(1)}, UnknownFeatureError, "profile"),
        (
            {"features": SCORES, "service": "scoring", "entity_rows": _rows(1)},
            InvalidInputError,
            "not both",
        ),
        ({"entity_rows": _rows(1)}, InvalidInputError, "not both or neither"),
        ({"features": "profile:score", "entity_rows": _rows(1)}, InvalidInputError, "list of"),
        ({"service": "scorin", "entity_rows": _rows(1)}, UnknownFeatureError, "scoring"),
        ({"features": SCORES}, InvalidInputError, "entity_rows"),
        ({"features": SCORES, "entity_rows": {"customer_id": 1}}, InvalidInputError, "entity_rows"),
        (
            {"features": SCORES, "entity_rows": [{"client_id": 1}]},
            EntityFrameError,
            "lacks join key 'customer_id'",
        ),
        (
            {"features": SCORES, "entity_rows": [{"customer_id": 1}, 5]},
            EntityFrameError,
            "row 1 is a int",
        ),
        (
            {"features": SCORES, "entity_rows": [{"customer_id": None}]},
            InvalidInputError,
            "null join-key",
        ),
        (
            {"features": SCORES, "entity_rows": [{"customer_id": 1.5}]},
            InvalidInputError,
            "cannot key",
        ),
    ],
)
def test_bad_requests_name_the_problem(
    served: FeatureStore, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        served.get_online_features(**kwargs)


def test_output_names_that_clash_need_full_names(served: FeatureStore, tmp_path: Path) -> None:
    view = profile_view(tmp_path / "profiles")
    twin = FeatureView(
        "profile_twin", CUSTOMER, view.source, [Feature("score", "float64")], ttl=view.ttl
    )
    served.apply(Definitions(entities=[CUSTOMER], views=[view, twin]))
    with pytest.raises(EntityFrameError, match="full_feature_names"):
        served.get_online_features(["profile:score", "profile_twin:score"], entity_rows=_rows(1))
    online = served.get_online_features(
        ["profile:score", "profile_twin:score"], entity_rows=_rows(1), full_feature_names=True
    )
    assert online.values == {"profile__score": [10.0], "profile_twin__score": [None]}


def test_pii_features_need_their_scope_and_reads_are_counted(served: FeatureStore) -> None:
    plain = acting_as(served, "features:read")
    trusted = acting_as(served, "features:read", "features:read:pii")
    try:
        assert plain.get_online_features(SCORES, entity_rows=_rows(1)).values["score"] == [10.0]
        assert served.store.audit.list_events(action="features.read_pii") == []
        with pytest.raises(PermissionDeniedError, match="features:read:pii"):
            plain.get_online_features(["profile:email"], entity_rows=_rows(1))
        online = trusted.get_online_features(
            ["profile:email", "profile:score"], entity_rows=_rows(1, 2)
        )
        assert online.values["email"] == ["c1@example.com", "c2@example.com"]
    finally:
        plain.close()
        trusted.close()
    (event,) = served.store.audit.list_events(action="features.read_pii")
    assert event.object_id == "profile" and event.actor == "analyst"
    assert event.details["features"] == ["email"] and event.details["rows"] == 2
    assert event.details["path"] == "online"
    assert "example.com" not in str(event.details)
    denied = served.store.audit.list_events(action="access.denied")
    assert denied and denied[0].details["scope"] == "features:read:pii"


def test_reading_needs_the_read_scope(served: FeatureStore) -> None:
    nobody = acting_as(served)
    try:
        with pytest.raises(PermissionDeniedError, match="features:read"):
            nobody.get_online_features(SCORES, entity_rows=_rows(1))
    finally:
        nobody.close()


@pytest.fixture(params=BACKENDS)
def on_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeatureStore]:
    # A feature store whose online store is each backend (metadata on SQLite).
    url = store_url(request.param, tmp_path)
    with open_store(request.param, tmp_path, url):  # skips when Redis is down; purges after
        home = tmp_path / "home"
        store = Store.open(load_settings(StoreSettings, home=home), clock=FrozenClock(at(10)))
        features = FeatureStore(
            store, load_settings(FeatureSettings, home=home, online_store_url=url)
        )
        try:
            yield features
        finally:
            features.close()
            store.close()


def test_materialize_push_and_read_on_each_backend(
    on_backend: FeatureStore, tmp_path: Path
) -> None:
    folder = tmp_path / "profiles"
    write_rows(
        folder,
        "part-0",
        [profile(k, at(k % 5), float(k)) for k in range(100)],
        PROFILE_SCHEMA,
    )
    apply(on_backend, profile_view(folder))
    assert on_backend.materialize(progress=False, batch_rows=7).rows_written == 100
    assert on_backend.materialize(progress=False).rows_written == 0
    on_backend.push(
        "profile",
        [{"customer_id": 3, "ts": at(6), "score": -3.0, "segment": "p", "email": "x@example.com"}],
    )
    online = on_backend.get_online_features(SCORES, entity_rows=_rows(*range(105)))
    assert online.values["score"][:5] == [0.0, 1.0, 2.0, -3.0, 4.0]
    assert online.values["score"][5:100] == [float(k) for k in range(5, 100)]
    assert online.statuses["score"][100:] == ["not_found"] * 5
    assert online.event_timestamps["score"][3] == at(6)
    assert T0 < online.event_timestamps["score"][4] < at(10)
