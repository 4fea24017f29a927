"""Prometheus families of cost, memory and online features, read from the runtimes at scrape.

Counters here belong to the revision in force: they start again from zero when
a deployment changes revision (Prometheus's ``rate`` treats that as a reset).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from steward.serving._residency import ModelResidency
from steward.serving._runtime import DeploymentRuntime

__all__ = ["UsageCollector"]

_LABELS = ["deployment", "variant"]


class UsageCollector(Collector):
    """CPU seconds, predictions, cost per 1,000, model memory and residency, per variant.

    Args:
        runtimes: the worker's deployments in force (read at each scrape).
        residency: the worker's model memory budget.
    """

    def __init__(
        self, runtimes: Mapping[str, DeploymentRuntime], residency: ModelResidency
    ) -> None:
        self._runtimes = runtimes
        self._residency = residency

    def collect(self) -> Iterator[Metric]:
        """Yield the families, one sample per deployment/variant."""
        cpu = CounterMetricFamily(
            "steward_gateway_model_cpu_seconds",
            "CPU seconds of the threads running model calls.",
            labels=_LABELS,
        )
        predictions = CounterMetricFamily(
            "steward_gateway_model_predictions", "Rows the model computed.", labels=_LABELS
        )
        cost = GaugeMetricFamily(
            "steward_gateway_cost_per_1k_predictions",
            "Price of 1,000 predictions at the configured price per CPU-hour.",
            labels=_LABELS,
        )
        memory = GaugeMetricFamily(
            "steward_gateway_model_memory_bytes",
            "Resident memory the model added when it loaded.",
            labels=_LABELS,
        )
        loaded = GaugeMetricFamily(
            "steward_gateway_model_loaded", "1 while the model is in memory.", labels=_LABELS
        )
        unloads = CounterMetricFamily(
            "steward_gateway_model_unloads",
            "Models unloaded under the memory budget.",
            labels=_LABELS,
        )
        reloads = CounterMetricFamily(
            "steward_gateway_model_reloads", "Unloaded models loaded again.", labels=_LABELS
        )
        features = CounterMetricFamily(
            "steward_gateway_feature_values",
            "Online feature values fetched, by status.",
            labels=["deployment", "status"],
        )
        for name, runtime in sorted(self._runtimes.items()):
            for variant_name, variant in runtime.variants.items():
                labels = [name, variant_name]
                usage, slot = variant.usage, variant.slot
                cpu.add_metric(labels, usage.cpu_seconds)
                predictions.add_metric(labels, usage.predictions)
                price = usage.cost_per_1k()
                if price is not None:
                    cost.add_metric(labels, price)
                memory.add_metric(labels, slot.memory_bytes)
                loaded.add_metric(labels, 1.0 if slot.loaded else 0.0)
                unloads.add_metric(labels, slot.unloads)
                reloads.add_metric(labels, slot.reloads)
            if runtime.features is not None:
                for status, count in runtime.features.status_counts().items():
                    features.add_metric([name, status], count)
        yield from (cpu, predictions, cost, memory, loaded, unloads, reloads, features)
        total = GaugeMetricFamily(
            "steward_gateway_models_memory_bytes",
            "What the loaded models are charged against the memory budget, together.",
        )
        total.add_metric([], self._residency.loaded_bytes())
        yield total
        if self._residency.budget_bytes is not None:
            yield GaugeMetricFamily(
                "steward_gateway_memory_budget_bytes",
                "The worker's memory budget for loaded models.",
                value=self._residency.budget_bytes,
            )
