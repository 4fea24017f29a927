"""The feature-store part of the tour: definitions, a training set, online reads.

The fraud transactions are written as Parquet in the demo home together with a
``features.py`` a user would write: customer profile snapshots (one PII
feature) and transaction windows (counts, sums, means over 1 h to 7 d).  The
training set is built point-in-time correct from the transactions themselves:
each transaction sees the windows up to and including its own time, never a
later one.  Then the views are materialized and read online.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from steward.features import FeatureStore, load_definitions

__all__ = ["FEATURES_PY", "run_feature_store"]

Say = Callable[[str], None]

FEATURES_PY = '''"""Card-fraud demo features (registered by `steward features apply`)."""

from datetime import timedelta

from steward.features import (
    Aggregation,
    Entity,
    Feature,
    FeatureService,
    FeatureView,
    FileSource,
)

customer = Entity("customer", ["customer_id"], description="A card holder.")

profiles = FileSource("customer_profiles", "data/customers.parquet", "snapshot_time")
transactions = FileSource("transactions", "data/transactions.parquet", "event_time")

customer_profile = FeatureView(
    "customer_profile",
    customer,
    profiles,
    [
        Feature("customer_age", "float64", "Age in years.", pii=True),
        Feature("account_age_days", "float64", "Days since the account opened."),
    ],
    ttl=timedelta(days=90),
    freshness_sla=timedelta(days=1),
    owner="customer-data",
    description="Customer profile snapshots.",
)

customer_transactions = FeatureView(
    "customer_transactions",
    customer,
    transactions,
    aggregations=[
        Aggregation("amount", "count", timedelta(hours=1)),
        Aggregation("amount", "count", timedelta(hours=24)),
        Aggregation("amount", "sum", timedelta(hours=24)),
        Aggregation("amount", "mean", timedelta(days=7)),
        Aggregation("amount", "max", timedelta(days=7)),
        Aggregation("foreign", "sum", timedelta(days=7)),
        Aggregation("merchant_category", "count_distinct", timedelta(days=7)),
    ],
    owner="fraud-team",
    description="Spending of each customer over sliding windows.",
)

fraud_model = FeatureService(
    "fraud_model",
    ["customer_profile:*", "customer_transactions:*"],
    description="What the fraud classifier consumes.",
    owner="fraud-team",
)
'''


def _write_repo(folder: Path, transactions: pa.Table) -> Path:
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    columns = ["customer_id", "event_time", "amount", "merchant_category", "foreign", "is_fraud"]
    txns = transactions.select(columns)
    txns = txns.set_column(
        1, "event_time", txns.column("event_time").cast(pa.timestamp("us", "UTC"))
    )
    pq.write_table(txns, data / "transactions.parquet")
    # One profile snapshot per customer, a day before their first transaction.
    first = txns.group_by("customer_id").aggregate([("event_time", "min")])
    profiles = first.join(
        transactions.select(["customer_id", "customer_age", "account_age_days"])
        .group_by("customer_id")
        .aggregate([("customer_age", "max"), ("account_age_days", "max")]),
        "customer_id",
    )
    snapshot = pc.subtract(profiles.column("event_time_min"), pa.scalar(timedelta(days=1)))
    pq.write_table(
        pa.table(
            {
                "customer_id": profiles.column("customer_id"),
                "snapshot_time": snapshot,
                "customer_age": profiles.column("customer_age_max"),
                "account_age_days": profiles.column("account_age_days_max"),
            }
        ),
        data / "customers.parquet",
    )
    path = folder / "features.py"
    path.write_text(FEATURES_PY, encoding="utf-8")
    return path


def run_feature_store(
    features: FeatureStore, transactions: pa.Table, folder: Path, say: Say
) -> dict[str, Any]:
    """Register the demo's definitions, build a training set, materialize, read online."""
    repo = _write_repo(folder, transactions)
    plan = features.apply(load_definitions(repo))
    say(
        f"features apply {repo}: {plan.count('add')} definitions added, "
        f"version {plan.version}; docs in {features.settings.docs_dir()}"
    )
    entity = transactions.select(["customer_id", "event_time", "is_fraud"]).rename_columns(
        ["customer_id", "event_timestamp", "is_fraud"]
    )
    training = features.get_historical_features(entity, service="fraud_model")
    busiest = pc.max(training.column("amount_count_24h")).as_py()
    say(
        f"point-in-time training set: {training.num_rows} rows x "
        f"{training.num_columns - 3} features (every transaction sees only its past; "
        f"busiest 24 h window: {busiest} transactions)"
    )
    end = pc.max(entity.column("event_timestamp")).as_py() + timedelta(seconds=1)
    report = features.materialize(end=end, progress=False)
    say(f"materialized {report.rows_written} rows into the online store")
    customer = int(transactions.column("customer_id")[transactions.num_rows - 1].as_py())
    online = features.get_online(service="fraud_model", entity_rows=[{"customer_id": customer}])
    values = {k: v[0] for k, v in online.to_dict().items()}
    shown = ", ".join(
        f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
        for k, v in values.items()
        if k != "customer_id"
    )
    say(f"online features of customer {customer}: {shown}")
    return {
        "definitions_version": plan.version,
        "training_rows": training.num_rows,
        "training_features": training.num_columns - 3,
        "null_counts": {
            name: training.column(name).null_count for name in training.column_names[3:]
        },
        "rows_materialized": report.rows_written,
        "online": {"customer_id": customer, "values": values},
    }
