"""Windows of serving statistics: counts, errors, a latency sketch and prediction samples.

A :class:`WindowStats` summarises one variant's traffic over one analysis
window (a canary step) in bounded memory, whatever the traffic:

- :class:`LatencySketch`: a log-bucketed histogram (fixed relative accuracy,
  2 % by default) for quantiles such as p95; buckets are fixed, so sketches from
  several workers merge exactly.
- :class:`Reservoir`: a uniform random sample of at most ``capacity`` values
  (Vitter's algorithm R), for distribution comparisons such as PSI.

Everything merges (workers' windows add up) and round-trips through
``to_dict``/``from_dict`` (JSON), so windows can travel between processes.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from steward.core import InvalidInputError

__all__ = ["LatencySketch", "Reservoir", "Sample", "WindowStats"]

Sample = float | str
"""A prediction kept for comparisons: a number (score, probability) or a label."""

_MIN_MS = 0.001  # one microsecond: anything below lands in the first bucket


class LatencySketch:
    """Quantiles of latencies in milliseconds, within a fixed relative error.

    Bucket ``i`` holds values in ``(gamma**(i-1), gamma**i] * 0.001`` ms, with
    ``gamma = (1 + a) / (1 - a)`` for relative accuracy ``a``; a quantile is
    reported as its bucket's midpoint, within ``a`` of the true value.  Values up
    to ``max_ms`` get their own buckets (about 550 at the defaults); larger ones
    share the last.

    Example:
        >>> sketch = LatencySketch()
        >>> for ms in range(1, 101):
        ...     sketch.add(float(ms))
        >>> round(sketch.quantile(0.95), 1)
        95.0
    """

    def __init__(self, *, relative_accuracy: float = 0.02, max_ms: float = 600_000.0) -> None:
        if not 0.0 < relative_accuracy < 0.5:
            raise InvalidInputError(
                f"relative_accuracy must be in (0, 0.5), got {relative_accuracy!r}"
            )
        if not (math.isfinite(max_ms) and max_ms > _MIN_MS):
            raise InvalidInputError(f"max_ms must be a finite number > {_MIN_MS}, got {max_ms!r}")
        self.relative_accuracy = relative_accuracy
        self.max_ms = max_ms
        self._gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
        self._log_gamma = math.log(self._gamma)
        self._size = math.ceil(math.log(max_ms / _MIN_MS) / self._log_gamma) + 1
        self._counts = [0] * self._size
        self.count = 0
        self.total_ms = 0.0
        self.min_ms = math.inf
        self.max_seen_ms = 0.0

    def add(self, ms: float) -> None:
        """Record one latency in milliseconds (negative or NaN values are refused).

        Raises:
            InvalidInputError: the value is negative or not a number.
        """
        if not ms >= 0.0 or ms == math.inf:
            raise InvalidInputError(f"a latency must be a finite number >= 0 ms, got {ms!r}")
        index = 0 if ms <= _MIN_MS else math.ceil(math.log(ms / _MIN_MS) / self._log_gamma)
        self._counts[min(index, self._size - 1)] += 1
        self.count += 1
        self.total_ms += ms
        self.min_ms = min(self.min_ms, ms)
        self.max_seen_ms = max(self.max_seen_ms, ms)

    def quantile(self, q: float) -> float | None:
        """Return the ``q`` quantile (0 <= q <= 1) in milliseconds, or None when empty."""
        if not 0.0 <= q <= 1.0:
            raise InvalidInputError(f"a quantile must be in [0, 1], got {q!r}")
        if self.count == 0:
            return None
        rank = q * (self.count - 1)
        seen = 0
        for index, count in enumerate(self._counts):
            seen += count
            if seen > rank:
                value = self._value(index)
                return min(max(value, self.min_ms), self.max_seen_ms)
        return self.max_seen_ms  # pragma: no cover - the loop always reaches the rank

    def _value(self, index: int) -> float:
        if index == 0:
            return _MIN_MS
        # The midpoint (in relative terms) of (gamma^(i-1), gamma^i].
        return _MIN_MS * 2 * self._gamma**index / (self._gamma + 1)

    @property
    def mean_ms(self) -> float | None:
        """The exact mean latency, or None when empty."""
        return self.total_ms / self.count if self.count else None

    def merge(self, other: LatencySketch) -> None:
        """Add ``other``'s values to this sketch (same accuracy and range).

        Raises:
            InvalidInputError: the sketches have different settings.
        """
        mine = (self.relative_accuracy, self.max_ms)
        theirs = (other.relative_accuracy, other.max_ms)
        if mine != theirs:
            raise InvalidInputError(
                f"cannot merge latency sketches with different settings "
                f"(relative accuracy, max ms): {mine} vs {theirs}"
            )
        self._counts = [a + b for a, b in zip(self._counts, other._counts, strict=True)]
        self.count += other.count
        self.total_ms += other.total_ms
        self.min_ms = min(self.min_ms, other.min_ms)
        self.max_seen_ms = max(self.max_seen_ms, other.max_seen_ms)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (only non-empty buckets)."""
        return {
            "relative_accuracy": self.relative_accuracy,
            "max_ms": self.max_ms,
            "buckets": {str(i): c for i, c in enumerate(self._counts) if c},
            "count": self.count,
            "total_ms": self.total_ms,
            "min_ms": None if self.count == 0 else self.min_ms,
            "max_seen_ms": self.max_seen_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencySketch:
        """Rebuild a sketch from :meth:`to_dict` output.

        Raises:
            InvalidInputError: malformed or inconsistent data.
        """
        try:
            sketch = cls(relative_accuracy=data["relative_accuracy"], max_ms=data["max_ms"])
            for key, count in data["buckets"].items():
                index = int(key)
                if not 0 <= index < sketch._size or int(count) < 0:
                    raise ValueError(f"bucket {key!r}: {count!r}")
                sketch._counts[index] = int(count)
            sketch.count = int(data["count"])
            sketch.total_ms = float(data["total_ms"])
            sketch.min_ms = math.inf if data["min_ms"] is None else float(data["min_ms"])
            sketch.max_seen_ms = float(data["max_seen_ms"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInputError(f"malformed latency sketch: {exc!r}") from exc
        if sum(sketch._counts) != sketch.count:
            raise InvalidInputError(
                f"malformed latency sketch: buckets hold {sum(sketch._counts)} values, "
                f"count says {sketch.count}"
            )
        return sketch


class Reservoir:
    """A uniform random sample of at most ``capacity`` values from a stream.

    Example:
        >>> reservoir = Reservoir(capacity=100, rng=random.Random(0))
        >>> for value in range(10_000):
        ...     reservoir.add(float(value))
        >>> len(reservoir.values), reservoir.seen
        (100, 10000)
    """

    def __init__(self, *, capacity: int = 2_000, rng: random.Random | None = None) -> None:
        if not isinstance(capacity, int) or capacity < 1:
            raise InvalidInputError(f"reservoir capacity must be an integer >= 1, got {capacity!r}")
        self.capacity = capacity
        self.seen = 0
        self._values: list[Sample] = []
        self._rng = rng or random.Random()

    @property
    def values(self) -> list[Sample]:
        """The sampled values (a copy)."""
        return list(self._values)

    def add(self, value: Sample) -> None:
        """Offer one value to the sample."""
        self.seen += 1
        if len(self._values) < self.capacity:
            self._values.append(value)
            return
        slot = self._rng.randrange(self.seen)
        if slot < self.capacity:
            self._values[slot] = value

    def merge(self, other: Reservoir) -> None:
        """Combine with ``other`` into one sample of the union, weighted by what each saw."""
        pools = [(self.seen, list(self._values)), (other.seen, list(other._values))]
        merged: list[Sample] = []
        remaining = [self.seen, other.seen]
        size = min(self.capacity, len(pools[0][1]) + len(pools[1][1]))
        while len(merged) < size:
            # Draw from a side in proportion to the stream it stands for.
            total = sum(r for r, (_, pool) in zip(remaining, pools, strict=True) if pool)
            pick = self._rng.random() * total
            side = 0 if pools[0][1] and (pick < remaining[0] or not pools[1][1]) else 1
            pool = pools[side][1]
            merged.append(pool.pop(self._rng.randrange(len(pool))))
            remaining[side] = max(remaining[side] - 1, 0)
        self._values = merged
        self.seen += other.seen

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"capacity": self.capacity, "seen": self.seen, "values": list(self._values)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, rng: random.Random | None = None) -> Reservoir:
        """Rebuild a reservoir from :meth:`to_dict` output.

        Raises:
            InvalidInputError: malformed or inconsistent data.
        """
        try:
            reservoir = cls(capacity=data["capacity"], rng=rng)
            values = list(data["values"])
            reservoir.seen = int(data["seen"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"malformed reservoir: {exc!r}") from exc
        if len(values) > min(reservoir.capacity, reservoir.seen):
            raise InvalidInputError(
                f"malformed reservoir: {len(values)} values for capacity {reservoir.capacity} "
                f"and {reservoir.seen} seen"
            )
        reservoir._values = [_sample(v) for v in values]
        return reservoir


def _sample(value: Any) -> Sample:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidInputError(f"a prediction sample must be finite, got {value!r}")
        return float(value)
    if isinstance(value, str):
        return value
    raise InvalidInputError(
        f"a prediction sample must be a number or a label, got {type(value).__name__}"
    )


class WindowStats:
    """One variant's traffic over one analysis window: counts, errors, latency, predictions.

    Thread-safe.  Test traffic (header overrides) must not be recorded here.

    Example:
        >>> window = WindowStats(rng=random.Random(0))
        >>> window.record(4.2, prediction=0.91)
        >>> window.record(30.0, error=True)
        >>> window.requests, window.errors, window.error_rate
        (2, 1, 0.5)

    Args:
        reservoir_size: prediction samples kept.
        relative_accuracy: of the latency sketch.
        rng: for the reservoir (inject a seeded one in tests).
    """

    def __init__(
        self,
        *,
        reservoir_size: int = 2_000,
        relative_accuracy: float = 0.02,
        rng: random.Random | None = None,
    ) -> None:
        self.requests = 0
        self.errors = 0
        self.latency = LatencySketch(relative_accuracy=relative_accuracy)
        self.predictions = Reservoir(capacity=reservoir_size, rng=rng)
        self._lock = threading.Lock()

    def record(
        self,
        latency_ms: float,
        *,
        error: bool = False,
        prediction: Sample | None = None,
        samples: Sequence[Sample] = (),
    ) -> None:
        """Count one request: its latency, whether it failed, and its prediction (if any).

        Args:
            latency_ms: the request's latency in milliseconds.
            error: whether the request failed.
            prediction: the request's prediction, if any.
            samples: more predictions of the same request (the rows of a batch).

        Raises:
            InvalidInputError: a negative or non-finite latency, or a prediction
                that is neither a finite number nor a label.
        """
        offered = samples if prediction is None else (prediction, *samples)
        checked = [_sample(value) for value in offered]
        with self._lock:
            self.latency.add(latency_ms)
            self.requests += 1
            self.errors += bool(error)
            for sample in checked:
                self.predictions.add(sample)

    @property
    def error_rate(self) -> float | None:
        """Errors per request, or None before the first request."""
        return self.errors / self.requests if self.requests else None

    def merge(self, other: WindowStats) -> None:
        """Add another worker's window for the same variant and step."""
        with self._lock:
            self.requests += other.requests
            self.errors += other.errors
            self.latency.merge(other.latency)
            self.predictions.merge(other.predictions)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        with self._lock:
            return {
                "requests": self.requests,
                "errors": self.errors,
                "latency": self.latency.to_dict(),
                "predictions": self.predictions.to_dict(),
            }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, rng: random.Random | None = None) -> WindowStats:
        """Rebuild a window from :meth:`to_dict` output.

        Raises:
            InvalidInputError: malformed or inconsistent data.
        """
        try:
            latency = LatencySketch.from_dict(data["latency"])
            predictions = Reservoir.from_dict(data["predictions"], rng=rng)
            requests, errors = int(data["requests"]), int(data["errors"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"malformed window stats: {exc!r}") from exc
        if not 0 <= errors <= requests or latency.count != requests:
            raise InvalidInputError(
                f"malformed window stats: {errors} errors, {requests} requests, "
                f"{latency.count} latencies"
            )
        window = cls(reservoir_size=predictions.capacity, rng=rng)
        window.requests, window.errors = requests, errors
        window.latency, window.predictions = latency, predictions
        return window
