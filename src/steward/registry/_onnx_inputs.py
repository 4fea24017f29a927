"""Map rows to the inputs of an ONNX graph compiled from a scikit-learn model.

Written once, used by the parity check at compile time and by the ONNX flavor at
serving time, so that a column is fed the same way in both.

- A plain numeric matrix goes to the graph's one input (``X``), cast to its type.
- Tabular data (a DataFrame, an Arrow table, a mapping of columns) whose columns
  name every input gives each column to its input as a ``rows x 1`` array:
  ``tensor(float)``/``tensor(double)`` as float32/float64, ``tensor(int64)`` as
  int64 (whole numbers only), ``tensor(string)`` as Python strings with a missing
  value sent as ``"nan"``: the category skl2onnx's OneHotEncoder gives NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from steward.core import InvalidInputError

__all__ = [
    "DOUBLE",
    "FLOAT",
    "INT64",
    "MATRIX_INPUT",
    "STRING",
    "as_matrix",
    "default_onnx_type",
    "onnx_inputs",
]

FLOAT = "tensor(float)"
DOUBLE = "tensor(double)"
INT64 = "tensor(int64)"
STRING = "tensor(string)"
MATRIX_INPUT = "X"
MISSING_STRING = "nan"  # skl2onnx's OneHotEncoder names the NaN category "nan"
_NUMPY_TYPES: dict[str, type[np.generic]] = {
    FLOAT: np.float32,
    DOUBLE: np.float64,
    INT64: np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


class _Columns:
    """Named 1-D columns of tabular data, read lazily: only the columns a graph needs.

    Serving calls this per request, so a DataFrame is never split into all of its
    columns to feed one matrix input (``DataFrame.to_numpy`` does that in one step).
    """

    def __init__(self, data: Any, names: list[str], keys: Sequence[Any]) -> None:
        self.data = data
        self.names = names
        self._keys = dict(zip(names, keys, strict=True))

    @classmethod
    def of(cls, data: object) -> _Columns | None:
        """Wrap a DataFrame, an Arrow table or batch, or a mapping; ``None`` for a matrix."""
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        if isinstance(data, pa.Table):
            return cls(data, list(data.column_names), data.column_names)
        if hasattr(data, "columns") and hasattr(data, "iloc"):  # a pandas DataFrame
            frame: Any = data
            keys = list(frame.columns)
            return cls(frame, [str(k) for k in keys], keys)
        if isinstance(data, Mapping):
            return cls(data, [str(k) for k in data], list(data))
        return None

    def column(self, name: str) -> Any:
        """Return one column's values (a Series, an array or a sequence)."""
        key = self._keys[name]
        if isinstance(self.data, pa.Table):
            return self.data.column(key).to_numpy(zero_copy_only=False)
        return self.data[key]

    def matrix(self, onnx_type: str) -> np.ndarray:
        """Return every column side by side, as ``onnx_type``."""
        target = _NUMPY_TYPES.get(onnx_type, np.float32)
        if hasattr(self.data, "iloc"):
            try:
                if np.dtype(target).kind == "f":
                    return np.asarray(self.data.to_numpy(dtype=target, na_value=np.nan))
                return np.asarray(self.data.to_numpy()).astype(target)
            except (ValueError, TypeError) as exc:
                raise InvalidInputError(f"every column must be numeric: {exc}") from None
        columns = [_cast(name, self.column(name), DOUBLE) for name in self.names]
        return np.column_stack(columns).astype(target) if columns else np.empty((0, 0), target)


def as_matrix(data: object) -> np.ndarray:
    try:
        matrix = np.asarray(data)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"input must be a 2-D array (rows x features): {exc}") from None
    if matrix.ndim != 2:
        raise InvalidInputError(
            f"input must be 2-D (rows x features), got an array of shape {matrix.shape}; "
            "wrap a single row as [row] or X.reshape(1, -1)"
        )
    return matrix


