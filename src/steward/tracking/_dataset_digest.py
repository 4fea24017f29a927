"""The content digest of a table: same values and column types, same digest, however stored.

Definition (format ``steward.dataset-digest/1``)::

    digest = "sha256:" + sha256(canonical_json({
        "format": "steward.dataset-digest/1",
        "rows": <number of rows>,
        "columns": [{"name": <name>, "type": <canonical type>, "sha256": <column hash>}, ...],
    }))

Columns are listed in table order, so the same columns in another order give
another digest (a model fed positional arrays would see different data).
The canonical type erases physical encodings only: dictionary-encoded columns
count as their value type, ``large_string``/``string_view`` as ``string``,
``large_binary``/``binary_view`` as ``binary``, every list flavour as ``list``,
extension types as their storage type.  Widths, units and time zones stay
(``int32`` is not ``int64``; ``timestamp[ms]`` is not ``timestamp[ns]``).
Nullability flags and schema metadata (pandas' index and dtypes) are ignored.

A column hash combines independent SHA-256 streams, each the concatenation of
fixed-layout records over all rows, so batch and row-group boundaries cannot
change them:

- ``nulls``: the row positions of null values (int64 little-endian);
- ``values``: each non-null value's bytes: fixed-width types (numbers,
  decimals, dates, times, timestamps, durations, fixed-size binary) as their
  little-endian Arrow value bytes, with every NaN written as the one quiet NaN;
  booleans as one byte 0/1; strings and binary as their UTF-8/raw bytes;
- ``lengths``: for strings, binary and lists, each non-null value's length (int64);
- ``children``: for structs, one column hash per field (parent nulls pushed
  down); for lists and maps, the hash of the concatenated non-null elements.

The column hash is ``sha256(canonical_json({"rows", "nulls", "values",
"lengths", "children"}))`` of the stream hex digests.  Bytes under a null
slot, row-group sizes, compression and chunking never reach a stream.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from steward.core import InvalidInputError, canonical_json, sha256_hex

__all__ = ["DIGEST_FORMAT", "TableDigester", "canonical_type", "check_supported", "normalize_array"]

DIGEST_FORMAT = "steward.dataset-digest/1"
_QUIET_NAN = {16: np.float16(np.nan), 32: np.float32(np.nan), 64: np.float64(np.nan)}


def canonical_type(dtype: pa.DataType) -> str:
    """Return the type string the digest uses: physical encodings erased, semantics kept.

    Example:
        ``dictionary<values=string, indices=int8>`` -> ``"string"``;
        ``large_list<item: int32>`` -> ``"list<int32>"``; ``int64`` -> ``"int64"``.
    """
    if isinstance(dtype, pa.ExtensionType):
        return canonical_type(dtype.storage_type)
    if pa.types.is_dictionary(dtype):
        return canonical_type(dtype.value_type)
    if _is_string(dtype):
        return "string"
    if _is_binary(dtype):
        return "binary"
    if pa.types.is_fixed_size_list(dtype):
        return f"fixed_size_list<{canonical_type(dtype.value_type)}>[{dtype.list_size}]"
    if pa.types.is_map(dtype):
        return f"map<{canonical_type(dtype.key_type)},{canonical_type(dtype.item_type)}>"
    if _is_list(dtype):
        return f"list<{canonical_type(dtype.value_type)}>"
    if pa.types.is_struct(dtype):
        fields = (dtype.field(i) for i in range(dtype.num_fields))
        return (
            "struct<"
            + ",".join(f"{json.dumps(f.name)}:{canonical_type(f.type)}" for f in fields)
            + ">"
        )
    return str(dtype)


def check_supported(name: str, dtype: pa.DataType) -> None:
    """Raise :class:`InvalidInputError` when column ``name``'s type cannot be digested."""
    if isinstance(dtype, pa.ExtensionType):
        check_supported(name, dtype.storage_type)
    elif pa.types.is_dictionary(dtype):
        check_supported(name, dtype.value_type)
    elif pa.types.is_struct(dtype):
        for i in range(dtype.num_fields):
            check_supported(f"{name}.{dtype.field(i).name}", dtype.field(i).type)
    elif pa.types.is_map(dtype):
        check_supported(name, dtype.key_type)
        check_supported(name, dtype.item_type)
    elif _is_list(dtype) or pa.types.is_fixed_size_list(dtype):
        check_supported(name, dtype.value_type)
    elif not (
        pa.types.is_null(dtype)
        or pa.types.is_boolean(dtype)
        or _is_string(dtype)
        or _is_binary(dtype)
        or _is_fixed_width(dtype)
    ):
        raise InvalidInputError(
            f"column {name!r} has type {dtype}, which datasets do not support; "
            "supported: numbers, decimals, booleans, strings, binary, dates, times, "
            "timestamps, durations, and lists/structs/maps of those"
        )


def normalize_array(array: pa.Array) -> pa.Array:
    """Give an array its canonical physical layout (values are unchanged).

    Dictionary arrays are decoded, extension arrays unwrapped, strings and
    binary widened to their ``large_`` form, lists to ``large_list`` and maps
    to a large list of ``{key, value}`` structs.
    """
    dtype = array.type
    if isinstance(array, pa.ExtensionArray):
        return normalize_array(array.storage)
    if pa.types.is_dictionary(dtype):
        return normalize_array(array.dictionary_decode())
    if _is_string(dtype) and not pa.types.is_large_string(dtype):
        return array.cast(pa.large_string())
    if _is_binary(dtype) and not pa.types.is_large_binary(dtype):
        return array.cast(pa.large_binary())
    if pa.types.is_map(dtype):
        entries = pa.struct([dtype.key_field, dtype.item_field])
        return array.cast(pa.large_list(pa.field("entries", entries, nullable=False)))
    if _is_list(dtype) and not pa.types.is_large_list(dtype):
        return array.cast(pa.large_list(dtype.value_field))
    return array


