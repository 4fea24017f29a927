"""What a variant's model calls cost: CPU seconds, predictions, and a price per 1,000.

Each micro-batched model call is metered with the CPU time of the thread that
runs it (``time.thread_time``), so concurrent variants and the event loop are
not charged to each other. CPU used by threads a runtime starts on its own
(ONNX Runtime's or OpenMP's worker threads) is not seen by this measure; run
such runtimes single-threaded, as the gateway's micro-batching assumes, for
complete figures.

Cost per 1,000 predictions = CPU seconds / predictions x 1,000 x price per
CPU-hour / 3,600, where predictions are the rows the model computed (cached
answers and fallbacks cost no model CPU and are not counted).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

__all__ = ["VariantUsage", "total_usage"]

Block = TypeVar("Block")
Out = TypeVar("Out")


class VariantUsage:
    """CPU seconds and predictions of one variant's model calls in this worker.

    Args:
        cpu_hour_price: the price of one CPU-hour (None: costs are not computed).
    """

    def __init__(self, *, cpu_hour_price: float | None = None) -> None:
        self.cpu_hour_price = cpu_hour_price
        self.cpu_seconds = 0.0
        self.calls = 0
        self.predictions = 0
        self._lock = threading.Lock()

    def add(self, cpu_seconds: float, predictions: int) -> None:
        """Record one model call (thread-safe)."""
        with self._lock:
            self.cpu_seconds += cpu_seconds
            self.calls += 1
            self.predictions += predictions

    def meter(
        self,
        fn: Callable[[list[Block]], Sequence[Out]],
        rows: Callable[[Block], int],
    ) -> Callable[[list[Block]], Sequence[Out]]:
        """Wrap a batch function so each call's thread CPU time and rows are recorded.

        A call that raises is charged too: its CPU was spent.
        """

        def metered(blocks: list[Block]) -> Sequence[Out]:
            started = time.thread_time()
            try:
                return fn(blocks)
            finally:
                self.add(time.thread_time() - started, sum(rows(b) for b in blocks))

        return metered

    def cost_per_1k(self) -> float | None:
        """Return the price of 1,000 predictions, or None without a price or predictions."""
        if self.cpu_hour_price is None or not self.predictions:
            return None
        return self.cpu_seconds / self.predictions * 1000.0 * self.cpu_hour_price / 3600.0

    def describe(self) -> dict[str, Any]:
        """Facts for the status endpoint."""
        cost = self.cost_per_1k()
        return {
            "cpu_seconds": round(self.cpu_seconds, 6),
            "model_calls": self.calls,
            "predictions": self.predictions,
            "cost_per_1k_predictions": None if cost is None else float(f"{cost:.6g}"),
        }


def total_usage(usages: Sequence[VariantUsage]) -> dict[str, Any]:
    """Return the CPU seconds, predictions and cost per 1,000 of several variants together."""
    total = VariantUsage(cpu_hour_price=usages[0].cpu_hour_price if usages else None)
    for usage in usages:
        total.cpu_seconds += usage.cpu_seconds
        total.calls += usage.calls
        total.predictions += usage.predictions
    return total.describe()
