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
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from steward.core import (
    BackendUnavailableError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    StewardError,
    load_settings,
    new_id,
)
from steward.governance import AuthenticationError, GovernanceSettings
from steward.registry import SignatureError
from steward.serving._gateway_settings import GatewaySettings
from steward.serving._predlog import FeedbackRecord, PredictionRecord
from steward.serving._resilience import (
    ModelTimeoutError,
    RateLimitedError,
    RetryLaterError,
    with_timeout,
)
from steward.serving._runtime import DeploymentRuntime, ModelFailedError, VariantRuntime
from steward.serving._wire import (
    RequestProblemError,
    decode_feedback,
    decode_predict,
    prepare_block,
    records_of,
)
from steward.serving._worker import Caller, GatewayWorker
from steward.store import Store

__all__ = ["create_app", "create_app_from_env", "error_response"]

_log = logging.getLogger("steward.serving.gateway")
_JSON = "application/json"
_encoder = msgspec.json.Encoder()


class PayloadTooLargeError(InvalidInputError):
    """The request body is larger than the gateway accepts (HTTP 413)."""


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encoder.encode(body), status_code=status, media_type=_JSON, headers=headers)


def error_response(exc: BaseException) -> Response:
    """Map an error to its HTTP response: the one table of status codes.

    ==============================  ======  =============================
    error                           status  body extras / headers
    ==============================  ======  =============================
    RequestProblemError             422     errors: [{row, field, message}]
    SignatureError                  422     errors: [{field, message}]
    PayloadTooLargeError            413
    InvalidInputError               422
    AuthenticationError             401     WWW-Authenticate: Bearer
    PermissionDeniedError           403
    NotFoundError                   404
    ConflictError                   409
    RateLimitedError                429     Retry-After
    RetryLaterError (overload...)   503     Retry-After
    ModelTimeoutError               504
    ModelFailedError                503
    BackendUnavailableError         503
    anything else                   500
    ==============================  ======  =============================
    """
    message = str(exc)
    if isinstance(exc, RequestProblemError):
        errors = [p.as_dict() for p in exc.problems]
        return _json({"error": "invalid_input", "message": message, "errors": errors}, 422)
    if isinstance(exc, SignatureError):
        errors = [{"row": None, "field": f, "message": m} for f, m in exc.problems]
        return _json({"error": "invalid_input", "message": message, "errors": errors}, 422)
    if isinstance(exc, PayloadTooLargeError):
        return _json({"error": "payload_too_large", "message": message}, 413)
    if isinstance(exc, InvalidInputError):
        return _json({"error": "invalid_input", "message": message}, 422)
    if isinstance(exc, AuthenticationError):
        body = {"error": "unauthenticated", "message": message}
        return _json(body, 401, {"WWW-Authenticate": "Bearer"})
    if isinstance(exc, PermissionDeniedError):
        return _json({"error": "forbidden", "message": message}, 403)
    if isinstance(exc, NotFoundError):
        return _json({"error": "not_found", "message": message}, 404)
    if isinstance(exc, ConflictError):
        return _json({"error": "conflict", "message": message}, 409)
    if isinstance(exc, RetryLaterError):
        status = 429 if isinstance(exc, RateLimitedError) else 503
        headers = {"Retry-After": exc.retry_after_header}
        return _json({"error": "retry_later", "message": message}, status, headers)
    if isinstance(exc, ModelTimeoutError):
        return _json({"error": "model_timeout", "message": message}, 504)
    if isinstance(exc, ModelFailedError | BackendUnavailableError):
        return _json({"error": "unavailable", "message": message}, 503)
    _log.error("unexpected error in the gateway", exc_info=exc)
    return _json({"error": "internal", "message": "internal error; see the gateway's log"}, 500)


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    too_large = PayloadTooLargeError(
        f"the request body is larger than {limit:,} bytes; send fewer rows per request "
        "(or raise STEWARD_GATEWAY_MAX_BODY_BYTES)"
    )
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise too_large
    return bytes(chunks)


