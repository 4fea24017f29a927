"""One msgpack array per stored row: how the SQLite online store packs and unpacks values.

A view's *layout* is the ordered list of its features with their kinds; a
feature keeps its position for as long as the view exists (new features are
appended). A stored row is the msgpack array::

    [event µs, created µs or nil, value at position 0, value at position 1, ...]

A row may be shorter than the layout (it was written before later features were
added): the missing trailing values are null. msgpack keeps None, booleans,
integers, floats and text apart, so only timestamps (stored as microseconds)
need the kinds to be rebuilt.

Reading many rows decodes them in one call: the stored arrays are concatenated
behind one array header and decoded together, then transposed into columns.
Measured on 100 entities by 10 features, that takes a fifth of the CPU time of
building a Python object per stored row.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import msgspec

from steward.features._online._codec import EncodedBatch, merge_kinds
from steward.features._online._types import Kind, OnlineColumns, from_micros

__all__ = ["Layout", "pack_row", "pack_rows", "repack", "unpack_rows"]

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode
_NO_ROW = b"\x90"  # an empty array: every value null, no times


class Layout:
    """A view's features in stored order, with their kinds.

    Args:
        columns: ``(feature, kind)`` pairs in position order.
    """

    __slots__ = ("columns", "positions", "stamps")

    def __init__(self, columns: Sequence[tuple[str, Kind]] = ()) -> None:
        self.columns: tuple[tuple[str, Kind], ...] = tuple((n, k) for n, k in columns)
        self.positions = {name: index for index, (name, _) in enumerate(self.columns)}
        self.stamps = frozenset(name for name, kind in self.columns if kind == "timestamp")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and self.columns == other.columns

    def __hash__(self) -> int:
        return hash(self.columns)

    def __repr__(self) -> str:
        return f"Layout({list(self.columns)!r})"

    @property
    def names(self) -> tuple[str, ...]:
        """The feature names, in position order."""
        return tuple(name for name, _ in self.columns)

    def extended(self, kinds: dict[str, Kind]) -> Layout:
        """Return this layout with new features appended and kinds refined (see merge_kinds)."""
        merged = merge_kinds(dict(self.columns), kinds)
        return Layout(list(merged.items()))

    def to_json(self) -> list[list[str]]:
        """Return the layout as JSON-ready ``[[feature, kind], ...]``."""
        return [[name, kind] for name, kind in self.columns]

    @classmethod
    def from_json(cls, value: Any) -> Layout:
        """Rebuild a layout from :meth:`to_json` (or the older ``{feature: kind}`` form)."""
        pairs = value.items() if isinstance(value, dict) else value
        return cls([(str(name), kind) for name, kind in pairs])


def pack_row(event_us: int, created_us: int | None, values: Sequence[Any]) -> bytes:
    """Return one packed row: its times, then its values in layout order."""
    return _encode([event_us, created_us, *values])


def pack_rows(batch: EncodedBatch, layout: Layout) -> list[bytes]:
    """Return each row of ``batch`` packed against ``layout`` (which names every feature).

    With ``a`` at position 0 and ``b`` at 1, a batch of ``a`` alone packs rows as
    ``[event, created, a]`` and a batch of ``b`` alone as ``[event, created, nil, b]``.
    """
    count = len(batch)
    width = 1 + max((layout.positions[name] for name in batch.features), default=-1)
    columns: list[Any] = [itertools.repeat(None, count)] * width
    for name, array in batch.features.items():
        columns[layout.positions[name]] = array.to_pylist()
    rows = zip(batch.event_us.to_pylist(), batch.created_us.to_pylist(), *columns, strict=False)
    return [_encode(row) for row in rows]


def repack(blob: bytes, moves: Sequence[int]) -> bytes:
    """Return ``blob`` with the value at position ``i`` moved to position ``moves[i]``."""
    row = _decode(blob)
    values = row[2:]
    out: list[Any] = [None] * (1 + max((moves[i] for i in range(len(values))), default=-1))
    for index, value in enumerate(values):
        out[moves[index]] = value
    return _encode([row[0], row[1], *out])


def _header(count: int) -> bytes:
    if count < 16:
        return bytes((0x90 | count,))
    if count < 65_536:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")


def unpack_rows(
    blobs: Sequence[bytes | None], layout: Layout, features: Sequence[str]
) -> OnlineColumns:
    """Return the requested features of packed rows as columns (None blob: no row).

    A feature the layout does not hold is null everywhere; timestamps are rebuilt
    as UTC datetimes.
    """
    count = len(blobs)
    if count == 1:
        return _unpack_one(blobs[0], layout, features)
    payload = _header(count) + b"".join([_NO_ROW if blob is None else blob for blob in blobs])
    # Transposed with padding: a short or missing row reads as nulls at the end.
    columns = list(itertools.zip_longest(*_decode(payload)))
    if not columns:
        return OnlineColumns.empty(count, features)
    nothing = [None] * count
    values: dict[str, list[Any]] = {}
    for name in features:
        index = layout.positions.get(name)
        if index is None or index + 2 >= len(columns):
            values[name] = list(nothing)
            continue
        column = list(columns[index + 2])
        if name in layout.stamps:
            column = [None if v is None else from_micros(v) for v in column]
        values[name] = column
    return OnlineColumns(values, list(columns[0]), list(columns[1]))


def _unpack_one(blob: bytes | None, layout: Layout, features: Sequence[str]) -> OnlineColumns:
    if blob is None:
        return OnlineColumns.empty(1, features)
    row = _decode(blob)
    width = len(row) - 2
    values: dict[str, list[Any]] = {}
    for name in features:
        index = layout.positions.get(name)
        value = None if index is None or index >= width else row[index + 2]
        if value is not None and name in layout.stamps:
            value = from_micros(value)
        values[name] = [value]
    return OnlineColumns(values, [row[0]], [row[1]])
