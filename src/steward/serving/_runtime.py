"""A deployment revision loaded into one gateway worker: models, batchers, breakers, fallback.

Loading happens off the event loop (in a thread), once per revision: every
variant's model is loaded (compiled ONNX preferred where parity was
verified), warmed with a sample record, and given its micro-batcher and
circuit breaker; the fallback is resolved. Only a revision that loads and
warms completely ever takes traffic. Each model sits in a slot that the
worker's memory budget may empty while it is idle (see ``_residency``), and
each model call is metered for its CPU time (see ``_usage``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from steward.core import InvalidInputError, StewardError
from steward.registry import LoadedModel, RegistryService, Signature
from steward.serving._bandit import BanditPolicy, EpsilonGreedy, ThompsonSampling
from steward.serving._bandit_store import BanditStateStore
from steward.serving._batching import BatchTimeoutError, MicroBatcher
from steward.serving._cache import ResponseCache
from steward.serving._deployment_models import DeploymentRevision
from steward.serving._fallback import Predict, ResolvedFallback, parse_fallback, resolve_fallback
from steward.serving._online_features import FeatureFetcher
from steward.serving._residency import ModelSlot, measure_load
from steward.serving._resilience import (
    CircuitBreaker,
    CircuitOpenError,
    ModelTimeoutError,
    timeout_error,
)
from steward.serving._routing import Router
from steward.serving._routing_spec import Variant
from steward.serving._usage import VariantUsage, total_usage
from steward.serving._wire import build_block, check_records, warm_record

__all__ = ["CallResult", "DeploymentRuntime", "ModelFailedError", "VariantRuntime", "load_runtime"]

Block = Any  # a request's model input: a float matrix, a dict of columns, or records
BatchObserver = Callable[[str, int], None]


class ModelFailedError(StewardError):
    """The variant's model raised and no fallback is set.

    Without a fallback, a timeout raises :class:`ModelTimeoutError` (HTTP 504)
    and an open breaker :class:`CircuitOpenError` (HTTP 503 + ``Retry-After``)
    instead.
    """

    def __init__(self, message: str, *, cause: BaseException) -> None:
        super().__init__(message)
        self.cause = cause


def model_outputs(model: LoadedModel, block: Block) -> list[Any]:
    """Run ``model`` on one block; return one JSON-ready output per row.

    A classifier answers ``{"label": ..., "probabilities": {class: p}}`` from one
    ``predict_proba`` call; anything else answers its ``predict`` value.
    """
    if callable(getattr(model.model, "predict_proba", None)):
        proba = np.asarray(model.predict_proba(block), dtype=np.float64)
        if proba.ndim == 2:
            sig = model.signature
            classes = list(sig.classes) if sig is not None and sig.classes is not None else None
            if classes is None or len(classes) != proba.shape[1]:
                classes = list(range(proba.shape[1]))
            keys = [str(c) for c in classes]
            labels = [classes[i] for i in proba.argmax(axis=1).tolist()]
            rows = proba.tolist()
            if len(keys) == 2:  # the common case, spelled out: half the time of zip per row
                k0, k1 = keys
                probabilities = [{k0: p0, k1: p1} for p0, p1 in rows]
            else:
                probabilities = [dict(zip(keys, row, strict=True)) for row in rows]
            return [
                {"label": label, "probabilities": p}
                for label, p in zip(labels, probabilities, strict=True)
            ]
    return np.asarray(model.predict(block)).tolist()  # type: ignore[no-any-return]


def _rows(block: Block) -> int:
    if isinstance(block, np.ndarray):
        return int(block.shape[0])
    if isinstance(block, dict):
        return len(next(iter(block.values()), []))
    return len(block)


def batch_function(
    current: Callable[[], LoadedModel], observe: BatchObserver | None = None, name: str = ""
) -> Callable[[list[Block]], list[list[Any]]]:
    """Return the micro-batcher's function: many requests' blocks in, their outputs out.

    ``current`` returns the model for each call (a slot's, which may have been
    reloaded since). Float matrices are stacked into one model call; other
    blocks run one by one.
    """

    def run(blocks: list[Block]) -> list[list[Any]]:
        if observe is not None:
            observe(name, len(blocks))
        model = current()
        if len(blocks) == 1:
            return [model_outputs(model, blocks[0])]
        if all(isinstance(b, np.ndarray) for b in blocks):
            outputs = model_outputs(model, np.vstack(blocks))
            result: list[list[Any]] = []
            start = 0
            for block in blocks:
                end = start + block.shape[0]
                result.append(outputs[start:end])
                start = end
            return result
        return [model_outputs(model, b) for b in blocks]

    return run


@dataclass
class VariantRuntime:
    """One variant of a loaded revision, with its model and its own resilience state."""

    variant: Variant
    slot: ModelSlot
    batcher: MicroBatcher[Block, list[Any]]
    breaker: CircuitBreaker
    load_seconds: float
    usage: VariantUsage = field(default_factory=VariantUsage)
    requests: int = 0
    test_requests: int = 0
    rows: int = 0
    errors: int = 0
    fallbacks: int = 0
    cache_hits: int = 0
    last_error: str | None = None

    @property
    def model(self) -> LoadedModel:
        """The variant's model (only its metadata while unloaded under the memory budget)."""
        return self.slot.model

    def describe(self) -> dict[str, Any]:
        """Facts for the status endpoint."""
        stats = self.batcher.stats()
        snap = self.breaker.snapshot()
        return {
            "name": self.variant.name,
            "model": self.variant.model,
            "role": self.variant.role,
            "weight": self.variant.weight,
            "artifact": self.model.artifact,
            "flavor": self.model.flavor,
            "load_seconds": round(self.load_seconds, 4),
            "requests": self.requests,
            "test_requests": self.test_requests,
            "rows": self.rows,
            "errors": self.errors,
            "fallbacks": self.fallbacks,
            "cache_hits": self.cache_hits,
            "last_error": self.last_error,
            "breaker": snap.state,
            "batches": stats.batches,
            "inline_calls": stats.inline,
            "mean_batch_size": stats.mean_batch_size,
            **self.usage.describe(),
            **self.slot.describe(),
        }


