"""What the prediction log stores: one record per prediction, one per feedback.

Records are msgspec Structs, encoded as MessagePack on the hot path. Before a
record is accepted it is checked once, by encoding and decoding it against its
own type, so every frame in a segment is known to decode later: a record the
gateway could not log is refused at ``append`` with the field named, never
discovered at compaction time.

Non-finite numbers: ``latency_ms`` and ``reward`` must be finite (a NaN there is
a bug in the caller, refused with :class:`~steward.core.InvalidInputError`).
Inside ``inputs``, ``features`` and ``outputs`` a NaN or infinity is kept in the
segment but becomes JSON ``null`` in the Parquet partitions and in queries,
because JSON has no spelling for it; models treat missing values that way too.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

import msgspec

from steward.core import InvalidInputError
from steward.serving._predlog._errors import RecordTooLargeError

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "FeedbackRecord",
    "LogRecord",
    "PredictionRecord",
    "check_deployment_name",
    "decode_record",
    "encode_record",
]

DEFAULT_MAX_RECORD_BYTES = 4 * 1024 * 1024
# Deployment names become partition folders (deployment=<name>), so they must be path-safe.
_DEPLOYMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_MAX_REQUEST_ID = 256


class PredictionRecord(msgspec.Struct, kw_only=True, tag_field="kind", tag="prediction"):
    """One answered (or failed) prediction request, as the gateway served it.

    Attributes:
        request_id: the id returned to the caller; feedback joins on it.
        ts: when the request arrived, timezone-aware (stored in UTC).
        deployment: the deployment's name (letters, digits, ``.``, ``_``, ``-``).
        revision: the deployment revision whose routing spec served it.
        variant: the variant that answered (or ran in shadow).
        model_version: the model version behind the variant, e.g. ``"fraud/7"``.
        inputs: the request's inputs as decoded (JSON types).
        features: online features fetched for the request, by name, or ``None``.
        outputs: what the model returned (JSON types).
        latency_ms: time from arrival to answer, in milliseconds; finite, >= 0.
        caller: who called (principal name), when known.
        test: test traffic (header override); excluded from monitoring.
        fallback: answered by a fallback instead of the variant's model.
        shadow: a shadow variant's output, logged but never returned to the caller.
        error: the error that forced the fallback or failed the request, if any.
    """

    request_id: str
    ts: datetime
    deployment: str
    revision: int
    variant: str
    model_version: str
    inputs: Any
    features: dict[str, Any] | None = None
    outputs: Any = None
    latency_ms: float
    caller: str | None = None
    test: bool = False
    fallback: bool = False
    shadow: bool = False
    error: str | None = None


class FeedbackRecord(msgspec.Struct, kw_only=True, tag_field="kind", tag="feedback"):
    """The ground truth (``label``) or reward for an earlier prediction, joined by request id.

    Attributes:
        request_id: the prediction's request id.
        ts: when the feedback arrived, timezone-aware.
        label: the observed outcome (a class, a number, a flag), or ``None``.
        reward: a finite reward for bandit routing, or ``None``; one of the two is required.
        caller: who sent it, when known.
    """

    request_id: str
    ts: datetime
    label: bool | int | float | str | None = None
    reward: float | None = None
    caller: str | None = None


LogRecord = PredictionRecord | FeedbackRecord

_decoder = msgspec.msgpack.Decoder(LogRecord)


def _enc_hook(value: Any) -> Any:
    # NumPy scalars and arrays (what models return) become plain lists and numbers.
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    raise NotImplementedError(type(value).__name__)


_encoder = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
_valid_deployments: set[str] = set()  # names already checked: the check is a set lookup after


def check_deployment_name(name: object) -> str:
    """Return ``name`` if it can name a deployment's partitions, else raise.

    Raises:
        InvalidInputError: not a string of letters, digits, ``.``, ``_`` and ``-`` (at most
            128, starting with a letter or digit).
    """
    if not isinstance(name, str):
        raise InvalidInputError(f"deployment name {name!r} must be a string")
    if name in _valid_deployments:
        return name
    if not _DEPLOYMENT_NAME.fullmatch(name):
        raise InvalidInputError(
            f"deployment name {name!r} cannot be logged: use 1 to 128 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    if len(_valid_deployments) < 10_000:
        _valid_deployments.add(name)
    return name


def _check_common(record: LogRecord) -> None:
    rid = record.request_id
    if not isinstance(rid, str) or not rid or len(rid) > _MAX_REQUEST_ID:
        raise InvalidInputError(
            f"request_id {rid!r} cannot be logged: it must be a non-empty string of at most "
            f"{_MAX_REQUEST_ID} characters"
        )
    ts = record.ts
    if not isinstance(ts, datetime) or ts.tzinfo is None or ts.utcoffset() is None:
        raise InvalidInputError(
            f"record {rid!r}: ts {ts!r} must be a timezone-aware datetime, e.g. datetime.now(UTC)"
        )


def _check_finite(rid: str, name: str, value: object) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInputError(f"record {rid!r}: {name} is {value!r}; it must be a finite number")


def _check(record: object) -> LogRecord:
    if isinstance(record, PredictionRecord):
        _check_common(record)
        check_deployment_name(record.deployment)
        _check_finite(record.request_id, "latency_ms", record.latency_ms)
        if isinstance(record.latency_ms, int | float) and record.latency_ms < 0:
            raise InvalidInputError(
                f"record {record.request_id!r}: latency_ms is {record.latency_ms}; it must be >= 0"
            )
        return record
    if isinstance(record, FeedbackRecord):
        _check_common(record)
        if record.label is None and record.reward is None:
            raise InvalidInputError(
                f"feedback for {record.request_id!r} has neither a label nor a reward; give one"
            )
        _check_finite(record.request_id, "reward", record.reward)
        _check_finite(record.request_id, "label", record.label)
        return record
    raise InvalidInputError(
        f"cannot log a {type(record).__name__}; log a PredictionRecord or a FeedbackRecord"
    )


def encode_record(
    record: object, *, max_bytes: int = DEFAULT_MAX_RECORD_BYTES, verify: bool = True
) -> bytes:
    """Check ``record`` and return its MessagePack encoding (a frame's payload).

    With ``verify`` (the default) the encoding is decoded back, which proves that
    compaction will read it; a caller whose records are built by code with the
    declared field types (the gateway) may skip that second pass.

    Example:
        >>> from datetime import UTC, datetime
        >>> fb = FeedbackRecord(request_id="r1", ts=datetime(2026, 1, 1, tzinfo=UTC), label=1)
        >>> decode_record(encode_record(fb)) == fb
        True

    Raises:
        InvalidInputError: a field has the wrong type or value; the message names it.
        RecordTooLargeError: the encoding is longer than ``max_bytes``.
    """
    checked = _check(record)
    try:
        payload = _encoder.encode(checked)
        if verify:
            _decoder.decode(payload)  # proves the frame will decode at compaction time
    except msgspec.ValidationError as exc:
        raise InvalidInputError(f"record {checked.request_id!r} cannot be logged: {exc}") from None
    except (TypeError, NotImplementedError, OverflowError, ValueError) as exc:
        raise InvalidInputError(
            f"record {checked.request_id!r} holds a value that cannot be logged ({exc}); use "
            "JSON types (str, int, float, bool, None, list, dict) in inputs, features and outputs"
        ) from None
    if len(payload) > max_bytes:
        raise RecordTooLargeError(
            f"record {checked.request_id!r} encodes to {len(payload):,} bytes, over the "
            f"prediction log's limit of {max_bytes:,}; log fewer rows per request or raise "
            "max_record_bytes (STEWARD_PREDICTION_LOG_MAX_RECORD_BYTES)"
        )
    return payload


def decode_record(payload: bytes | memoryview) -> LogRecord:
    """Decode a frame's payload into its record.

    Raises:
        msgspec.DecodeError: the payload is not a record (callers turn this into a
            :class:`SegmentCorruptError` naming the file and offset).
    """
    record: LogRecord = _decoder.decode(payload)
    return record
