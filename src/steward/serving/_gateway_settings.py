"""Settings of the gateway process, read from ``STEWARD_GATEWAY_*`` like every other setting."""

from __future__ import annotations

from pydantic import Field

from steward.serving._predlog import PredictionLogSettings

__all__ = ["GatewaySettings"]

MiB = 1024 * 1024


class GatewaySettings(PredictionLogSettings):
    """How ``steward gateway`` listens, authenticates, reloads and sheds load.

    It extends the store and prediction-log settings, so one object says where
    the home, the metadata database and the prediction log are.
    """

    gateway_host: str = Field(default="127.0.0.1", description="Address to listen on.")
    gateway_port: int = Field(default=8700, ge=1, le=65535, description="Port to listen on.")
    gateway_workers: int = Field(
        default=1, ge=1, le=64, description="Worker processes (each loads every deployment)."
    )
    gateway_insecure_local: bool = Field(
        default=False,
        description=(
            "Serve without authentication (development only; printed loudly at start). "
            "Otherwise every request needs a bearer token or JWT."
        ),
    )
    gateway_poll_interval: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Seconds between checks of the deployments' latest revisions.",
    )
    gateway_max_body_bytes: int = Field(
        default=4 * MiB, ge=1024, description="Refuse request bodies larger than this (413)."
    )
    gateway_max_rows: int = Field(
        default=10_000, ge=1, description="Refuse predict requests with more rows than this."
    )
    gateway_max_in_flight: int = Field(
        default=512, ge=1, description="Requests handled at once per worker (admission gate)."
    )
    gateway_max_queued: int = Field(
        default=2048, ge=0, description="Requests waiting for a slot before 503 + Retry-After."
    )
    gateway_max_queue_wait_s: float = Field(
        default=2.0, gt=0, description="The longest a request waits for a slot before 503."
    )
    gateway_early_retry_hold_s: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description=(
            "A caller's connection refused for overload (503 + Retry-After) that sends "
            "again before that time is held until then (at most this many seconds) and "
            "refused with 429 and Retry-After: 0, so clients that retry at once cannot "
            "flood an overloaded worker with refusals (0: never hold)."
        ),
    )
    gateway_inline_call_ms: float = Field(
        default=0.5,
        ge=0,
        le=1000,
        description=(
            "Compute a request on the event loop, without a thread hop, when its model is "
            "idle and its recent one-request calls averaged less than this many ms (0: never)."
        ),
    )
    gateway_rate_limit: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Requests per second each caller may send to predict, per worker process "
            "(token bucket; unset: no limit). A caller is its token's identity, or its "
            "client address in insecure-local mode. Over the limit: 429 + Retry-After."
        ),
    )
    gateway_rate_burst: float | None = Field(
        default=None,
        ge=1,
        description="Requests a caller may send at once (the bucket's size; default: the rate).",
    )
    gateway_max_shadow_in_flight: int = Field(
        default=64,
        ge=0,
        description=(
            "Shadow calls running at once per worker; a request's shadow copy beyond this "
            "is dropped (and counted), so shadows never slow the primary."
        ),
    )
    gateway_breaker_failures: int = Field(
        default=5, ge=1, description="Model failures within 30 s that open a variant's breaker."
    )
    gateway_breaker_cooldown_s: float = Field(
        default=10.0, gt=0, description="Seconds an open breaker waits before probing."
    )
    gateway_cpu_hour_price: float | None = Field(
        default=None,
        ge=0,
        description=(
            "Price of one CPU-hour, for the cost per 1,000 predictions in status and metrics "
            "(none: costs are not computed)."
        ),
    )
    gateway_memory_budget_mb: float | None = Field(
        default=None,
        ge=0,
        description=(
            "MiB that loaded models may hold per worker; over it, the least recently used "
            "idle model is unloaded and reloaded on its next request (none: no budget)."
        ),
    )
    gateway_canary_interval: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description=(
            "Seconds between canary rounds: each worker publishes its windows of running "
            "canaries and (with gateway_canary_decide) analyses them."
        ),
    )
    gateway_canary_decide: bool = Field(
        default=True,
        description=(
            "Let this gateway's workers decide canary steps; off when another process "
            "decides (e.g. `steward deployments canary step` from the prediction log)."
        ),
    )
    gateway_compact_interval_s: float = Field(
        default=300.0,
        ge=0,
        description=(
            "Seconds between rounds in which each worker compacts the prediction log's sealed "
            "segments into Parquet partitions (one worker at a time; 0: never, leave it to "
            "`steward logs compact`)."
        ),
    )

    def memory_budget_bytes(self) -> int | None:
        """Return the model memory budget in bytes, or None when there is none."""
        budget = self.gateway_memory_budget_mb
        return None if budget is None else int(budget * MiB)
