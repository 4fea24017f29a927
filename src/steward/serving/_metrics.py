"""Prometheus metrics of one gateway worker, on its own registry (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["GatewayMetrics"]

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
)  # fmt: skip
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class GatewayMetrics:
    """Requests, latency, errors, fallbacks, batch sizes and cache hits per deployment/variant."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("deployment", "variant")
        self.requests = Counter(
            "steward_gateway_requests",
            "Predict requests answered, by HTTP status (test traffic is not counted here; "
            'variant "-": refused before a variant was chosen).',
            (*labels, "status"),
            registry=self.registry,
        )
        self.test_requests = Counter(
            "steward_gateway_test_requests",
            "Test traffic (the X-Steward-Variant override) answered, by HTTP status.",
            (*labels, "status"),
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "steward_gateway_rate_limited",
            "Predict requests refused because their caller was over its rate limit.",
            ("deployment",),
            registry=self.registry,
        )
        self.latency = Histogram(
            "steward_gateway_request_latency_seconds",
            "Time from arrival to answer of predict requests that reached a variant "
            "(test traffic excluded).",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "steward_gateway_errors",
            "Predict requests that failed, by error kind.",
            ("deployment", "kind"),
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "steward_gateway_fallbacks",
            "Requests answered by the deployment's fallback.",
            labels,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "steward_gateway_batch_requests",
            "Requests per micro-batched model call.",
            labels,
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "steward_gateway_cache_hits",
            "Requests answered from the response cache.",
            labels,
            registry=self.registry,
        )
        self.shadow = Counter(
            "steward_gateway_shadow_requests",
            "Requests mirrored to shadow variants, by outcome (ok, error, or dropped: "
            "over the cap of shadow calls in flight).",
            (*labels, "outcome"),
            registry=self.registry,
        )

        self.log_compactions = Counter(
            "steward_gateway_log_compactions",
            "Rounds of prediction log compaction this worker ran, by outcome (ok; corrupt: "
            "a segment failed verification and was left; busy: another worker was "
            "compacting, round skipped; failed: an error, segments kept for the next round).",
            ("outcome",),
            registry=self.registry,
        )
        self.log_compacted_records = Counter(
            "steward_gateway_log_compacted_records",
            "Prediction log records this worker moved from segments into Parquet partitions.",
            registry=self.registry,
        )

    def count_request(
        self, deployment: str, variant: str | None, status: int, *, test: bool, seconds: float
    ) -> None:
        """Count one answered predict request; test traffic goes to its own counter.

        Latency is observed only for requests that reached a variant (``variant``
        is None for those refused before routing: auth, limits, bad input).
        """
        code = str(status)
        if test:
            self.test_requests.labels(deployment, variant or "-", code).inc()
            return
        self.requests.labels(deployment, variant or "-", code).inc()
        if variant is not None:
            self.latency.labels(deployment, variant).observe(seconds)

    def observe_batch(self, deployment: str, variant: str, size: int) -> None:
        """Record one model call's number of requests."""
        self.batch_size.labels(deployment, variant).observe(size)

    def render(self) -> bytes:
        """Return the text exposition format."""
        return generate_latest(self.registry)