def default_onnx_type(values: Any) -> str:
    dtype = getattr(values, "dtype", None)
    if dtype is None:  # a plain list
        dtype = np.asarray(values).dtype
    kind = getattr(dtype, "kind", None)
    if kind in ("i", "u"):
        return INT64
    if kind in ("f", "b"):
        return FLOAT
    numpy_dtype = getattr(dtype, "numpy_dtype", None)  # pandas nullable Int64/Float64/boolean
    if numpy_dtype is not None and numpy_dtype.kind in "iufb":
        return FLOAT  # may hold <NA>, which only a float can carry
    return STRING


def _cast(name: str, values: Any, onnx_type: str) -> np.ndarray:
    """Return ``values`` as a ``rows x 1`` array of ``onnx_type``; name the column on failure."""
    if onnx_type == STRING:
        column = np.empty(len(values), dtype=object)
        for i, value in enumerate(values.tolist() if hasattr(values, "tolist") else values):
            missing = value is None or (isinstance(value, float) and math.isnan(value))
            column[i] = MISSING_STRING if missing or str(value) == "<NA>" else str(value)
        return column.reshape(-1, 1)
    target = _NUMPY_TYPES.get(onnx_type)
    if target is None:
        raise InvalidInputError(f"input {name!r} has ONNX type {onnx_type}, which is not supported")
    if getattr(getattr(values, "dtype", None), "kind", None) in ("i", "u", "b"):
        return np.asarray(values).astype(target).reshape(-1, 1)  # exact, no float detour
    try:
        numbers: np.ndarray = (
            values.to_numpy(dtype=np.float64, na_value=np.nan)
            if hasattr(values, "to_numpy")
            else np.asarray(values, dtype=np.float64)
        )
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"column {name!r} must be numeric ({onnx_type}): {exc}") from None
    if target in (np.int64, np.int32) and not np.array_equal(numbers, np.floor(numbers)):
        raise InvalidInputError(
            f"column {name!r} must hold whole numbers without missing values ({onnx_type})"
        )
    return numbers.astype(target).reshape(-1, 1)


def onnx_inputs(
    data: object, input_names: Sequence[str], input_types: Mapping[str, str] | None = None
) -> dict[str, np.ndarray]:
    """Map a batch of rows to the feeds of an ONNX graph compiled by :func:`compile_to_onnx`.

    When every input is a column of ``data``, each column becomes a ``rows x 1``
    array of its input's type; otherwise the only input gets the whole matrix
    (columns in the order given).  ``input_types`` (input name -> onnxruntime
    type, as in :attr:`OnnxCompilation.input_types` or ``session.get_inputs()``)
    defaults to float32 for numbers and strings for the rest.  Extra columns are
    ignored.

    ``DataFrame(amount=[1.5], country=["FR"])`` with inputs ``amount, country`` ->
    ``{"amount": [[1.5]] float32, "country": [["FR"]] object}``;
    ``[[0.1, 0.2]]`` with input ``X`` -> ``{"X": [[0.1, 0.2]] float32}``.

    Args:
        data: a pandas DataFrame, a pyarrow Table or RecordBatch, a mapping of
            column name to values, or a 2-D array.
        input_names: the graph's input names, in order.
        input_types: the graph's input types by name.

    Raises:
        InvalidInputError: a needed column is missing, a value cannot be cast to its
            input's type, or a matrix is not 2-D.
    """
    types = dict(input_types or {})
    columns = _Columns.of(data)
    if columns is not None and all(name in columns.names for name in input_names):
        feeds = {}
        for name in input_names:
            values = columns.column(name)
            feeds[name] = _cast(name, values, types.get(name) or default_onnx_type(values))
        return feeds
    if len(input_names) != 1:
        have = ", ".join(map(repr, columns.names)) if columns is not None else "a plain matrix"
        missing = [n for n in input_names if columns is None or n not in columns.names]
        raise InvalidInputError(
            f"input is missing column(s) {', '.join(repr(n) for n in missing)} the model "
            f"needs; got {have}"
        )
    (name,) = input_names
    onnx_type = types.get(name, FLOAT)
    if columns is not None:
        return {name: columns.matrix(onnx_type)}
    matrix = as_matrix(data)
    try:
        return {name: matrix.astype(_NUMPY_TYPES.get(onnx_type, np.float32), copy=False)}
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"input must be numeric: {exc}") from None
