"""Rows of one entity with the same event time: the first in the source's order wins, everywhere.

Retrieval (an ASOF join) and materialization (a ranking) pick the same row, so
what training sees and what serving serves agree. Many entities with many tied
rows make a pick left to the engine's threads show up as a mismatch.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.features._data import T0, TS, entity_frame

from steward.features import (
    Definitions,
    Entity,
    Feature,
    FeatureStore,
    FeatureView,
    FileSource,
    QuerySource,
)

CUSTOMER = Entity("customer", ["customer_id"])
SCHEMA = pa.schema(
    [("customer_id", pa.int64()), ("ts", TS), ("created", TS), ("score", pa.float64())]
)
ENTITIES = 400
TIED = 6  # rows per entity at the same event time


def _rows(file: int, created: bool) -> list[dict[str, Any]]:
    # Entity k has TIED rows at T0 + k seconds in each file; the score says file and place.
    # A shuffle would not make the order less clear; interleaving entities is enough.
    out = []
    for place in range(TIED):
        for key in range(ENTITIES):
            out.append(
                {
                    "customer_id": key,
                    "ts": T0 + timedelta(seconds=key),
                    "created": T0 if created else None,
                    "score": float(file * 1_000 + place * 100 + key % 100),
                }
            )
    return out


def _files(folder: Path, created: bool) -> None:
    # Written second-file-first: the path order, not the writing order, is the source's order.
    folder.mkdir(parents=True, exist_ok=True)
    for file in (1, 0):
        table = pa.Table.from_pylist(_rows(file, created), schema=SCHEMA)
        pq.write_table(table, folder / f"part-{file}.parquet", row_group_size=500)


def _view(source: FileSource | QuerySource) -> FeatureView:
    return FeatureView(
        "tied", CUSTOMER, source, [Feature("score", "float64")], ttl=timedelta(days=1)
    )


def _offline_and_online(features: FeatureStore) -> tuple[list[Any], list[Any]]:
    frame = entity_frame([(k, T0 + timedelta(hours=1)) for k in range(ENTITIES)])
    offline = features.get_historical_features(frame, ["tied:score"]).column("score").to_pylist()
    features.materialize(end=T0 + timedelta(hours=1), progress=False)
    rows = [{"customer_id": k} for k in range(ENTITIES)]
    online = features.get_online_features(["tied:score"], entity_rows=rows).values["score"]
    return offline, online


@pytest.mark.parametrize("created", [False, True], ids=["no created time", "equal created times"])
def test_the_first_row_in_file_order_wins_offline_and_online(
    feature_store: FeatureStore, tmp_path: Path, created: bool
) -> None:
    folder = tmp_path / "tied"
    _files(folder, created)
    source = FileSource("tied_src", str(folder), "ts", "created" if created else None)
    feature_store.apply(Definitions(entities=[CUSTOMER], views=[_view(source)]))
    offline, online = _offline_and_online(feature_store)
    first = [float(key % 100) for key in range(ENTITIES)]  # part-0, first place
    assert offline == first
    assert online == first


def test_a_query_source_breaks_ties_the_same_way_on_every_read(
    feature_store: FeatureStore, tmp_path: Path
) -> None:
    folder = tmp_path / "tied"
    _files(folder, created=False)
    query = f"SELECT * FROM read_parquet('{folder}/*.parquet')"
    feature_store.apply(
        Definitions(entities=[CUSTOMER], views=[_view(QuerySource("q", query, "ts"))])
    )
    offline, online = _offline_and_online(feature_store)
    assert offline == online
    frame = entity_frame([(k, T0 + timedelta(hours=1)) for k in range(ENTITIES)])
    for _ in range(3):
        again = feature_store.get_historical_features(frame, ["tied:score"])
        assert again.column("score").to_pylist() == offline