class _Handlers:
    """The endpoints, bound to one worker's state."""

    def __init__(self, worker: GatewayWorker) -> None:
        self.worker = worker
        self.max_body = worker.settings.gateway_max_body_bytes
        self.max_rows = worker.settings.gateway_max_rows
        self._latency_children: dict[tuple[str, str], Any] = {}

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
        try:
            caller = self.worker.authorize(
                request.headers.get("authorization"), f"predict:{name}", f"deployment:{name}"
            )
            runtime = self._runtime(name)
            body = decode_predict(await _body(request, self.max_body))
            records = records_of(body.inputs, max_rows=self.max_rows)
            async with self.worker.admission.admit():
                return await self._predict(runtime, caller, request, body.inputs, records, started)
        except Exception as exc:
            self.worker.metrics.errors.labels(
                name if name in self.worker.runtimes else "-", type(exc).__name__
            ).inc()
            return error_response(exc)

    async def _predict(
        self,
        runtime: DeploymentRuntime,
        caller: Caller,
        request: Request,
        inputs: Any,
        records: list[dict[str, Any]],
        started: float,
    ) -> Response:
        request_id = new_id()
        ts = datetime.now(UTC)
        route = runtime.router.route(
            request.headers,
            records[0],
            override_allowed=caller.override_allowed,
            request_id=request_id,
        )
        variant = runtime.variants[route.variant.name]
        block = prepare_block(variant.model.signature, records)
        try:
            result = await runtime.call(variant, block, records)
        except ModelFailedError as exc:
            failed = PredictionRecord(
                request_id=request_id,
                ts=ts,
                deployment=runtime.name,
                revision=runtime.revision.revision,
                variant=variant.variant.name,
                model_version=variant.variant.model,
                inputs=inputs,
                latency_ms=(time.perf_counter() - started) * 1000.0,
                caller=caller.name,
                test=route.test,
                error=str(exc)[:500],
            )
            await self._served(runtime, failed)
            raise
        variant.requests += 1
        variant.rows += len(records)
        for shadow in route.shadows:
            self._mirror(
                runtime, runtime.variants[shadow.name], records, inputs, request_id, ts, caller
            )
        latency = time.perf_counter() - started
        revision = runtime.revision
        record = PredictionRecord(
            request_id=request_id,
            ts=ts,
            deployment=runtime.name,
            revision=revision.revision,
            variant=variant.variant.name,
            model_version=variant.variant.model,
            inputs=inputs,
            outputs=result.outputs,
            latency_ms=latency * 1000.0,
            caller=caller.name,
            test=route.test,
            fallback=result.fallback,
            error=result.error,
        )
        await self._served(runtime, record)
        metrics = self.worker.metrics
        labels = (runtime.name, variant.variant.name)
        metrics.requests.labels(*labels, "200").inc()
        metrics.latency.labels(*labels).observe(time.perf_counter() - started)
        if result.fallback:
            metrics.fallbacks.labels(*labels).inc()
        if result.cached:
            metrics.cache_hits.labels(*labels).inc()
        return _json(
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
        await self.worker.log_for(runtime.revision.settings.log_mode).append_async(record)
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
        records: list[dict[str, Any]],
        inputs: Any,
        request_id: str,
        ts: datetime,
        caller: Caller,
    ) -> None:
        task = asyncio.create_task(
            self._shadow(runtime, shadow, records, inputs, request_id, ts, caller)
        )
        runtime.shadow_tasks.add(task)
        task.add_done_callback(runtime.shadow_tasks.discard)

    async def _shadow(
        self,
        runtime: DeploymentRuntime,
        shadow: VariantRuntime,
        records: list[dict[str, Any]],
        inputs: Any,
        request_id: str,
        ts: datetime,
        caller: Caller,
    ) -> None:
        started = time.perf_counter()
        outputs: Any = None
        error = None
        try:
            outputs = await with_timeout(
                shadow.batcher.submit(prepare_block(shadow.model.signature, records)),
                runtime.timeout_s,
                what=f"shadow model {shadow.variant.model}",
            )
            outcome = "ok"
        except Exception as exc:  # a shadow's failure never reaches the caller; it is logged
            error = f"{type(exc).__name__}: {exc}"[:500]
            shadow.errors += 1
            shadow.last_error = error
            outcome = "error"
        shadow.requests += 1
        self.worker.metrics.shadow.labels(runtime.name, shadow.variant.name, outcome).inc()
        record = PredictionRecord(
            request_id=request_id,
            ts=ts,
            deployment=runtime.name,
            revision=runtime.revision.revision,
            variant=shadow.variant.name,
            model_version=shadow.variant.model,
            inputs=inputs,
            outputs=outputs,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            caller=caller.name,
            shadow=True,
            error=error,
        )
        try:
            await self._served(runtime, record)
        except StewardError:
            _log.exception("could not log the shadow prediction of %s", request_id)

    async def feedback(self, request: Request) -> Response:
        try:
            deployment = request.query_params.get("deployment")
            body = decode_feedback(await _body(request, 64 * 1024))
            name = body.deployment if body.deployment is not None else deployment
            if name is None:
                raise RequestProblemError(
                    "feedback needs the deployment that served the request: add "
                    '"deployment": "NAME" to the body',
                    [],
                )
            caller = self.worker.authorize(
                request.headers.get("authorization"), f"predict:{name}", f"deployment:{name}"
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
            if runtime.bandit is not None and body.reward is not None:
                with contextlib.suppress(NotFoundError):  # served by another worker
                    arm = runtime.bandit.reward(body.request_id, body.reward)
            return _json({"request_id": body.request_id, "logged": True, "bandit_arm": arm})
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
            return _json(view)
        except Exception as exc:
            return error_response(exc)

    async def healthz(self, request: Request) -> Response:
        return _json({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        ready, view = self.worker.readiness()
        return _json(view, 200 if ready else 503)

    async def metrics(self, request: Request) -> Response:
        return Response(
            self.worker.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )


def create_app(
    settings: GatewaySettings | None = None,
    *,
    store: Store | None = None,
    governance: GovernanceSettings | None = None,
) -> Starlette:
    """Build the gateway's ASGI app; deployments load when the app starts (its lifespan).

    Example:
        >>> app = create_app(load_settings(GatewaySettings))  # doctest: +SKIP
        >>> uvicorn.run(app, port=8700)  # doctest: +SKIP

    Args:
        settings: the gateway's settings (default: ``STEWARD_*`` from the environment).
        store: serve from this store instead of opening one from ``settings``.
        governance: governance settings for authentication (default: the environment).
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
        Route("/v1/deployments/{name}/predict", bound("predict"), methods=["POST"]),
        Route("/v1/deployments/{name}", bound("status"), methods=["GET"]),
        Route("/v1/feedback", bound("feedback"), methods=["POST"]),
        Route("/healthz", bound("healthz"), methods=["GET"]),
        Route("/readyz", bound("readyz"), methods=["GET"]),
        Route("/metrics", bound("metrics"), methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def create_app_from_env() -> Starlette:
    """Build the app from ``STEWARD_*`` settings (the factory uvicorn's workers call)."""
    return create_app(load_settings(GatewaySettings))
