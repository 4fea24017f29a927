"""Prometheus families of cost, memory and online features, read from the runtimes at scrape.

Counters here belong to the revision in force: they start again from zero when
a deployment changes revision (Prometheus's ``rate`` treats that as a reset).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from steward.serving._residency import ModelResidency
from steward.serving._runtime import DeploymentRuntime, VariantRuntime

__all__ = ["UsageCollector"]

_LABELS = ["deployment", "variant"]

# Per variant: (family name, help, counter or gauge, value from the variant's usage and slot;
# None leaves the sample out).
_VARIANT_FAMILIES: tuple[tuple[str, str, bool, Callable[[VariantRuntime], float | None]], ...] = (
    (
        "steward_gateway_model_cpu_seconds",
        "CPU seconds of the threads running model calls.",
        True,
        lambda v: v.usage.cpu_seconds,
    ),
    (
        "steward_gateway_model_predictions",
        "Rows the model computed.",
        True,
        lambda v: v.usage.predictions,
    ),
    (
        "steward_gateway_cost_per_1k_predictions",
        "Price of 1,000 predictions at the configured price per CPU-hour.",
        False,
        lambda v: v.usage.cost_per_1k(),
    ),
    (
        "steward_gateway_model_memory_bytes",
        "Resident memory the model added when it loaded.",
        False,
        lambda v: v.slot.memory_bytes,
    ),
    (
        "steward_gateway_model_loaded",
        "1 while the model is in memory.",
        False,
        lambda v: 1.0 if v.slot.loaded else 0.0,
    ),
    (
        "steward_gateway_model_unloads",
        "Models unloaded under the memory budget.",
        True,
        lambda v: v.slot.unloads,
    ),
    (
        "steward_gateway_model_reloads",
        "Unloaded models loaded again.",
        True,
        lambda v: v.slot.reloads,
    ),
)


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
        """Yield the families, one sample per deployment/variant (features: per status)."""
        runtimes = sorted(self._runtimes.items())
        for name, help_text, counter, value in _VARIANT_FAMILIES:
            family = (CounterMetricFamily if counter else GaugeMetricFamily)(
                name, help_text, labels=_LABELS
            )
            for deployment, runtime in runtimes:
                for variant_name, variant in runtime.variants.items():
                    sample = value(variant)
                    if sample is not None:
                        family.add_metric([deployment, variant_name], sample)
            yield family
        features = CounterMetricFamily(
            "steward_gateway_feature_values",
            "Online feature values fetched, by status.",
            labels=["deployment", "status"],
        )
        for deployment, runtime in runtimes:
            if runtime.features is not None:
                for status, count in runtime.features.status_counts().items():
                    features.add_metric([deployment, status], count)
        yield features
        yield from self._worker_families()

    def _worker_families(self) -> Iterator[Metric]:
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
