"""The state of one gateway worker: loaded deployments, the prediction log, access checks.

Deployments are read from the metadata database once at start and then polled
(one small query for every deployment's latest revision number) every
``gateway_poll_interval`` seconds. A changed revision is loaded in a thread and
swapped in atomically (one dict assignment); requests already running finish
on the revision they started on. A revision that fails to load never takes
traffic: the previous one keeps serving and the error is reported in status.
Loaded models are kept within ``gateway_memory_budget_mb`` (see ``_residency``).
Every ``gateway_compact_interval_s`` the worker compacts the prediction log's
sealed segments into Parquet partitions (see ``_log_compaction``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from steward.core import PermissionDeniedError, Principal, StewardError, load_settings
from steward.features import FeatureStore
from steward.governance import (
    AuthenticationError,
    GovernanceAuthorizer,
    GovernanceSettings,
    authenticate,
)
from steward.registry import RegistryService
from steward.serving._bandit_store import SqlBanditStateStore
from steward.serving._canary_controller import CanaryController
from steward.serving._canary_service import CanaryService
from steward.serving._deployments import DeploymentService
from steward.serving._gateway_settings import GatewaySettings
from steward.serving._limits import AdmissionController, EarlyRetryGuard, RateLimiter
from steward.serving._log_compaction import LogCompactor
from steward.serving._metrics import GatewayMetrics
from steward.serving._online_features import FeatureFetcher
from steward.serving._predlog import PredictionLog
from steward.serving._residency import ModelResidency, ModelSlot
from steward.serving._runtime import DeploymentRuntime, load_runtime
from steward.serving._usage_metrics import UsageCollector
from steward.store import Store

__all__ = ["Caller", "GatewayWorker"]

_log = logging.getLogger("steward.serving.gateway")
OVERRIDE_SCOPE = "deployments:write"


@dataclass(frozen=True)
class Caller:
    """Who sent a request, and whether they may pick a variant with the override header."""

    name: str | None
    override_allowed: bool


def _rate_limiter(settings: GatewaySettings) -> RateLimiter | None:
    """Return the per-caller limiter the settings ask for, or None when there is no limit."""
    rate = settings.gateway_rate_limit
    if rate is None:
        return None
    burst = settings.gateway_rate_burst or max(rate, 1.0)
    return RateLimiter(capacity=burst, refill_per_s=rate)


@dataclass
class LoadFailure:
    """A revision that could not be loaded (the previous one, if any, keeps serving)."""

    revision: int
    error: str


class GatewayWorker:
    """Everything one worker process holds in memory to serve predictions.

    Args:
        settings: the gateway's settings.
        store: the store to read deployments and models from (default: opened
            from ``settings``; closed by :meth:`close` only when opened here).
        governance: governance settings for authentication (default: from the env).
    """

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        store: Store | None = None,
        governance: GovernanceSettings | None = None,
    ) -> None:
        self.settings = settings
        self._own_store = store is None
        self.store = store or Store.open(settings)
        self.registry = RegistryService(self.store)
        self.deployments = DeploymentService(self.store, self.registry)
        self.governance = governance or load_settings(GovernanceSettings, home=settings.home)
        self.authorizer = GovernanceAuthorizer(self.store, settings=self.governance)
        self.metrics = GatewayMetrics()
        self.admission = AdmissionController(
            max_in_flight=settings.gateway_max_in_flight,
            max_queued=settings.gateway_max_queued,
            max_queue_wait_s=settings.gateway_max_queue_wait_s,
        )
        self.early_retries = EarlyRetryGuard(max_hold_s=settings.gateway_early_retry_hold_s)
        self.rate_limiter = _rate_limiter(settings)
        self.bandit_store = SqlBanditStateStore(self.store.database)
        self.canaries = CanaryController(
            CanaryService(self.deployments),
            decide=settings.gateway_canary_decide,
            interval_s=settings.gateway_canary_interval,
        )
        self.runtimes: dict[str, DeploymentRuntime] = {}
        self.failures: dict[str, LoadFailure] = {}
        self.residency = ModelResidency(settings.memory_budget_bytes(), self._slots)
        self.metrics.registry.register(UsageCollector(self.runtimes, self.residency))
        self._features: FeatureStore | None = None
        self.polled = False
        self._logs: dict[str, PredictionLog] = {}
        self.compactor: LogCompactor | None = None
        self._poller: asyncio.Task[None] | None = None
        self._retired: set[asyncio.Task[None]] = set()

    # -- the prediction log ------------------------------------------------

    def log_for(self, mode: str) -> PredictionLog:
        """Return this worker's log of ``mode`` (``durable`` or ``async``), opening it once."""
        log = self._logs.get(mode)
        if log is None:
            # One writer per mode: the async writer's segments carry their own worker id.
            worker = None if mode == "durable" else f"{self.log_for('durable').worker_id}-async"
            log = PredictionLog.from_settings(self.settings, mode=mode, worker_id=worker)
            self._logs[mode] = log
        return log

    # -- deployments -------------------------------------------------------

    async def start(self) -> None:
        """Load every deployment, then poll for new revisions in the background."""
        self.compactor = LogCompactor(
            self.log_for("durable").archive,
            interval_s=self.settings.gateway_compact_interval_s,
            metrics=self.metrics,
        )
        await self.refresh()
        self._poller = asyncio.create_task(self._poll(), name="steward-gateway-poll")
        self.canaries.start(worker_id=self.log_for("durable").worker_id)
        self.compactor.start()

    async def refresh(self) -> None:
        """Load revisions that changed since the last look; keep the old ones on failure."""
        latest = await asyncio.to_thread(self.deployments.latest_revisions)
        for name, revision in sorted(latest.items()):
            current = self.runtimes.get(name)
            if current is not None and current.revision.revision == revision:
                continue
            failed = self.failures.get(name)
            if failed is not None and failed.revision == revision:
                continue
            await self._load(name, revision, current)
        self.polled = True

    async def _load(self, name: str, revision: int, current: DeploymentRuntime | None) -> None:
        try:
            target = await asyncio.to_thread(self.deployments.get_revision, name, revision)
            if target.settings.log_mode == "async":
                self.log_for("async")
            runtime = await asyncio.to_thread(
                load_runtime,
                target,
                self.registry,
                breaker_failures=self.settings.gateway_breaker_failures,
                breaker_cooldown_s=self.settings.gateway_breaker_cooldown_s,
                bandit_store=self.bandit_store,
                observe_batch=self.metrics.observe_batch,
                cpu_hour_price=self.settings.gateway_cpu_hour_price,
                inline_call_ms=self.settings.gateway_inline_call_ms,
            )
            if target.settings.feature_service is not None:
                runtime.features = await asyncio.to_thread(self._open_features, runtime)
        except Exception as exc:  # any failure: report it, keep serving the old revision
            message = f"revision {revision} failed to load: {type(exc).__name__}: {exc}"
            self.failures[name] = LoadFailure(revision, message[:2000])
            log = _log.error if isinstance(exc, StewardError) else _log.exception
            log("deployment %s: %s", name, message)
            return
        self.runtimes[name] = runtime  # the atomic swap
        self.failures.pop(name, None)
        _log.info("deployment %s: serving revision %d", name, revision)
        self.residency.enforce()
        if current is not None:
            task = asyncio.create_task(current.close())
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)

    def _open_features(self, runtime: DeploymentRuntime) -> FeatureFetcher:
        if self._features is None:  # opened once, by the first revision that names a service
            self._features = FeatureStore(self.store)
        return FeatureFetcher.open(
            runtime.revision.settings,
            {n: v.model.signature for n, v in runtime.variants.items()},
            self._features,
            name=runtime.name,
        )

    def _slots(self) -> Iterator[ModelSlot]:
        for runtime in list(self.runtimes.values()):
            for variant in runtime.variants.values():
                yield variant.slot

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.gateway_poll_interval)
            try:
                await self.refresh()
            except Exception:  # the database may be away for a moment; keep serving
                _log.exception("polling deployments failed; serving what is loaded")

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Return whether every deployment is loaded and warmed, with the reasons if not."""
        missing = {
            name: failure.error
            for name, failure in self.failures.items()
            if name not in self.runtimes
        }
        ready = self.polled and not missing
        return ready, {
            "ready": ready,
            "deployments": {n: r.revision.revision for n, r in sorted(self.runtimes.items())},
            "not_loaded": missing,
        }

    # -- access ------------------------------------------------------------

    def authorize(self, authorization: str | None, scope: str, resource: str) -> Caller:
        """Return the caller if its credential holds ``scope`` on ``resource``.

        Raises:
            AuthenticationError: no credential, or one that does not verify (401).
            PermissionDeniedError: the caller lacks the scope (403; the denial is audited).
        """
        if self.settings.gateway_insecure_local:
            return Caller(None, override_allowed=True)
        if authorization is None or not authorization.strip():
            raise AuthenticationError(
                "this gateway needs a credential: send 'Authorization: Bearer <token>' with a "
                f"steward token or JWT holding {scope!r}"
            )
        principal = authenticate(self.store, authorization, self.governance)
        try:
            self.authorizer.check(principal, scope, resource=resource)
        except PermissionDeniedError:
            self._audit_denial(principal, scope, resource)
            raise
        return Caller(principal.name, self._may(principal, OVERRIDE_SCOPE, resource))

    def _may(self, principal: Principal, scope: str, resource: str) -> bool:
        try:
            self.authorizer.check(principal, scope, resource=resource)
        except PermissionDeniedError:
            return False
        return True

    def _audit_denial(self, principal: Principal, scope: str, resource: str) -> None:
        with contextlib.suppress(PermissionDeniedError):
            self.store.as_principal(principal).with_authorizer(self.authorizer).authorize(
                scope, resource=resource
            )

    # -- shutdown ----------------------------------------------------------

    async def close(self) -> None:
        """Stop polling, finish queued work, write the logs and release the store."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self.canaries.close()
        if self.compactor is not None:
            await self.compactor.close()
        for runtime in self.runtimes.values():
            for task in list(runtime.shadow_tasks):
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await task
            await runtime.close()
        if self._retired:
            await asyncio.gather(*self._retired, return_exceptions=True)
        for log in self._logs.values():
            log.close()
        if self._features is not None:
            self._features.close()
        if self._own_store:
            self.store.close()