@dataclass(frozen=True)
class CallResult:
    """What a variant (or its fallback) answered for one request."""

    outputs: list[Any]
    fallback: bool = False
    error: str | None = None
    cached: bool = False


@dataclass
class DeploymentRuntime:
    """A deployment revision ready to serve in this worker."""

    revision: DeploymentRevision
    router: Router
    variants: dict[str, VariantRuntime]
    fallback: ResolvedFallback | None
    cache: ResponseCache[list[Any]] | None
    bandit: BanditPolicy | None
    loaded_at: datetime
    shadow_tasks: set[asyncio.Task[None]] = field(default_factory=set)
    features: FeatureFetcher | None = None

    @property
    def name(self) -> str:
        """The deployment's name."""
        return self.revision.deployment

    @functools.cached_property
    def input_signature(self) -> Signature | None:
        """What requests are checked against as they are decoded, before routing.

        The first primary variant's signature when the request's own fields are
        the model's input (no online features); a variant with another signature
        gets its input built from the records instead.
        """
        if self.features is not None:
            return None
        for runtime in self.variants.values():
            if runtime.variant.role == "primary":
                return runtime.model.signature
        return None

    @property
    def timeout_s(self) -> float | None:
        """The deployment-wide model timeout in seconds, or None."""
        ms = self.revision.settings.timeout_ms
        return None if ms is None else ms / 1000.0

    def timeout_for(self, variant: str) -> float | None:
        """Return ``variant``'s model timeout in seconds (its override, else the deployment's)."""
        return self.revision.settings.timeout_s(variant)

    async def call(
        self, runtime: VariantRuntime, block: Block, records: Sequence[Mapping[str, Any]]
    ) -> CallResult:
        """Answer one request with ``runtime``'s model, or its fallback when the model fails.

        Raises:
            InvalidInputError: the model refused the input (the caller's mistake).
            ModelFailedError: the model raised and the deployment declares no fallback.
            ModelTimeoutError: the model timed out and there is no fallback.
            CircuitOpenError: the variant's breaker is open and there is no fallback
                (``retry_after_s``: the rest of its cool-down).
        """
        key = None
        if self.cache is not None:
            key = self.cache.key(list(records), namespace=runtime.variant.model)
            hit = self.cache.get(key)
            if hit is not None:
                runtime.cache_hits += 1
                return CallResult(hit, cached=True)
        try:
            runtime.breaker.acquire()
        except CircuitOpenError as exc:
            return self._fallback(runtime, records, exc)
        timeout_s = self.timeout_for(runtime.variant.name)
        try:
            try:
                outputs = await runtime.batcher.submit(block, timeout_s=timeout_s)
            except BatchTimeoutError as exc:  # not a TimeoutError the model raised itself
                raise timeout_error(f"model {runtime.variant.model}", timeout_s or 0.0) from exc
        except InvalidInputError:
            runtime.breaker.record_success()  # the input was wrong, not the model
            raise
        except Exception as exc:
            runtime.breaker.record_failure()
            return self._fallback(runtime, records, exc)
        runtime.breaker.record_success()
        if self.cache is not None:
            self.cache.put(key, outputs)
        return CallResult(outputs)

    def _fallback(
        self, runtime: VariantRuntime, records: Sequence[Mapping[str, Any]], exc: BaseException
    ) -> CallResult:
        runtime.errors += 1
        reason = f"{type(exc).__name__}: {exc}"[:500]
        runtime.last_error = reason
        if self.fallback is None:
            raise self._unanswered(runtime, reason, exc) from exc
        runtime.fallbacks += 1
        return CallResult(self.fallback(records), fallback=True, error=reason)

    def _unanswered(self, runtime: VariantRuntime, reason: str, exc: BaseException) -> StewardError:
        # Without a fallback the caller learns what happened: an open breaker says
        # when to come back (503 + Retry-After), a timeout is a gateway timeout (504).
        where = f"variant {runtime.variant.name!r} ({runtime.variant.model}) of deployment "
        where += repr(self.name)
        if isinstance(exc, CircuitOpenError):
            return CircuitOpenError(
                f"{where} is not called: its circuit breaker opened after repeated failures "
                f"and the deployment declares no fallback; retry in {exc.retry_after_s:.1f} s",
                retry_after_s=exc.retry_after_s,
            )
        if isinstance(exc, ModelTimeoutError):
            return ModelTimeoutError(f"{where}: {exc}")
        return ModelFailedError(
            f"{where} failed ({reason}) and the deployment declares no fallback", cause=exc
        )

    def describe(self) -> dict[str, Any]:
        """Facts for the status endpoint: revision, variants, traffic shares."""
        variants = [v.describe() for v in self.variants.values()]
        total = sum(v["requests"] for v in variants if v["role"] == "primary")
        for v in variants:
            v["traffic_share"] = (
                round(v["requests"] / total, 4) if total and v["role"] == "primary" else None
            )
        return {
            "name": self.name,
            "revision": self.revision.revision,
            "strategy": self.revision.spec.strategy,
            "production": self.revision.production,
            "settings": self.revision.settings.to_dict(),
            "loaded_at": self.loaded_at.isoformat(),
            "fallback": None if self.fallback is None else self.fallback.kind,
            "bandit": None if self.bandit is None else self.bandit.describe(),
            "variants": variants,
            "usage": {
                **total_usage([v.usage for v in self.variants.values()]),
                "requests": sum(v["requests"] for v in variants),
                "memory_bytes": sum(v["memory_bytes"] for v in variants),
            },
            "features": None if self.features is None else self.features.describe(),
        }

    async def close(self) -> None:
        """Finish queued work and release the batchers' threads."""
        for runtime in self.variants.values():
            await runtime.batcher.close()
        if self.features is not None:
            await self.features.close()


