"""The SDK's feature store: ``st.features``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa
from tests.features._data import T0, TS, entity_frame, write_parquet

from steward.features import Definitions, Entity, Feature, FeatureStore, FeatureView, FileSource
from steward.sdk import connect


def test_sdk_client_carries_a_feature_store(database_url: str, tmp_path: Path) -> None:
    path = write_parquet(
        tmp_path / "p.parquet",
        [{"customer_id": 7, "ts": T0, "score": 0.25}],
        pa.schema([("customer_id", pa.int64()), ("ts", TS), ("score", pa.float64())]),
    )
    view = FeatureView(
        "profile",
        Entity("customer", ["customer_id"]),
        FileSource("profiles", str(path), "ts"),
        [Feature("score", "float64")],
        ttl=timedelta(days=1),
    )
    with connect(home=tmp_path / "home", database_url=database_url) as st:
        assert isinstance(st.features, FeatureStore)
        assert st.features.settings.home == tmp_path / "home"
        st.features.apply(Definitions(views=[view]))
        out = st.features.get_historical(entity_frame([(7, T0)]), ["profile:score"])
    assert out.column("score").to_pylist() == [0.25]
