"""Canonical JSON and SHA-256 helpers: the bytes that digests and the audit chain hash."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any, BinaryIO

from steward.core._errors import InvalidInputError

__all__ = ["canonical_json", "sha256_file", "sha256_hex", "sha256_stream"]

_CHUNK = 1024 * 1024


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInputError(
                f"naive datetime {value!r} cannot be hashed; give it a timezone"
            )
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise InvalidInputError(
        f"value of type {type(value).__name__} is not JSON-serializable: {value!r}"
    )


def _check_floats(value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInputError(f"canonical JSON has no representation for {value!r}")
    if isinstance(value, dict):
        for item in value.values():
            _check_floats(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_floats(item)


def canonical_json(value: Any) -> str:
    """Serialize ``value`` to one canonical JSON text: sorted keys, no spaces, UTF-8 kept.

    The same value always gives the same text, so its hash is stable across
    processes, machines and database backends.  NaN and infinities are refused
    (JSON has no spelling for them); datetimes must be timezone-aware.

    Example:
        >>> canonical_json({"b": 1, "a": [1.5, "é"]})
        '{"a":[1.5,"é"],"b":1}'

    Raises:
        InvalidInputError: the value holds NaN/inf, a naive datetime or an unknown type.
    """
    try:
        return json.dumps(
            value,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
            default=_default,
        )
    except ValueError as exc:
        if isinstance(exc, InvalidInputError):
            raise
        _check_floats(value)  # names the offending value
        raise  # pragma: no cover - only non-finite floats make json refuse a value


def sha256_hex(data: bytes | str) -> str:
    """Return the SHA-256 of ``data`` (text is UTF-8 encoded) as 64 hex characters."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def sha256_stream(stream: BinaryIO | Iterable[bytes]) -> tuple[str, int]:
    """Hash a binary stream or an iterable of chunks in bounded memory.

    Returns:
        The hex digest and the number of bytes read.
    """
    digest = hashlib.sha256()
    size = 0
    chunks: Iterable[bytes]
    if hasattr(stream, "read"):
        reader: BinaryIO = stream  # type: ignore[assignment]
        chunks = iter(lambda: reader.read(_CHUNK), b"")
    else:
        chunks = stream
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def sha256_file(path: str) -> tuple[str, int]:
    """Hash a file in bounded memory; returns the hex digest and the size in bytes."""
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
        size = handle.tell()
    return digest.hexdigest(), size
