"""Records as Arrow tables: the columns of the ``predictions`` and ``feedback`` views.

Typed top-level columns, plus ``inputs``, ``features``, ``outputs`` (and a
feedback's ``label``) as JSON text, which DuckDB reads with ``json_extract``::

    PredictionRecord(inputs={"amount": 12.5, "score": nan}, ...)
        -> inputs = '{"amount":12.5,"score":null}'

A feedback's label is also given as a number in ``label_value`` when it is one
(``true``/``false`` count as 1/0), so accuracy and AUC need no casts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date
from typing import Any

import msgspec
import pyarrow as pa

from steward.serving._predlog._records import FeedbackRecord, LogRecord, PredictionRecord

__all__ = [
    "FEEDBACK_SCHEMA",
    "PREDICTION_SCHEMA",
    "feedback_table",
    "partition_date",
    "prediction_table",
    "split_records",
]

_TS = pa.timestamp("us", tz="UTC")
PREDICTION_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("ts", _TS),
        ("deployment", pa.string()),
        ("revision", pa.int64()),
        ("variant", pa.string()),
        ("model_version", pa.string()),
        ("inputs", pa.string()),
        ("features", pa.string()),
        ("outputs", pa.string()),
        ("latency_ms", pa.float64()),
        ("caller", pa.string()),
        ("test", pa.bool_()),
        ("fallback", pa.bool_()),
        ("shadow", pa.bool_()),
        ("error", pa.string()),
    ]
)
FEEDBACK_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("ts", _TS),
        ("label", pa.string()),
        ("label_value", pa.float64()),
        ("reward", pa.float64()),
        ("caller", pa.string()),
    ]
)

_json = msgspec.json.Encoder()  # NaN and infinity become null: JSON has no other spelling


def _json_text(value: Any) -> str:
    return _json.encode(value).decode()


def partition_date(record: LogRecord) -> date:
    """Return the UTC date a record is filed under."""
    return record.ts.astimezone(UTC).date()


def split_records(
    records: Iterable[LogRecord],
) -> tuple[list[PredictionRecord], list[FeedbackRecord]]:
    """Separate predictions from feedback, keeping their order."""
    predictions: list[PredictionRecord] = []
    feedback: list[FeedbackRecord] = []
    for record in records:
        if isinstance(record, PredictionRecord):
            predictions.append(record)
        else:
            feedback.append(record)
    return predictions, feedback


def prediction_table(records: list[PredictionRecord]) -> pa.Table:
    """Return the rows of ``predictions`` for these records."""
    return pa.table(
        {
            "request_id": [r.request_id for r in records],
            "ts": [r.ts for r in records],
            "deployment": [r.deployment for r in records],
            "revision": [r.revision for r in records],
            "variant": [r.variant for r in records],
            "model_version": [r.model_version for r in records],
            "inputs": [_json_text(r.inputs) for r in records],
            "features": [None if r.features is None else _json_text(r.features) for r in records],
            "outputs": [_json_text(r.outputs) for r in records],
            "latency_ms": [float(r.latency_ms) for r in records],
            "caller": [r.caller for r in records],
            "test": [r.test for r in records],
            "fallback": [r.fallback for r in records],
            "shadow": [r.shadow for r in records],
            "error": [r.error for r in records],
        },
        schema=PREDICTION_SCHEMA,
    )


def _label_value(label: bool | int | float | str | None) -> float | None:
    if isinstance(label, bool | int | float):
        return float(label)
    return None


def feedback_table(records: list[FeedbackRecord]) -> pa.Table:
    """Return the rows of ``feedback`` for these records."""
    return pa.table(
        {
            "request_id": [r.request_id for r in records],
            "ts": [r.ts for r in records],
            "label": [None if r.label is None else _json_text(r.label) for r in records],
            "label_value": [_label_value(r.label) for r in records],
            "reward": [r.reward for r in records],
            "caller": [r.caller for r in records],
        },
        schema=FEEDBACK_SCHEMA,
    )
