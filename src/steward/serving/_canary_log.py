"""Canary windows from what was served: the prediction log, and the samples a model output gives.

:func:`log_windows` rebuilds a canary step's two windows from the prediction
log (every gateway worker's records, compacted or not), so a canary can be
analysed without a running gateway: by ``steward deployments canary step``,
by tests and by the demo.  The gateway's own controller feeds the same
windows request by request instead (see ``_canary_controller``).

What counts, on either path:

- test traffic (``X-Steward-Variant`` overrides) never counts;
- the baseline's window holds the requests it answered (not shadow copies);
- the canary's window holds its answered requests and, in the shadow stage,
  its mirrored calls;
- a request is an error when its model failed (answered by a fallback, or not
  at all); its outputs are then not the model's and give no prediction sample.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from steward.serving._canary_store import CanaryRecord
from steward.serving._predlog import PredictionArchive
from steward.serving._windows import Sample, WindowStats

__all__ = ["MAX_SAMPLES_PER_REQUEST", "log_windows", "prediction_sample", "prediction_samples"]

MAX_SAMPLES_PER_REQUEST = 64
"""Rows of one batch request that give prediction samples (the first ones)."""

_SAMPLED_REQUESTS = 2_000  # requests per side whose outputs are read for the PSI sample

_WHERE = (
    "deployment = ? AND ts >= ? AND ts <= ? AND NOT test "
    "AND ((variant = ? AND NOT shadow) OR variant = ?)"
)


def prediction_sample(output: Any) -> Sample | None:
    """Return the number or label one output row stands for in distribution checks, or None.

    ``{"label": ..., "probabilities": {"0": p0, "1": p1}}`` (a binary classifier)
    gives the last class's probability; with more classes, the label as text;
    a number gives itself; a label gives itself.

    Example:
        >>> prediction_sample({"label": 1, "probabilities": {"0": 0.2, "1": 0.8}})
        0.8
        >>> prediction_sample({"label": "b", "probabilities": {"a": 0.1, "b": 0.5, "c": 0.4}})
        'b'
    """
    if isinstance(output, bool):
        return float(output)
    if isinstance(output, int | float):
        return float(output) if math.isfinite(output) else None
    if isinstance(output, str):
        return output
    if isinstance(output, Mapping):
        probabilities = output.get("probabilities")
        if isinstance(probabilities, Mapping) and len(probabilities) == 2:
            return prediction_sample(list(probabilities.values())[-1])
        label = output.get("label")
        return None if label is None or isinstance(label, Mapping | list) else str(label)
    return None


def prediction_samples(outputs: Any, limit: int = MAX_SAMPLES_PER_REQUEST) -> list[Sample]:
    """Return the samples of one request's outputs (one per row, at most ``limit``)."""
    rows: Sequence[Any] = outputs if isinstance(outputs, list) else [outputs]
    samples = (prediction_sample(row) for row in rows[:limit])
    return [s for s in samples if s is not None]


def log_windows(
    archive: PredictionArchive, record: CanaryRecord, until: datetime
) -> tuple[WindowStats, WindowStats]:
    """Return the (canary, baseline) windows of the canary's current step, from the log.

    The window runs from ``record.state.step_started_at`` to ``until``. Every
    request counts for the request, error and latency figures; the outputs of
    at most 2,000 requests per side (a uniform, repeatable sample) give the
    prediction samples.

    Raises:
        InvalidInputError: the log could not be queried.
    """
    params = [
        record.deployment,
        record.state.step_started_at,
        until,
        record.baseline,
        record.canary,
    ]
    canary = WindowStats(rng=random.Random(0))
    baseline = WindowStats(rng=random.Random(1))
    counts = archive.query(
        f"SELECT variant = ? AS is_canary, latency_ms, error IS NOT NULL AS failed "
        f"FROM predictions WHERE {_WHERE} ORDER BY ts, request_id",
        [record.canary, *params],
    )
    for is_canary, latency_ms, failed in zip(
        *(counts.column(c).to_pylist() for c in ("is_canary", "latency_ms", "failed")), strict=True
    ):
        (canary if is_canary else baseline).record(max(float(latency_ms), 0.0), error=failed)
    for side, window in ((record.canary, canary), (record.baseline, baseline)):
        sampled = archive.query(
            f"SELECT outputs FROM (SELECT outputs FROM predictions WHERE {_WHERE} "
            f"AND variant = ? AND error IS NULL ORDER BY ts, request_id) "
            f"USING SAMPLE reservoir({_SAMPLED_REQUESTS} ROWS) REPEATABLE (7)",
            [*params, side],
        )
        for text in sampled.column("outputs").to_pylist():
            for sample in prediction_samples(None if text is None else json.loads(text)):
                window.predictions.add(sample)
    return canary, baseline
