"""Input checks for names, keys and values; each error names the offending value."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

from steward.core import InvalidInputError
from steward.tracking._models import ParamValue

__all__ = [
    "check_key",
    "check_metric_value",
    "check_name",
    "check_step",
    "check_tags",
    "check_timestamp",
    "encode_param",
]

_KEY = re.compile(r"^[A-Za-z0-9_\-./: ]+$")
MAX_KEY = 250
MAX_NAME = 200
MAX_PARAM_VALUE = 6000
_INT64 = 2**63


def check_key(kind: str, key: object) -> str:
    """Check a metric, param or tag key: 1 to 250 of letters, digits, ``_-./:`` and space."""
    if not isinstance(key, str) or not key:
        raise InvalidInputError(f"{kind} key must be a non-empty string, got {key!r}")
    if len(key) > MAX_KEY:
        raise InvalidInputError(
            f"{kind} key {key[:40]!r}... is {len(key)} characters; the limit is {MAX_KEY}"
        )
    if not _KEY.match(key) or key != key.strip():
        raise InvalidInputError(
            f"{kind} key {key!r} has forbidden characters; use letters, digits, "
            "'_', '-', '.', '/', ':' and inner spaces"
        )
    return key


def check_tags(values: Mapping[str, str]) -> dict[str, str]:
    """Check tag keys and that every value is a string; return them as a dict."""
    checked = {}
    for key, value in values.items():
        check_key("tag", key)
        if not isinstance(value, str):
            raise InvalidInputError(f"tag {key!r} must be a string, got {type(value).__name__}")
        checked[key] = value
    return checked


def check_name(kind: str, name: object) -> str:
    """Check an experiment or run name: 1 to 200 printable characters, no surrounding spaces."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"{kind} name must be a non-empty string, got {name!r}")
    if len(name) > MAX_NAME:
        raise InvalidInputError(
            f"{kind} name {name[:40]!r}... is {len(name)} characters; the limit is {MAX_NAME}"
        )
    if not name.isprintable() or name != name.strip():
        raise InvalidInputError(
            f"{kind} name {name!r} has control characters or surrounding spaces"
        )
    return name


def check_metric_value(key: str, value: object) -> float:
    """Return the metric value as a float; refuse non-numbers, booleans and NaN/inf."""
    if type(value) is float and math.isfinite(value):  # the common case, checked cheaply
        return value
    if isinstance(value, bool) or not isinstance(value, Real):
        item = getattr(value, "item", None)  # numpy scalars and 0-d arrays
        value = item() if callable(item) else value
        if isinstance(value, bool) or not isinstance(value, Real):
            raise InvalidInputError(
                f"metric {key!r} must be a number, got {type(value).__name__} {value!r}"
            )
    number = float(value)
    if not math.isfinite(number):
        raise InvalidInputError(f"metric {key!r} is {number}; only finite values are stored")
    return number


def check_step(key: str, step: object) -> int:
    """Return a metric step as an int; refuse booleans, fractions and non-numbers.

    ``check_step("auc", 3)`` is 3; ``check_step("auc", 1.5)`` and ``check_step("auc", "a")``
    raise rather than truncate or guess.
    """
    return _check_int("step", key, step)


def check_timestamp(key: str, timestamp_ms: object) -> int:
    """Return a metric timestamp (epoch milliseconds) as an int, refusing anything else."""
    return _check_int("timestamp_ms", key, timestamp_ms)


def _check_int(field: str, key: str, value: object) -> int:
    if type(value) is int and -_INT64 <= value < _INT64:  # the common case, checked cheaply
        return value
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InvalidInputError(
            f"metric {key!r}: {field} must be an integer, got {type(value).__name__} {value!r}"
        )
    number = int(value)
    if not -_INT64 <= number < _INT64:
        raise InvalidInputError(f"metric {key!r}: {field} {number} is out of the 64-bit range")
    return number


def encode_param(key: str, value: Any) -> tuple[str, str, float | None]:
    """Return ``(text, type, numeric value)`` for a str, int, float or bool param."""
    item = getattr(value, "item", None)
    if not isinstance(value, str | int | float | bool) and callable(item):
        value = item()  # numpy scalar
    kind: str
    if isinstance(value, bool):
        return ("true" if value else "false"), "bool", None
    if isinstance(value, Integral):
        return str(int(value)), "int", float(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"param {key!r} is {value}; only finite numbers are stored")
        return repr(value), "float", value
    if isinstance(value, str):
        if len(value) > MAX_PARAM_VALUE:
            raise InvalidInputError(
                f"param {key!r} value is {len(value)} characters; the limit is {MAX_PARAM_VALUE}"
            )
        kind = "str"
        return value, kind, None
    raise InvalidInputError(
        f"param {key!r} must be str, int, float or bool; got {type(value).__name__} {value!r}"
    )


def decode_param(text: str, kind: str) -> ParamValue:
    """Invert :func:`encode_param`."""
    if kind == "bool":
        return text == "true"
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    return text
