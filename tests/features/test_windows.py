"""Window aggregates against a brute-force reference, for training and for "now"."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from tests.features._data import T0, TS, US, entity_frame, write_parquet

from steward.features import (
    Aggregation,
    Definitions,
    Entity,
    Feature,
    FeatureDefinitionError,
    FeatureStore,
    FeatureView,
    FileSource,
    compute_window_aggregates,
)

CUSTOMER = Entity("customer", ["customer_id"])
SCHEMA = pa.schema(
    [("customer_id", pa.int64()), ("ts", TS), ("amount", pa.float64()), ("merchant", pa.string())]
)
WINDOWS = [timedelta(hours=1), timedelta(hours=24), timedelta(days=7)]
FUNCTIONS = ["count", "sum", "mean", "min", "max", "count_distinct"]


def _view(path: Path) -> FeatureView:
    aggregations = [
        Aggregation("merchant" if fn == "count_distinct" else "amount", fn, window)  # type: ignore[arg-type]
        for window in WINDOWS
        for fn in FUNCTIONS
    ]
    return FeatureView(
        "txn", CUSTOMER, FileSource("transactions", str(path), "ts"), aggregations=aggregations
    )


def _expected(events: list[dict[str, Any]], agg: Aggregation, key: int, at: datetime) -> Any:
    inside = [
        e
        for e in events
        if e["customer_id"] == key and at - agg.window < e["ts"] <= at and e[agg.column] is not None
    ]
    values = [e[agg.column] for e in inside]
    if agg.function == "count":
        return len(values)
    if agg.function == "count_distinct":
        return len(set(values))
    if agg.function == "sum":
        return sum(values) if values else 0.0
    if not values:
        return None
    if agg.function == "mean":
        return sum(values) / len(values)
    return min(values) if agg.function == "min" else max(values)


def _events(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    events = []
    for _ in range(600):
        ts = T0 + timedelta(minutes=rng.randrange(0, 60 * 24 * 10))
        events.append(
            {
                "customer_id": rng.randrange(8),
                "ts": ts,
                "amount": None if rng.random() < 0.05 else round(rng.uniform(1, 500), 2),
                "merchant": rng.choice(["a", "b", "c", "d", None]),
            }
        )
    return events


def _close(actual: Any, expected: Any) -> bool:
    if expected is None or actual is None:
        return actual is expected
    return actual == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("seed", [1, 2])
def test_training_windows_match_brute_force(
    feature_store: FeatureStore, tmp_path: Path, seed: int
) -> None:
    events = _events(seed)
    view = _view(write_parquet(tmp_path / "t.parquet", events, SCHEMA))
    feature_store.apply(Definitions(views=[view]))
    rng = random.Random(seed + 100)
    queries = [
        (rng.randrange(9), T0 + timedelta(minutes=rng.randrange(-60, 60 * 24 * 11)))
        for _ in range(300)
    ]
    # Traps: exactly at an event (included) and exactly one window after it (excluded).
    queries += [(e["customer_id"], e["ts"]) for e in events[:40]]
    queries += [(e["customer_id"], e["ts"] + timedelta(hours=1)) for e in events[40:80]]
    queries += [(e["customer_id"], e["ts"] - US) for e in events[80:120]]
    out = feature_store.get_historical_features(entity_frame(queries), ["txn:*"]).to_pylist()
    mismatches = []
    for agg in view.aggregations:
        for (key, at), row in zip(queries, out, strict=True):
            expected = _expected(events, agg, key, at)
            if not _close(row[agg.name], expected):
                mismatches.append((agg.name, key, at, row[agg.name], expected))
    assert mismatches == []


def test_online_windows_as_of_now_use_the_same_definition(tmp_path: Path) -> None:
    events = _events(3)
    view = _view(write_parquet(tmp_path / "t.parquet", events, SCHEMA))
    now = T0 + timedelta(days=5, minutes=7)
    table = compute_window_aggregates(view, [(3,), (1,), (42,)], now)
    assert table.column_names == ["customer_id", *view.feature_names]
    rows = table.to_pylist()
    assert [r["customer_id"] for r in rows] == [3, 1, 42]
    for row in rows:
        for agg in view.aggregations:
            assert _close(row[agg.name], _expected(events, agg, row["customer_id"], now))


def test_online_windows_for_every_active_entity(tmp_path: Path) -> None:
    events = _events(4)
    view = _view(write_parquet(tmp_path / "t.parquet", events, SCHEMA))
    now = T0 + timedelta(days=3)
    table = compute_window_aggregates(view, None, now)
    widest = max(WINDOWS)
    active = {e["customer_id"] for e in events if now - widest < e["ts"] <= now}
    assert set(table.column("customer_id").to_pylist()) == active
    for row in table.to_pylist():
        agg = view.aggregations[1]
        assert _close(row[agg.name], _expected(events, agg, row["customer_id"], now))


def test_compute_window_aggregates_refuses_plain_views_and_bad_keys(tmp_path: Path) -> None:
    view = _view(write_parquet(tmp_path / "t.parquet", _events(5), SCHEMA))
    with pytest.raises(FeatureDefinitionError, match="joins on"):
        compute_window_aggregates(view, [(1, 2)], T0)
    plain = FeatureView(
        "plain",
        CUSTOMER,
        FileSource("s", str(tmp_path / "t.parquet"), "ts"),
        [Feature("amount", "float64")],
    )
    with pytest.raises(FeatureDefinitionError, match="no aggregations"):
        compute_window_aggregates(plain, [(1,)], T0)


def test_naive_as_of_is_utc(tmp_path: Path) -> None:
    events = [{"customer_id": 1, "ts": T0, "amount": 2.0, "merchant": "a"}]
    view = _view(write_parquet(tmp_path / "t.parquet", events, SCHEMA))
    aware = compute_window_aggregates(view, [(1,)], T0)
    naive = compute_window_aggregates(view, [(1,)], T0.replace(tzinfo=None))
    before = compute_window_aggregates(view, [(1,)], T0 - US)
    assert aware.to_pylist() == naive.to_pylist()
    assert aware.to_pylist()[0]["amount_count_1h"] == 1
    assert before.to_pylist()[0]["amount_count_1h"] == 0
