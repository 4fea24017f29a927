"""The gateway: the HTTP data plane that serves deployments (Starlette, msgspec on the wire).

Endpoints::

    POST /v1/deployments/{name}/predict   one record, a batch, or columns -> outputs
    POST /v1/feedback                     a label or reward for an earlier request id
    GET  /v1/deployments/{name}           revision, variants, load facts, errors, traffic
    GET  /healthz                         the process is up
    GET  /readyz                          every deployment is loaded and warmed
    GET  /metrics                         Prometheus text format

Errors map to status codes in one table (:func:`error_response`); every error
body is ``{"error": KIND, "message": ...}`` and bad input adds ``"errors"``,
one entry per row and field.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from steward.core import (
    BackendUnavailableError,
    NotFoundError,
    StewardError,
    load_settings,
    new_id,
)
from steward.governance import GovernanceSettings
from steward.serving._batching import BatchTimeoutError
from steward.serving._feedback import BanditRewards
from steward.serving._gateway_http import error_response, json_response, read_body
from steward.serving._gateway_settings import GatewaySettings
from steward.serving._online_features import FetchedFeatures
from steward.serving._predlog import FeedbackRecord, PredictionRecord
from steward.serving._resilience import (
    OverloadedError,
    RateLimitedError,
    timeout_error,
)
from steward.serving._runtime import DeploymentRuntime, ModelFailedError, VariantRuntime
from steward.serving._wire import (
    PredictInputs,
    RequestProblemError,
    decode_feedback,
    decode_inputs,
    prepare_block,
)
from steward.serving._worker import Caller, GatewayWorker
from steward.store import Store

__all__ = ["create_app", "create_app_from_env", "error_response"]

_log = logging.getLogger("steward.serving.gateway")


@dataclass(slots=True)
class _Seen:
    """What a predict request got as far as, for counting it however it ends."""

    variant: str | None = None
    test: bool = False


@dataclass(slots=True)
class _Asked:
    """What a request asked, for the log record of each variant that answered it."""

    runtime: DeploymentRuntime
    request_id: str
    ts: datetime
    inputs: Any
    fetched: FetchedFeatures | None
    caller: Caller
    started: float

    def record(self, variant: VariantRuntime, **outcome: Any) -> PredictionRecord:
        """The record of ``variant``'s answer (outputs, error, flags in ``outcome``), timed now."""
        return PredictionRecord(
            request_id=self.request_id,
            ts=self.ts,
            deployment=self.runtime.name,
            revision=self.runtime.revision.revision,
            variant=variant.variant.name,
            model_version=variant.variant.model,
            inputs=self.inputs,
            features=None if self.fetched is None else self.fetched.log_entry(),
            latency_ms=(time.perf_counter() - self.started) * 1000.0,
            caller=self.caller.name,
            **outcome,
        )


def _caller_key(caller: Caller, request: Request) -> str:
    """The rate limit's key: the token's identity, or the client address without auth."""
    if caller.name is not None:
        return f"identity:{caller.name}"
    return f"address:{request.client.host if request.client else 'unknown'}"


def _connection_key(caller: Caller, request: Request) -> tuple[Any, ...] | None:
    """The early-retry guard's key: the client's connection and the caller on it.

    The caller is part of it so that a proxy which pools its connections to the
    gateway does not get one caller's request held for another's refusal.
    """
    client = request.scope.get("client")
    return None if client is None else (*client, caller.name)


