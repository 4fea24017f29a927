"""Views and Parquet sources shared by the materialization, push, status and serving tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from steward.core import Principal
from steward.features import (
    Aggregation,
    Definitions,
    Entity,
    Feature,
    FeatureService,
    FeatureStore,
    FeatureView,
    FileSource,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")
CUSTOMER = Entity("customer", ["customer_id"])
PROFILE_SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("ts", TS),
        ("created", TS),
        ("score", pa.float64()),
        ("segment", pa.string()),
        ("email", pa.string()),
    ]
)
EVENTS_SCHEMA = pa.schema([("customer_id", pa.int64()), ("ts", TS), ("amount", pa.float64())])


def at(hours: float) -> datetime:
    """``T0`` plus some hours."""
    return T0 + timedelta(hours=hours)


def profile(
    key: int, ts: datetime, score: float, created: datetime | None = None
) -> dict[str, Any]:
    """One source row of the ``profile`` view (the email is PII)."""
    return {
        "customer_id": key,
        "ts": ts,
        "created": created,
        "score": score,
        "segment": f"s{int(score)}",
        "email": f"c{key}@example.com",
    }


def write_rows(folder: Path, name: str, rows: Sequence[dict[str, Any]], schema: pa.Schema) -> Path:
    """Write ``rows`` as one more Parquet file of a source folder."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.parquet"
    pq.write_table(pa.Table.from_pylist(list(rows), schema=schema), path)
    return path


def profile_view(folder: Path, *, sla: timedelta | None = None) -> FeatureView:
    """Latest score, segment and (PII) email per customer, TTL 30 days."""
    return FeatureView(
        "profile",
        CUSTOMER,
        FileSource("profiles", str(folder), "ts", "created"),
        [
            Feature("score", "float64"),
            Feature("segment", "string"),
            Feature("email", "string", pii=True),
        ],
        ttl=timedelta(days=30),
        freshness_sla=sla,
        owner="risk",
    )


def spend_view(folder: Path) -> FeatureView:
    """Window aggregates of transaction amounts per customer."""
    return FeatureView(
        "spend",
        CUSTOMER,
        FileSource("transactions", str(folder), "ts"),
        aggregations=[
            Aggregation("amount", "sum", timedelta(hours=24)),
            Aggregation("amount", "count", timedelta(days=7)),
        ],
    )


def apply(features: FeatureStore, *views: FeatureView) -> None:
    """Register the views, with a ``scoring`` service over the profile's plain features."""
    services = []
    if any(v.name == "profile" for v in views):
        services.append(FeatureService("scoring", ["profile:score", "profile:segment"]))
    features.apply(Definitions(entities=[CUSTOMER], views=views, services=services))


def acting_as(features: FeatureStore, *scopes: str) -> FeatureStore:
    """The same feature store, called by a principal holding only ``scopes``."""
    principal = Principal.of("analyst", scopes=scopes)
    return FeatureStore(features.store.as_principal(principal), features.settings)
