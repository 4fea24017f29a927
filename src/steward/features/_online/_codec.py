r"""How rows become what online stores keep: text entity keys, microsecond times, plain values.

Entity keys are stored as text so that every backend and every caller agrees on
them: each join-key value is written as text and the parts are joined with the
ASCII unit separator (``\x1f``)::

    ("c42",)          -> "c42"
    (42,)  (42.0,)    -> "42"
    (True, 7)         -> "true\x1f7"

Times are integers of microseconds since the Unix epoch, UTC (a timezone-naive
time is taken as UTC). Feature columns are normalized with Arrow compute, a
whole batch at a time: floats to float64 with NaN as null, integers to int64,
timestamps to microseconds, so a backend binds plain Python values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from numbers import Integral
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from steward.core import InvalidInputError
from steward.features._online._types import Kind, OnlineRow, from_micros

__all__ = [
    "KEY_SEPARATOR",
    "EncodedBatch",
    "check_name",
    "encode_batch",
    "encode_entity_key",
    "encode_entity_keys",
    "encode_rows",
    "from_micros",
    "merge_kinds",
    "to_micros",
]

KEY_SEPARATOR = "\x1f"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,199}$")


def check_name(kind: str, name: object) -> str:
    """Return ``name`` if it can name a view or feature column; raise otherwise.

    Raises:
        InvalidInputError: the name is not snake_case (lowercase letters, digits and
            underscores starting with a letter; at most 200 characters).
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInputError(
            f"{kind} name {name!r} cannot be stored online; use lowercase letters, digits "
            "and underscores, starting with a letter (snake_case)"
        )
    return name