class _Handlers:
    """The endpoints, bound to one worker's state."""

    def __init__(self, worker: GatewayWorker) -> None:
        self.worker = worker
        self.max_body = worker.settings.gateway_max_body_bytes
        self.max_rows = worker.settings.gateway_max_rows
        self.max_shadows = worker.settings.gateway_max_shadow_in_flight
        self.shadows_in_flight = 0
        self.rewards = BanditRewards(worker.log_for("durable"))

    def _runtime(self, name: str) -> DeploymentRuntime:
        runtime = self.worker.runtimes.get(name)
        if runtime is not None:
            return runtime
        failure = self.worker.failures.get(name)
        if failure is not None:
            raise BackendUnavailableError(f"deployment {name!r} is not serving: {failure.error}")
        known = ", ".join(sorted(self.worker.runtimes)) or "none"
        raise NotFoundError(f"no deployment named {name!r} is served here; deployments: {known}")

    async def predict(self, request: Request) -> Response:
        started = time.perf_counter()
        name = request.path_params["name"]
        seen = _Seen()
        connection = None
        try:
            caller = self.worker.authorize(
                request.headers.get("authorization"), f"predict:{name}", f"deployment:{name}"
            )
            connection = _connection_key(caller, request)
            await self.worker.early_retries.check(connection)
            self._limit(name, caller, request)
            runtime = self._runtime(name)
            decoded = decode_inputs(
                await read_body(request, self.max_body),
                max_rows=self.max_rows,
                signature=runtime.input_signature,
            )
            async with self.worker.admission.admit():
                # Take the revision in force now: one swapped in while this request read its
                # body or waited for a slot has retired the old one, whose batchers refuse
                # new rows. Only an online-feature fetch awaits before the rows are queued,
                # and _predict takes the revision again after it.
                runtime = self._runtime(name)
                response = await self._predict(runtime, caller, request, decoded, started, seen)
        except Exception as exc:
            self.worker.metrics.errors.labels(self._label(name), type(exc).__name__).inc()
            response = error_response(exc)
            if isinstance(exc, OverloadedError):
                retry_after = float(exc.retry_after_header)  # what the client was told
                self.worker.early_retries.refused(connection, retry_after_s=retry_after)
        self.worker.metrics.count_request(
            self._label(name),
            seen.variant,
            response.status_code,
            test=seen.test,
            seconds=time.perf_counter() - started,
        )
        return response

    def _label(self, name: str) -> str:
        # Unknown names stay out of the labels: a scanner must not grow the metrics.
        return name if name in self.worker.runtimes else "-"

    def _limit(self, name: str, caller: Caller, request: Request) -> None:
        limiter = self.worker.rate_limiter
        if limiter is None:
            return
        try:
            limiter.acquire(_caller_key(caller, request))
        except RateLimitedError:
            self.worker.metrics.rate_limited.labels(self._label(name)).inc()
            raise

    async def _predict(
        self,
        runtime: DeploymentRuntime,
        caller: Caller,
        request: Request,
        decoded: PredictInputs,
        started: float,
        seen: _Seen,
    ) -> Response:
        request_id = new_id()
        ts = datetime.now(UTC)
        inputs, records = decoded.inputs, decoded.records
        fetched = None
        if runtime.features is not None:
            fetched = await runtime.features.fetch(records)
            current = self._runtime(runtime.name)
            if current is not runtime:  # swapped during the fetch: start over on the new one
                return await self._predict(current, caller, request, decoded, started, seen)
        route = runtime.router.route(
            request.headers,
            records[0],
            override_allowed=caller.override_allowed,
            request_id=request_id,
        )
        variant = runtime.variants[route.variant.name]
        seen.variant, seen.test = variant.variant.name, route.test
        if fetched is None:
            model_records = records
            block = decoded.block_for(variant.model.signature)
        else:
            model_records = fetched.model_records(variant.variant.name, records)
            block = prepare_block(variant.model.signature, model_records)
        try:
            async with self.worker.residency.use(variant.slot):
                result = await runtime.call(variant, block, model_records)
        except ModelFailedError as exc:  # logged (and counted for canaries) before its 503
            asked = _Asked(runtime, request_id, ts, inputs, fetched, caller, started)
            await self._served(
                runtime, asked.record(variant, test=route.test, error=str(exc)[:500])
            )
            raise
        if route.test:
            variant.test_requests += 1
        else:
            variant.requests += 1
        variant.rows += len(records)
        for shadow in route.shadows:
            self._mirror(
                runtime, runtime.variants[shadow.name], decoded, request_id, ts, caller, fetched
            )
        revision = runtime.revision
        record = _Asked(runtime, request_id, ts, inputs, fetched, caller, started).record(
            variant,
            outputs=result.outputs,
            test=route.test,
            fallback=result.fallback,
            error=result.error,
        )
        await self._served(runtime, record)
        metrics = self.worker.metrics
        labels = (runtime.name, variant.variant.name)
        if result.fallback:
            metrics.fallbacks.labels(*labels).inc()
        if result.cached:
            metrics.cache_hits.labels(*labels).inc()
        return json_response(
            {
                "request_id": request_id,
                "deployment": runtime.name,
                "revision": revision.revision,
                "model_version": variant.variant.model,
                "variant": variant.variant.name,
                "outputs": result.outputs,
                "fallback": result.fallback,
                "test": route.test,
            }
        )

    async def _served(self, runtime: DeploymentRuntime, record: PredictionRecord) -> None:
        """Log what a request got (an answer, a fallback or a failure) and count it for canaries."""
        # Built here with the declared field types from decoded JSON and model outputs:
        # the decode-back check of arbitrary records is not needed.
        await self.worker.log_for(runtime.revision.settings.log_mode).append_async(
            record, verify=False
        )
        self.worker.canaries.observe(
            record.deployment,
            record.variant,
            record.latency_ms,
            shadow=record.shadow,
            test=record.test,
            error=record.error is not None,
            outputs=record.outputs,
        )

    def _mirror(
        self,
        runtime: DeploymentRuntime,
        shadow: VariantRuntime,
        decoded: PredictInputs,
        request_id: str,
        ts: datetime,
        caller: Caller,
        fetched: FetchedFeatures | None,
    ) -> None:
        if self.shadows_in_flight >= self.max_shadows:
            # Over the cap the copy is dropped, not queued: shadows never slow the primary.
            self.worker.metrics.shadow.labels(runtime.name, shadow.variant.name, "dropped").inc()
            return
        self.shadows_in_flight += 1
        task = asyncio.create_task(
            self._shadow(runtime, shadow, decoded, request_id, ts, caller, fetched)
        )
        runtime.shadow_tasks.add(task)
        task.add_done_callback(runtime.shadow_tasks.discard)
        task.add_done_callback(self._shadow_done)

    def _shadow_done(self, task: asyncio.Task[None]) -> None:
        self.shadows_in_flight -= 1

    async def _shadow(
        self,
        runtime: DeploymentRuntime,
        shadow: VariantRuntime,
        decoded: PredictInputs,
        request_id: str,
        ts: datetime,
        caller: Caller,
        fetched: FetchedFeatures | None,
    ) -> None:
        started = time.perf_counter()
        outputs: Any = None
        error = None
        try:
            async with self.worker.residency.use(shadow.slot):
                if fetched is None:
                    block = decoded.block_for(shadow.model.signature)
                else:
                    records = fetched.model_records(shadow.variant.name, decoded.records)
                    block = prepare_block(shadow.model.signature, records)
                timeout_s = runtime.timeout_for(shadow.variant.name)
                try:
                    outputs = await shadow.batcher.submit(block, timeout_s=timeout_s)
                except BatchTimeoutError as exc:
                    what = f"shadow model {shadow.variant.model}"
                    raise timeout_error(what, timeout_s or 0.0) from exc
            outcome = "ok"
        except Exception as exc:  # a shadow's failure never reaches the caller; it is logged
            error = f"{type(exc).__name__}: {exc}"[:500]
            shadow.errors += 1
            shadow.last_error = error
            outcome = "error"
        shadow.requests += 1
        self.worker.metrics.shadow.labels(runtime.name, shadow.variant.name, outcome).inc()
        record = _Asked(runtime, request_id, ts, decoded.inputs, fetched, caller, started).record(
            shadow, outputs=outputs, shadow=True, error=error
        )
        try:
            await self._served(runtime, record)
        except StewardError:
            _log.exception("could not log the shadow prediction of %s", request_id)

    async def feedback(self, request: Request) -> Response:
        try:
            deployment = request.query_params.get("deployment")
            body = decode_feedback(await read_body(request, 64 * 1024))
            name = body.deployment if body.deployment is not None else deployment
            if name is None:
                raise RequestProblemError(
                    "feedback needs the deployment that served the request: add "
                    '"deployment": "NAME" to the body',
                    [],
                )
            caller = self.worker.authorize(
                request.headers.get("authorization"), f"feedback:{name}", f"deployment:{name}"
            )
            runtime = self._runtime(name)
            await self.worker.log_for("durable").append_async(
                FeedbackRecord(
                    request_id=body.request_id,
                    ts=datetime.now(UTC),
                    label=body.label,
                    reward=body.reward,
                    caller=caller.name,
                )
            )
            arm = None
            if body.reward is not None:
                arm = await self.rewards.credit(runtime, body.request_id, body.reward)
            return json_response({"request_id": body.request_id, "logged": True, "bandit_arm": arm})
        except Exception as exc:
            return error_response(exc)

    async def status(self, request: Request) -> Response:
        name = request.path_params["name"]
        try:
            self.worker.authorize(
                request.headers.get("authorization"), f"predict:{name}", f"deployment:{name}"
            )
            runtime = self._runtime(name)
            view = runtime.describe()
            failure = self.worker.failures.get(name)
            view["load_error"] = None if failure is None else failure.error
            compactor = self.worker.compactor
            view["log_compaction"] = None if compactor is None else compactor.describe()
            return json_response(view)
        except Exception as exc:
            return error_response(exc)

    async def healthz(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        ready, view = self.worker.readiness()
        return json_response(view, 200 if ready else 503)

    async def metrics(self, request: Request) -> Response:
        return Response(
            self.worker.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )


def create_app(
    settings: GatewaySettings | None = None,
    *,
    store: Store | None = None,
    governance: GovernanceSettings | None = None,
    freeze_gc: bool = False,
) -> Starlette:
    """Build the gateway's ASGI app; deployments load when the app starts (its lifespan).

    Example:
        >>> app = create_app(load_settings(GatewaySettings))  # doctest: +SKIP
        >>> uvicorn.run(app, port=8700)  # doctest: +SKIP

    Args:
        settings: the gateway's settings (default: ``STEWARD_*`` from the environment).
        store: serve from this store instead of opening one from ``settings``.
        governance: governance settings for authentication (default: the environment).
        freeze_gc: once loaded, move every object of the process out of the garbage
            collector's later passes (``gc.freeze``), which shortens its pauses. For a
            process that only serves (``steward gateway`` sets it); an embedding
            process keeps its collector as it is.
    """
    settings = settings or load_settings(GatewaySettings)
    holder: dict[str, _Handlers] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        worker = GatewayWorker(settings, store=store, governance=governance)
        if settings.gateway_insecure_local:
            _log.warning("INSECURE LOCAL MODE: the gateway serves without authentication")
        holder["handlers"] = _Handlers(worker)
        app.state.worker = worker
        try:
            await worker.start()
            if freeze_gc:  # what is loaded now lives as long as the worker
                gc.collect()
                gc.freeze()
            yield
        finally:
            await worker.close()

    def bound(method: str) -> Any:
        async def endpoint(request: Request) -> Response:
            handler: Any = getattr(holder["handlers"], method)
            response: Response = await handler(request)
            return response

        return endpoint

    routes = [
        # Served by _Gateway's fast path; the route stays for 405s and the route table.
        Route("/v1/deployments/{name}/predict", bound("predict"), methods=["POST"]),
        Route("/v1/deployments/{name}", bound("status"), methods=["GET"]),
        Route("/v1/feedback", bound("feedback"), methods=["POST"]),
        Route("/healthz", bound("healthz"), methods=["GET"]),
        Route("/readyz", bound("readyz"), methods=["GET"]),
        Route("/metrics", bound("metrics"), methods=["GET"]),
    ]
    return _Gateway(holder, routes=routes, lifespan=lifespan)


_PREDICT_PREFIX = "/v1/deployments/"
_PREDICT_SUFFIX = "/predict"


class _Gateway(Starlette):
    """Starlette, with predict requests taken straight to their handler.

    The predict endpoint is the hot path: it catches its own errors and answers
    them (see :func:`error_response`), so it skips the middleware and the route
    table, which cost about a tenth of a request's time. Everything else, and
    every predict path that is not exactly ``/v1/deployments/NAME/predict``,
    goes through Starlette.
    """

    def __init__(self, handlers: dict[str, _Handlers], **options: Any) -> None:
        super().__init__(**options)
        self._handlers = handlers

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith(_PREDICT_PREFIX) and path.endswith(_PREDICT_SUFFIX):
                name = path[len(_PREDICT_PREFIX) : -len(_PREDICT_SUFFIX)]
                handlers = self._handlers.get("handlers")
                if name and "/" not in name and handlers is not None:
                    scope["app"] = self
                    scope["path_params"] = {"name": name}
                    response = await handlers.predict(Request(scope, receive))
                    await response(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)


def create_app_from_env() -> Starlette:
    """Build the app from ``STEWARD_*`` settings (the factory uvicorn's workers call)."""
    return create_app(load_settings(GatewaySettings), freeze_gc=True)
