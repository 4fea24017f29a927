"""Encode one or several attribute columns into integer group ids (intersectional groups)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from steward.core import InvalidInputError
from steward.quality._input import Category, as_array, as_table, is_one_dimensional

__all__ = ["Groups", "check_lengths", "encode_groups", "labels_array"]

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Groups:
    """Rows mapped to groups: ``ids[i]`` is row i's group, ``keys[g]`` its attribute values."""

    attributes: tuple[str, ...]
    keys: tuple[tuple[Category | None, ...], ...]
    ids: IntArray

    def label(self, group: int) -> dict[str, Category | None]:
        """Attribute name → value for one group."""
        return dict(zip(self.attributes, self.keys[group], strict=True))


def _codes(array: pa.ChunkedArray | pa.Array) -> tuple[IntArray, list[Category | None]]:
    if pa.types.is_floating(array.type):
        array = pc.if_else(pc.is_nan(array), pa.scalar(None, array.type), array)
    encoded = pc.dictionary_encode(array, null_encoding="encode")
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.unify_dictionaries().combine_chunks()
    indices = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    values = [
        v if v is None or isinstance(v, bool | int | float | str) else str(v)
        for v in encoded.dictionary.to_pylist()
    ]
    return indices, values


def encode_groups(features: Any, rows: int, *, what: str = "sensitive_features") -> Groups:
    """Encode a 1-D array or a table of attribute columns into groups.

    Groups are the distinct combinations of values present in the data; a
    missing value is its own group value (None).

    Example:
        ``encode_groups({"sex": ["f", "m", "f"], "age": ["<40", "<40", "40+"]}, 3)``
        has three groups: ("f", "<40"), ("m", "<40"), ("f", "40+").

    Raises:
        InvalidInputError: no attributes, or a length other than ``rows``.
    """
    if is_one_dimensional(features):
        name = getattr(features, "name", None)
        columns = {str(name) if name is not None else "group": as_array(features)}
    else:
        source = as_table(features, role=what)
        columns = source.read(source.names)
    if not columns:
        raise InvalidInputError(f"{what} has no columns")
    combined = np.zeros(rows, dtype=np.int64)
    dictionaries: list[list[Category | None]] = []
    radix = 1
    for name, array in columns.items():
        if len(array) != rows:
            raise InvalidInputError(
                f"{what} column {name!r} has {len(array)} rows; expected {rows}"
            )
        codes, values = _codes(array)
        radix *= max(len(values), 1)
        if radix >= 2**62:
            raise InvalidInputError(f"{what}: too many value combinations to group by")
        combined = combined * max(len(values), 1) + codes
        dictionaries.append(values)
    unique, ids = np.unique(combined, return_inverse=True)
    keys = []
    for code in unique.tolist():
        parts: list[Category | None] = []
        for values in reversed(dictionaries):
            code, index = divmod(code, max(len(values), 1))
            parts.append(values[index])
        keys.append(tuple(reversed(parts)))
    return Groups(tuple(columns), tuple(keys), ids.astype(np.int64).reshape(-1))


def labels_array(values: Any, name: str) -> npt.NDArray[Any]:
    """Convert labels to a 1-D NumPy array, refusing missing values.

    Raises:
        InvalidInputError: not 1-D, or holds nulls/NaN.
    """
    if not is_one_dimensional(values):
        raise InvalidInputError(
            f"{name} must be a 1-D array of labels; got {type(values).__name__}"
        )
    array = as_array(values, name=name)
    missing = int(array.null_count)
    if pa.types.is_floating(array.type):
        missing += int(pc.sum(pc.is_nan(array)).as_py() or 0)
    if missing:
        raise InvalidInputError(f"{name} has {missing} missing value(s); drop or impute them first")
    return np.asarray(array.to_numpy(zero_copy_only=False))


def check_lengths(rows: int, **arrays: Sequence[Any] | npt.NDArray[Any]) -> None:
    """Raise :class:`InvalidInputError` unless every array has ``rows`` rows."""
    wrong = {name: len(array) for name, array in arrays.items() if len(array) != rows}
    if wrong:
        raise InvalidInputError(f"lengths differ: expected {rows} rows, got {wrong}")
