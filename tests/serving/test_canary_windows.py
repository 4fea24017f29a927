"""Window statistics: the latency sketch, the reservoir, merging and round trips."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steward.core import InvalidInputError
from steward.serving._windows import LatencySketch, Reservoir, WindowStats

latencies = st.lists(
    st.floats(min_value=0.0, max_value=100_000.0, allow_nan=False), min_size=1, max_size=300
)


@given(latencies, st.floats(min_value=0.0, max_value=1.0))
@settings(max_examples=200)
def test_latency_sketch_quantile_within_relative_accuracy(values: list[float], q: float) -> None:
    sketch = LatencySketch(relative_accuracy=0.02)
    for value in values:
        sketch.add(value)
    exact = float(np.quantile(values, q, method="lower"))
    upper = float(np.quantile(values, q, method="higher"))
    got = sketch.quantile(q)
    assert got is not None
    # The reported value is within 2 % of an order statistic next to the rank
    # (or inside the first bucket, one microsecond, for values near zero).
    assert exact * 0.98 - 0.001 <= got <= upper * 1.02 + 0.001


@given(latencies, latencies)
@settings(max_examples=100)
def test_latency_sketch_merge_equals_one_sketch(a: list[float], b: list[float]) -> None:
    left, right, both = LatencySketch(), LatencySketch(), LatencySketch()
    for value in a:
        left.add(value)
        both.add(value)
    for value in b:
        right.add(value)
        both.add(value)
    left.merge(right)
    for q in (0.0, 0.5, 0.95, 0.99, 1.0):
        assert left.quantile(q) == both.quantile(q)
    assert left.count == both.count
    assert left.to_dict()["buckets"] == both.to_dict()["buckets"]
    assert left.total_ms == pytest.approx(both.total_ms)


def test_latency_sketch_empty_huge_and_bad_values() -> None:
    sketch = LatencySketch(max_ms=1_000.0)
    assert sketch.quantile(0.95) is None and sketch.mean_ms is None
    sketch.add(5_000_000.0)  # beyond max_ms: shares the last bucket, reported as the max seen
    assert sketch.quantile(0.5) == 5_000_000.0
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(InvalidInputError, match="latency must be a finite number"):
            sketch.add(bad)
    assert sketch.count == 1
    with pytest.raises(InvalidInputError, match="quantile must be in"):
        sketch.quantile(1.5)
    with pytest.raises(InvalidInputError, match="different settings"):
        sketch.merge(LatencySketch())
    with pytest.raises(InvalidInputError, match="relative_accuracy"):
        LatencySketch(relative_accuracy=0.0)


def test_latency_sketch_round_trip_and_malformed() -> None:
    sketch = LatencySketch()
    for ms in (0.0, 0.5, 3.0, 250.0):
        sketch.add(ms)
    again = LatencySketch.from_dict(json.loads(json.dumps(sketch.to_dict())))
    assert again.to_dict() == sketch.to_dict()
    assert again.quantile(0.95) == sketch.quantile(0.95)
    data = sketch.to_dict()
    with pytest.raises(InvalidInputError, match="buckets hold 4 values, count says 5"):
        LatencySketch.from_dict({**data, "count": 5})
    with pytest.raises(InvalidInputError, match="malformed latency sketch"):
        LatencySketch.from_dict({**data, "buckets": {"999999": 1}})
    with pytest.raises(InvalidInputError, match="malformed latency sketch"):
        LatencySketch.from_dict({"count": 1})


def test_reservoir_is_uniform() -> None:
    # Each of 1,000 values lands in a 100-slot sample with probability 0.1.
    hits = np.zeros(1_000)
    rng = random.Random(42)
    for _ in range(400):
        reservoir = Reservoir(capacity=100, rng=rng)
        for value in range(1_000):
            reservoir.add(float(value))
        for value in reservoir.values:
            hits[int(value)] += 1
    first, last = hits[:500].mean() / 400, hits[500:].mean() / 400
    assert first == pytest.approx(0.1, abs=0.01)
    assert last == pytest.approx(0.1, abs=0.01)


def test_reservoir_merge_weights_by_stream_size() -> None:
    big, small = Reservoir(capacity=200, rng=random.Random(1)), Reservoir(capacity=200)
    for _ in range(9_000):
        big.add("big")
    for _ in range(1_000):
        small.add("small")
    big.merge(small)
    assert big.seen == 10_000
    assert len(big.values) == 200
    assert 5 < big.values.count("small") < 40  # ~10 % of 200


def test_reservoir_merge_keeps_everything_when_it_fits() -> None:
    a, b = Reservoir(capacity=10, rng=random.Random(0)), Reservoir(capacity=10)
    for value in (1.0, 2.0):
        a.add(value)
    b.add("x")
    a.merge(b)
    assert sorted(map(str, a.values)) == ["1.0", "2.0", "x"]


def test_reservoir_round_trip_and_malformed() -> None:
    reservoir = Reservoir(capacity=3, rng=random.Random(0))
    for value in (1.0, "a", 2.5, 4.0):
        reservoir.add(value)
    again = Reservoir.from_dict(json.loads(json.dumps(reservoir.to_dict())))
    assert again.values == reservoir.values and again.seen == 4
    with pytest.raises(InvalidInputError, match="3 values for capacity 2"):
        Reservoir.from_dict({"capacity": 2, "seen": 4, "values": [1, 2, 3]})
    with pytest.raises(InvalidInputError, match="must be finite"):
        Reservoir.from_dict({"capacity": 2, "seen": 1, "values": [float("nan")]})
    with pytest.raises(InvalidInputError, match="capacity must be an integer"):
        Reservoir(capacity=0)


def test_window_stats_record_merge_and_round_trip() -> None:
    w1, w2 = WindowStats(rng=random.Random(0)), WindowStats(rng=random.Random(1))
    w1.record(2.0, prediction=0.2)
    w1.record(4.0, error=True)
    w2.record(6.0, prediction=True)
    w1.merge(w2)
    assert (w1.requests, w1.errors) == (3, 1)
    assert w1.error_rate == pytest.approx(1 / 3)
    assert sorted(w1.predictions.values) == [0.2, 1.0]
    again = WindowStats.from_dict(json.loads(json.dumps(w1.to_dict())))
    assert again.to_dict() == w1.to_dict()
    assert WindowStats().error_rate is None


def test_window_stats_refuses_bad_records_and_data() -> None:
    window = WindowStats()
    with pytest.raises(InvalidInputError, match="latency"):
        window.record(-3.0)
    with pytest.raises(InvalidInputError, match="prediction sample must be finite"):
        window.record(1.0, prediction=float("inf"))
    with pytest.raises(InvalidInputError, match="number or a label"):
        window.record(1.0, prediction=[1, 2])  # type: ignore[arg-type]
    assert window.requests == 0
    data = WindowStats().to_dict()
    with pytest.raises(InvalidInputError, match="1 errors, 0 requests"):
        WindowStats.from_dict({**data, "errors": 1})
    with pytest.raises(InvalidInputError, match="malformed window stats"):
        WindowStats.from_dict({"requests": 1})
