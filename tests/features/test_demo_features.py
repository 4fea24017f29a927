"""The demo's feature-store step on a small slice of its fraud data."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from steward.demo._features import run_feature_store
from steward.demo._fraud import make_fraud_data
from steward.features import FeatureStore


def test_demo_features_build_a_training_set_and_serve_online(
    feature_store: FeatureStore, tmp_path: Path
) -> None:
    early, _ = make_fraud_data(2_000)
    lines: list[str] = []
    facts = run_feature_store(feature_store, early, tmp_path / "repo", lines.append)
    assert facts["definitions_version"] == 1
    assert facts["training_rows"] == 2_000
    assert facts["training_features"] == 9
    # Every transaction counts at least itself in its own 24 h window.
    assert facts["null_counts"]["amount_count_24h"] == 0
    assert facts["null_counts"]["customer_age"] == 0  # profiles predate each customer's first txn
    assert facts["rows_materialized"] > 0
    online = facts["online"]["values"]
    assert online["amount_count_24h"] >= 1
    assert (tmp_path / "repo" / "features.py").is_file()
    assert pq.read_metadata(tmp_path / "repo" / "data" / "transactions.parquet").num_rows == 2_000
    assert any("point-in-time training set" in line for line in lines)
    pii = feature_store.store.audit.list_events(action="features.read_pii")
    assert {e.details["path"] for e in pii} == {"historical", "online"}