def load_runtime(
    revision: DeploymentRevision,
    registry: RegistryService,
    *,
    breaker_failures: int = 5,
    breaker_cooldown_s: float = 10.0,
    bandit_store: BanditStateStore | None = None,
    observe_batch: Callable[[str, str, int], None] | None = None,
    cpu_hour_price: float | None = None,
    inline_call_ms: float = 0.0,
) -> DeploymentRuntime:
    """Load, warm and wire up every variant of ``revision`` (blocking: run it in a thread).

    Raises:
        StewardError: a model failed to load or to warm up, or the fallback failed
            to resolve; nothing of the revision is kept.
    """
    settings = revision.settings
    variants: dict[str, VariantRuntime] = {}
    name = revision.deployment
    # Batchers start their threads on first use, so a revision that fails here leaks none.
    for variant in revision.spec.variants:
        load = functools.partial(load_warm, registry, variant.model)
        model, grown, seconds = measure_load(load)
        slot = ModelSlot(variant.model, model, load=load, memory_bytes=grown, load_seconds=seconds)
        usage = VariantUsage(cpu_hour_price=cpu_hour_price)
        observe = None if observe_batch is None else functools.partial(observe_batch, name)
        variants[variant.name] = VariantRuntime(
            variant=variant,
            slot=slot,
            usage=usage,
            batcher=MicroBatcher(
                usage.meter(batch_function(slot.current, observe, variant.name), _rows),
                max_batch_size=settings.max_batch_size,
                max_wait_ms=settings.max_wait_ms,
                name=f"{name}/{variant.name}",
                inline_below_ms=inline_call_ms,
            ),
            breaker=CircuitBreaker(
                f"{name}/{variant.name}",
                failure_threshold=breaker_failures,
                cooldown_s=breaker_cooldown_s,
            ),
            load_seconds=seconds,
        )
    fallback = None
    if settings.fallback is not None:
        fallback = resolve_fallback(parse_fallback(settings.fallback), load_model=_loader(registry))
    bandit = _bandit(revision, bandit_store)
    return DeploymentRuntime(
        revision=revision,
        router=Router(revision.spec, bandit=bandit),
        variants=variants,
        fallback=fallback,
        cache=ResponseCache(ttl_s=settings.cache_ttl_s) if settings.cache else None,
        bandit=bandit,
        loaded_at=datetime.now(UTC),
    )


