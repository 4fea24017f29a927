"""Small builders of Parquet sources and entity frames for the feature-store tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
TS = pa.timestamp("us", tz="UTC")


def write_parquet(path: Path, rows: Sequence[dict[str, Any]], schema: pa.Schema) -> Path:
    """Write ``rows`` (dicts) to ``path`` with an explicit schema."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(list(rows), schema=schema), path)
    return path


def entity_frame(rows: Sequence[tuple[Any, datetime]], key: str = "customer_id") -> pa.Table:
    """An entity frame of ``(key, event_timestamp)`` rows, timestamps tz-aware UTC."""
    return pa.table(
        {
            key: pa.array([r[0] for r in rows], pa.int64()),
            "event_timestamp": pa.array([r[1] for r in rows], TS),
        }
    )