def to_micros(value: datetime) -> int:
    """Return microseconds since the epoch; a naive ``value`` is taken as UTC.

    Raises:
        InvalidInputError: ``value`` is not a datetime.
    """
    if not isinstance(value, datetime):
        raise InvalidInputError(f"expected a datetime, got {type(value).__name__} {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _key_part(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return str(value)
    if kind is bool or isinstance(value, np.bool_):
        return "true" if value else "false"
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if value is None:
        raise InvalidInputError("an entity key has a null join-key value; give every join key")
    raise InvalidInputError(
        f"join-key value {value!r} ({kind.__name__}) cannot key a row; "
        "use text, an integer or a boolean"
    )


def encode_entity_key(parts: Sequence[Any]) -> str:
    r"""Return the stored text of an entity key (see the module docstring).

    Example:
        >>> encode_entity_key((42,)), encode_entity_key(("eu", 7.0))
        ('42', 'eu\x1f7')

    Raises:
        InvalidInputError: a part is null, a non-integral float, or of another type.
    """
    if len(parts) == 1:
        return _key_part(parts[0])
    if not parts:
        raise InvalidInputError("an entity key needs at least one join-key value")
    return KEY_SEPARATOR.join([_key_part(part) for part in parts])


def encode_entity_keys(keys: Sequence[Sequence[Any]]) -> list[str]:
    """Return the stored text of many entity keys (a read's keys, in order).

    Raises:
        InvalidInputError: a part is null, a non-integral float, or of another type.
    """
    out: list[str] = []
    append = out.append
    for key in keys:
        # The common key, one text or int part, without a call per key.
        if len(key) == 1:
            part = key[0]
            kind = type(part)
            if kind is str:
                append(part)
                continue
            if kind is int:
                append(str(part))
                continue
        append(encode_entity_key(key))
    return out


@dataclass(frozen=True)
class EncodedBatch:
    """A batch of rows in stored form: Arrow arrays of equal length.

    Attributes:
        keys: encoded entity keys (string).
        event_us: event times in microseconds (int64, no nulls).
        created_us: created times in microseconds (int64, nulls where absent).
        features: feature name → normalized values (float64, int64, bool, string, or
            int64 microseconds for timestamps).
        kinds: feature name → how its values are decoded.
    """

    keys: pa.Array
    event_us: pa.Array
    created_us: pa.Array
    features: dict[str, pa.Array]
    kinds: dict[str, Kind]

    def __len__(self) -> int:
        return len(self.keys)


def merge_kinds(stored: dict[str, Kind], incoming: dict[str, Kind]) -> dict[str, Kind]:
    """Return the column kinds after a write: new columns added, a "null" kind refined.

    A column written with a different kind takes the new one (a view whose dtype
    changed); a column written with only nulls keeps what it had.
    """
    merged = dict(stored)
    for name, kind in incoming.items():
        if kind != "null" or name not in merged:
            merged[name] = kind
    return merged


def _flatten(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(array, pa.ChunkedArray):
        return array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    return array


def _micros(name: str, array: pa.Array) -> pa.Array:
    kind = array.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        if pa.types.is_date(kind):
            array = array.cast(pa.timestamp("us"))
        # The stored integer of a naive timestamp is its wall time, read as UTC.
        unit = pa.timestamp("us", tz=array.type.tz)
        return pc.cast(array, unit, safe=False).cast(pa.int64())
    if pa.types.is_integer(kind):
        return array.cast(pa.int64())
    raise InvalidInputError(
        f"column {name!r} has type {kind}; a time column must be a timestamp "
        "(or int64 microseconds)"
    )


def _feature(name: str, array: pa.Array) -> tuple[pa.Array, Kind]:
    kind = array.type
    if pa.types.is_dictionary(kind):
        array, kind = array.dictionary_decode(), kind.value_type
    if pa.types.is_floating(kind):
        values = array.cast(pa.float64())
        if pc.any(pc.is_nan(values)).as_py():
            values = pc.if_else(pc.is_nan(values), pa.scalar(None, pa.float64()), values)
        return values, "float"
    if pa.types.is_integer(kind):
        try:
            return array.cast(pa.int64()), "int"
        except pa.ArrowInvalid as exc:
            raise InvalidInputError(
                f"feature {name!r} holds integers beyond int64: {exc}"
            ) from None
    if pa.types.is_boolean(kind):
        return array, "bool"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return array.cast(pa.string()), "string"
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return _micros(name, array), "timestamp"
    if pa.types.is_null(kind):
        return array, "null"
    raise InvalidInputError(
        f"feature {name!r} has type {kind}, which an online store cannot hold; "
        "use a float, integer, boolean, string or timestamp column"
    )


def _key_text(name: str, array: pa.Array) -> pa.Array:
    if array.null_count:
        raise InvalidInputError(
            f"join key {name!r} is null in {array.null_count} row(s); every row needs its key"
        )
    kind = array.type
    if pa.types.is_dictionary(kind):
        array, kind = array.dictionary_decode(), kind.value_type
    if pa.types.is_floating(kind):
        try:
            array = array.cast(pa.int64())  # safe cast: refuses fractions
        except pa.ArrowInvalid:
            raise InvalidInputError(
                f"join key {name!r} holds fractional numbers; keys must be text or integers"
            ) from None
        kind = array.type
    if not (
        pa.types.is_integer(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
    ):
        raise InvalidInputError(
            f"join key {name!r} has type {kind}; keys must be text, integers or booleans"
        )
    return array.cast(pa.string())


def encode_batch(
    batch: pa.RecordBatch | pa.Table,
    *,
    join_keys: Sequence[str],
    event_timestamp: str,
    created_timestamp: str | None = None,
) -> EncodedBatch:
    """Normalize an Arrow batch: the named key and time columns, every other column a feature.

    Raises:
        InvalidInputError: a named column is missing, a key or event time is null, or a
            column's type cannot be stored.
    """
    names = list(batch.schema.names)
    wanted = [*join_keys, event_timestamp, *([created_timestamp] if created_timestamp else [])]
    missing = [name for name in wanted if name not in names]
    if missing:
        raise InvalidInputError(f"batch lacks the column(s) {missing}; it has {names}")
    if not join_keys:
        raise InvalidInputError("a batch needs at least one join-key column")
    columns = {name: _flatten(batch.column(name)) for name in names}
    parts = [_key_text(key, columns[key]) for key in join_keys]
    keys = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, KEY_SEPARATOR)
    event = _micros(event_timestamp, columns[event_timestamp])
    if event.null_count:
        raise InvalidInputError(
            f"event time {event_timestamp!r} is null in {event.null_count} row(s)"
        )
    if created_timestamp:
        created = _micros(created_timestamp, columns[created_timestamp])
    else:
        created = pa.nulls(len(keys), pa.int64())
    features: dict[str, pa.Array] = {}
    kinds: dict[str, Kind] = {}
    for name in names:
        if name not in wanted:
            features[name], kinds[name] = _feature(name, columns[name])
    return EncodedBatch(keys, event, created, features, kinds)


def encode_rows(rows: Iterable[OnlineRow]) -> EncodedBatch:
    """Normalize Python rows; a feature a row does not name is null in that row.

    Raises:
        InvalidInputError: a key part or event time is missing or malformed, or a
            feature's values have no common type.
    """
    keys: list[str] = []
    event: list[int] = []
    created: list[int | None] = []
    values: list[Any] = []
    for row in rows:
        if not isinstance(row, OnlineRow):
            row = OnlineRow(*row)
        keys.append(encode_entity_key(row.entity_key))
        event.append(to_micros(row.event_ts))
        created.append(None if row.created_ts is None else to_micros(row.created_ts))
        values.append(row.values)
    names = list(dict.fromkeys(name for mapping in values for name in mapping))
    features: dict[str, pa.Array] = {}
    kinds: dict[str, Kind] = {}
    for name in names:
        try:
            array = pa.array([mapping.get(name) for mapping in values])
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidInputError(
                f"feature {name!r} mixes values of different types: {exc}"
            ) from None
        features[name], kinds[name] = _feature(name, array)
    return EncodedBatch(
        pa.array(keys, pa.string()),
        pa.array(event, pa.int64()),
        pa.array(created, pa.int64()),
        features,
        kinds,
    )
