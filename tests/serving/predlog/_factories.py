"""Test records and small query helpers shared by the prediction log tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from steward.serving._predlog import FeedbackRecord, PredictionLog, PredictionRecord

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def prediction(i: int, **changes: Any) -> PredictionRecord:
    """Return the i-th test prediction; ``changes`` override fields."""
    fields: dict[str, Any] = {
        "request_id": f"req-{i:06d}",
        "ts": T0 + timedelta(seconds=i),
        "deployment": "fraud",
        "revision": 3,
        "variant": "champion" if i % 4 else "challenger",
        "model_version": "fraud/7",
        "inputs": {"amount": 10.0 + i, "merchant": f"m{i % 7}", "age_days": i % 90},
        "features": {"txn_count_7d": i % 13},
        "outputs": {"score": (i % 100) / 100, "label": i % 2},
        "latency_ms": 1.0 + (i % 10) / 10,
        "caller": "svc-checkout",
    }
    fields.update(changes)
    return PredictionRecord(**fields)


def feedback(i: int, **changes: Any) -> FeedbackRecord:
    """Return feedback for the i-th test prediction."""
    fields: dict[str, Any] = {
        "request_id": f"req-{i:06d}",
        "ts": T0 + timedelta(days=1, seconds=i),
        "label": i % 3 == 0,
        "caller": "svc-chargebacks",
    }
    fields.update(changes)
    return FeedbackRecord(**fields)


def count(log: PredictionLog, view: str = "predictions") -> int:
    """Return the number of rows in a view."""
    return int(log.query(f"SELECT count(*) AS n FROM {view}").column("n")[0].as_py())


def request_ids(log: PredictionLog, view: str = "predictions") -> list[str]:
    """Return the request ids of a view, sorted."""
    return sorted(log.query(f"SELECT request_id FROM {view}").column("request_id").to_pylist())
