"""The gateway's HTTP edge: the one table of error statuses, JSON answers, bounded bodies."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from steward.core import (
    BackendUnavailableError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from steward.governance import AuthenticationError
from steward.registry import SignatureError
from steward.serving._resilience import (
    EarlyRetryError,
    ModelTimeoutError,
    RateLimitedError,
    RetryLaterError,
)
from steward.serving._runtime import ModelFailedError
from steward.serving._wire import RequestProblemError

__all__ = ["PayloadTooLargeError", "error_response", "json_response", "read_body"]

_log = logging.getLogger("steward.serving.gateway")
_JSON = "application/json"
_encoder = msgspec.json.Encoder()


class PayloadTooLargeError(InvalidInputError):
    """The request body is larger than the gateway accepts (HTTP 413)."""


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
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
    EarlyRetryError                 429     Retry-After: 0
    RetryLaterError (overload,      503     Retry-After
      open circuit breaker)
    ModelTimeoutError               504
    ModelFailedError                503
    BackendUnavailableError         503
    anything else                   500
    ==============================  ======  =============================
    """
    message = str(exc)
    if isinstance(exc, RequestProblemError):
        errors = [p.as_dict() for p in exc.problems]
        return json_response({"error": "invalid_input", "message": message, "errors": errors}, 422)
    if isinstance(exc, SignatureError):
        errors = [{"row": None, "field": f, "message": m} for f, m in exc.problems]
        return json_response({"error": "invalid_input", "message": message, "errors": errors}, 422)
    if isinstance(exc, PayloadTooLargeError):
        return json_response({"error": "payload_too_large", "message": message}, 413)
    if isinstance(exc, InvalidInputError):
        return json_response({"error": "invalid_input", "message": message}, 422)
    if isinstance(exc, AuthenticationError):
        body = {"error": "unauthenticated", "message": message}
        return json_response(body, 401, {"WWW-Authenticate": "Bearer"})
    if isinstance(exc, PermissionDeniedError):
        return json_response({"error": "forbidden", "message": message}, 403)
    if isinstance(exc, NotFoundError):
        return json_response({"error": "not_found", "message": message}, 404)
    if isinstance(exc, ConflictError):
        return json_response({"error": "conflict", "message": message}, 409)
    if isinstance(exc, RetryLaterError):
        status = 429 if isinstance(exc, RateLimitedError | EarlyRetryError) else 503
        headers = {"Retry-After": exc.retry_after_header}
        return json_response({"error": "retry_later", "message": message}, status, headers)
    if isinstance(exc, ModelTimeoutError):
        return json_response({"error": "model_timeout", "message": message}, 504)
    if isinstance(exc, ModelFailedError | BackendUnavailableError):
        return json_response({"error": "unavailable", "message": message}, 503)
    _log.error("unexpected error in the gateway", exc_info=exc)
    return json_response(
        {"error": "internal", "message": "internal error; see the gateway's log"}, 500
    )


async def read_body(request: Request, limit: int) -> bytes:
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