def _bandit(revision: DeploymentRevision, store: BanditStateStore | None) -> BanditPolicy | None:
    """Return the policy of a ``bandit`` revision (the one its settings name), else None."""
    if revision.spec.strategy != "bandit":
        return None
    arms = [v.name for v in revision.spec.primaries]
    bandit_id = f"{revision.deployment}:r{revision.revision}"
    floor = min(0.05, 1.0 / len(arms))
    settings = revision.settings
    if settings.bandit_policy == "epsilon_greedy":
        return EpsilonGreedy(
            arms, epsilon=settings.bandit_epsilon, bandit_id=bandit_id, store=store, floor=floor
        )
    return ThompsonSampling(arms, bandit_id=bandit_id, store=store, floor=floor)


def load_warm(registry: RegistryService, ref: str) -> LoadedModel:
    """Load ``ref`` verified (compiled ONNX preferred) and warm it with a sample record.

    Raises:
        StewardError: the model failed to load or to warm up.
    """
    model = registry.load(ref, prefer="onnx")
    warm = [warm_record(model.signature)]
    if model.signature is not None:
        check_records(model.signature, warm)
    model_outputs(model, build_block(model.signature, warm))
    return model


def _loader(registry: RegistryService) -> Callable[[str], Predict]:
    def load(ref: str) -> Predict:
        model = registry.load(ref, prefer="onnx")

        def predict(records: Sequence[Mapping[str, Any]]) -> list[Any]:
            return model_outputs(model, build_block(model.signature, [dict(r) for r in records]))

        return predict

    return load