class _ArrayHasher:
    """The streams of one column (or nested child); see the module docstring."""

    def __init__(self) -> None:
        self.position = 0
        self.nulls = hashlib.sha256()
        self.values = hashlib.sha256()
        self.lengths = hashlib.sha256()
        self.children: list[_ArrayHasher] = []

    def update(self, array: pa.Array) -> None:
        array = normalize_array(array)
        if array.null_count:
            valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            positions = np.flatnonzero(~valid).astype("<i8") + self.position
            self.nulls.update(positions.tobytes())
        self.position += len(array)
        dtype = array.type
        if pa.types.is_null(dtype):
            return
        if pa.types.is_struct(dtype):
            self._update_children(array.flatten())
            return
        if array.null_count:
            array = array.drop_null()
        if pa.types.is_large_list(dtype) or pa.types.is_fixed_size_list(dtype):
            if pa.types.is_large_list(dtype):
                lengths = np.asarray(pc.list_value_length(array), dtype="<i8")
                self.lengths.update(lengths.tobytes())
            self._update_children([array.flatten()])
        elif pa.types.is_large_string(dtype) or pa.types.is_large_binary(dtype):
            self._update_binary(array)
        elif pa.types.is_boolean(dtype):
            self.values.update(np.asarray(array, dtype=np.uint8).tobytes())
        else:
            self.values.update(_fixed_width_bytes(array))

    def _update_children(self, arrays: list[pa.Array]) -> None:
        if not self.children:
            self.children = [_ArrayHasher() for _ in arrays]
        for child, array in zip(self.children, arrays, strict=True):
            child.update(array)

    def _update_binary(self, array: pa.Array) -> None:
        n = len(array)
        offsets = np.frombuffer(array.buffers()[1], dtype="<i8")[
            array.offset : array.offset + n + 1
        ]
        self.lengths.update(np.diff(offsets).tobytes())
        data = array.buffers()[2]
        if data is not None and n:
            self.values.update(memoryview(data)[int(offsets[0]) : int(offsets[-1])])

    def hexdigest(self) -> str:
        document: dict[str, Any] = {
            "rows": self.position,
            "nulls": self.nulls.hexdigest(),
            "values": self.values.hexdigest(),
            "lengths": self.lengths.hexdigest(),
            "children": [child.hexdigest() for child in self.children],
        }
        return sha256_hex(canonical_json(document))


def _fixed_width_bytes(array: pa.Array) -> bytes | memoryview:
    """Little-endian value bytes of a null-free fixed-width array, NaNs made canonical."""
    width = array.type.bit_width // 8
    buffer = memoryview(array.buffers()[1])[
        array.offset * width : (array.offset + len(array)) * width
    ]
    if pa.types.is_floating(array.type):
        floats = np.frombuffer(buffer, dtype=f"<f{width}")
        nan = np.isnan(floats)
        if nan.any():
            floats = floats.copy()
            floats[nan] = _QUIET_NAN[width * 8]
            return floats.tobytes()
    return buffer


class TableDigester:
    """Feed each column's batches in row order; read the dataset digest at the end.

    Columns are independent: they may be fed in any order, in separate passes,
    from different threads.

    Example:
        >>> digester = TableDigester(table.schema)  # doctest: +SKIP
        >>> for batch in table.to_batches(): digester.update_column(0, batch.column(0))
        >>> digester.hexdigest(table.num_rows)
    """

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self._columns = [_ArrayHasher() for _ in schema]

    def update_column(self, index: int, array: pa.Array) -> None:
        """Feed the next batch of column ``index``."""
        self._columns[index].update(array)

    def hexdigest(self, rows: int) -> str:
        """Return ``"sha256:<64 hex>"`` of a dataset of ``rows`` rows fed so far."""
        columns = [
            {"name": field.name, "type": canonical_type(field.type), "sha256": column.hexdigest()}
            for field, column in zip(self.schema, self._columns, strict=True)
        ]
        document = {"format": DIGEST_FORMAT, "rows": rows, "columns": columns}
        return "sha256:" + sha256_hex(canonical_json(document))


def _is_string(dtype: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_string_view(dtype)
    )


def _is_binary(dtype: pa.DataType) -> bool:
    return bool(
        pa.types.is_binary(dtype)
        or pa.types.is_large_binary(dtype)
        or pa.types.is_binary_view(dtype)
    )


def _is_list(dtype: pa.DataType) -> bool:
    return bool(
        pa.types.is_list(dtype)
        or pa.types.is_large_list(dtype)
        or pa.types.is_list_view(dtype)
        or pa.types.is_large_list_view(dtype)
    )


def _is_fixed_width(dtype: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(dtype)
        or pa.types.is_floating(dtype)
        or pa.types.is_decimal(dtype)
        or pa.types.is_date(dtype)
        or pa.types.is_time(dtype)
        or pa.types.is_timestamp(dtype)
        or pa.types.is_duration(dtype)
        or pa.types.is_fixed_size_binary(dtype)
    )
