"""Model inputs as named columns, whatever container they arrive in.

``columns_of`` turns a pandas DataFrame, a pyarrow Table or RecordBatch, a
mapping of column name to values, a list of records or a 2-D NumPy array into
a list of :class:`Column` — name, logical kind, dtype name, values as a NumPy
array and the number of nulls — which signatures check and flavors consume::

    {"amount": [12.5, None], "country": ["FR", "DE"]}
    → [Column("amount", "float64", "float", array([12.5, nan]), nulls=1),
       Column("country", "string", "string", array(['FR', 'DE'], dtype=object), nulls=0)]

pandas is imported only when the input already is a DataFrame.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from steward.core import InvalidInputError

__all__ = ["Column", "Kind", "columns_of", "is_dataframe", "kind_of_dtype", "positional_names"]

Kind = Literal["boolean", "integer", "float", "string", "datetime", "other"]

_NUMPY_KINDS: dict[str, Kind] = {
    "b": "boolean",
    "i": "integer",
    "u": "integer",
    "f": "float",
    "U": "string",
    "S": "string",
    "M": "datetime",
}


@dataclass(frozen=True, slots=True)
class Column:
    """One input column: its logical kind, dtype name, values and null count."""

    name: str
    dtype: str
    kind: Kind
    values: np.ndarray
    nulls: int


def positional_names(count: int) -> list[str]:
    """Names given to the columns of a plain 2-D array: ``x0, x1, ...``."""
    return [f"x{i}" for i in range(count)]


@functools.lru_cache(maxsize=512)
def kind_of_dtype(dtype: str) -> Kind:
    """Return the logical kind of a dtype name as signatures store it.

    Example:
        >>> kind_of_dtype("float32"), kind_of_dtype("string"), kind_of_dtype("datetime64[ns]")
        ('float', 'string', 'datetime')
    """
    if dtype == "string":
        return "string"
    if dtype == "object":
        return "other"
    try:
        return _NUMPY_KINDS.get(np.dtype(dtype).kind, "other")
    except TypeError:
        return "other"


def is_dataframe(data: object) -> bool:
    """True for a pandas DataFrame (checked without importing pandas)."""
    return type(data).__module__.startswith("pandas") and hasattr(data, "columns")


def _is_null(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in ("NAType", "NaTType")


def _object_column(name: str, values: np.ndarray) -> Column:
    present = [v for v in values.tolist() if not _is_null(v)]
    nulls = len(values) - len(present)
    kinds = {type(v) for v in present}
    if kinds and all(issubclass(k, str) for k in kinds):
        return Column(name, "string", "string", values, nulls)
    if kinds and all(issubclass(k, bool) for k in kinds):
        return Column(name, "bool", "boolean", values, nulls)
    if kinds and all(issubclass(k, int) and not issubclass(k, bool) for k in kinds):
        numbers = np.array([np.nan if _is_null(v) else v for v in values.tolist()])
        return Column(name, "int64", "integer", numbers, nulls)
    if kinds and all(issubclass(k, int | float) and not issubclass(k, bool) for k in kinds):
        numbers = np.array([np.nan if _is_null(v) else v for v in values.tolist()], dtype=float)
        return Column(name, "float64", "float", numbers, nulls)
    if not kinds:  # every value is null: the column's type is unknown
        return Column(name, "object", "other", values, nulls)
    return Column(name, "object", "other", values, nulls)


def _numpy_column(name: str, values: np.ndarray) -> Column:
    if values.ndim != 1:
        raise InvalidInputError(
            f"column {name!r} has {values.ndim} dimensions; each column holds one value per row"
        )
    kind = _NUMPY_KINDS.get(values.dtype.kind)
    if kind is None:
        return _object_column(name, values)
    if kind == "float":
        nulls = int(np.isnan(values).sum())
    elif kind == "datetime":
        nulls = int(np.isnat(values).sum())
    else:
        nulls = 0
    dtype = "string" if kind == "string" else values.dtype.name
    return Column(name, dtype, kind, values, nulls)


def _numeric_frame_columns(frame: Any) -> list[Column] | None:
    """All-numeric frames, read as one float matrix (for checking, not for inferring types).

    Reading 30 columns one by one costs pandas ~30 Series; one ``to_numpy`` costs
    one copy at most. Integers read as whole floats, which checks accept.
    """
    names = list(frame.columns)
    if not names or not all(isinstance(n, str) for n in names):
        return None
    matrix = frame.to_numpy()
    if matrix.dtype.kind != "f":
        return None
    nulls = np.isnan(matrix).sum(axis=0)
    dtype = matrix.dtype.name
    return [Column(n, dtype, "float", matrix[:, i], int(nulls[i])) for i, n in enumerate(names)]


def _pandas_columns(frame: Any, *, fast: bool = False) -> list[Column]:
    import pandas as pd

    if fast:
        numeric = _numeric_frame_columns(frame)
        if numeric is not None:
            return numeric
    columns = []
    for name in frame.columns:
        if not isinstance(name, str):
            raise InvalidInputError(
                f"column names must be strings, got {name!r} ({type(name).__name__})"
            )
        series = frame[name]
        dtype = series.dtype
        if isinstance(dtype, np.dtype):
            columns.append(_numpy_column(name, series.to_numpy()))
            continue
        nulls = int(series.isna().sum())
        if isinstance(dtype, pd.CategoricalDtype):
            inner = _numpy_column(name, np.asarray(dtype.categories))
            values = series.astype(object).to_numpy()
            columns.append(Column(name, inner.dtype, inner.kind, values, nulls))
            continue
        kind = _NUMPY_KINDS.get(getattr(dtype, "kind", "O"))
        if kind in ("integer", "float", "boolean"):
            numpy_dtype = np.dtype(getattr(dtype, "numpy_dtype", "float64"))
            if nulls:  # NumPy has no integer or boolean null: widen to float with NaN
                values = series.to_numpy(dtype="float64", na_value=np.nan)
            else:
                values = series.to_numpy(dtype=numpy_dtype)
            columns.append(Column(name, numpy_dtype.name, kind, values, nulls))
        elif kind == "datetime":
            values = series.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
            columns.append(Column(name, values.dtype.name, "datetime", values, nulls))
        else:  # pandas string dtypes and other extension types
            values = series.to_numpy(dtype=object, na_value=None)
            columns.append(_object_column(name, values))
    return columns


def _arrow_columns(table: pa.Table | pa.RecordBatch) -> list[Column]:
    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        values = column.to_numpy(zero_copy_only=False)
        kind_type = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        if pa.types.is_string(kind_type) or pa.types.is_large_string(kind_type):
            values = np.asarray(values, dtype=object)
            columns.append(Column(field.name, "string", "string", values, column.null_count))
        elif pa.types.is_integer(kind_type) and column.null_count:
            dtype = kind_type.to_pandas_dtype()().dtype.name
            numbers = np.asarray(values, dtype=float)
            columns.append(Column(field.name, dtype, "integer", numbers, column.null_count))
        else:
            columns.append(_numpy_column(field.name, np.asarray(values)))
    return columns


def _mapping_columns(data: Mapping[Any, Any]) -> list[Column]:
    columns = []
    lengths = set()
    for name, raw in data.items():
        if not isinstance(name, str):
            raise InvalidInputError(f"column names must be strings, got {name!r}")
        values = np.asarray(raw) if not isinstance(raw, np.ndarray) else raw
        if values.ndim == 0:
            values = values.reshape(1)
        lengths.add(len(values))
        columns.append(_numpy_column(name, values))
    if len(lengths) > 1:
        raise InvalidInputError(
            f"columns have different lengths {sorted(lengths)}; "
            "every column needs one value per row"
        )
    return columns


def _record_columns(records: Sequence[Any]) -> list[Column]:
    names: dict[str, None] = {}
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise InvalidInputError(
                f"record {index} is a {type(record).__name__}; records are mappings of "
                "column name to value"
            )
        names.update(dict.fromkeys(record))
    table = {name: [record.get(name) for record in records] for name in names}
    return [_numpy_column(name, np.array(values, dtype=object)) for name, values in table.items()]


def columns_of(
    data: object, *, names: Sequence[str] | None = None, fast: bool = False
) -> list[Column]:
    """Split model input into named columns.

    Args:
        data: a pandas DataFrame, pyarrow Table/RecordBatch, mapping of columns,
            list of record mappings, or 2-D NumPy array.
        names: the column names of a plain array (default ``x0, x1, ...``).
        fast: read an all-numeric DataFrame as one float matrix: right for checking
            values, not for inferring column types (integers read as floats).

    Raises:
        InvalidInputError: an unsupported container, a 1-D or 3-D array, columns
            of unequal length, or a names list of the wrong size.
    """
    if isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise InvalidInputError(
                f"an input array must be 2-D (rows x columns), got shape {data.shape}; "
                "reshape one row with x.reshape(1, -1)"
            )
        labels = list(names) if names is not None else positional_names(data.shape[1])
        if len(labels) != data.shape[1]:
            raise InvalidInputError(
                f"the input array has {data.shape[1]} columns but {len(labels)} names were given"
            )
        return [_numpy_column(n, data[:, i]) for i, n in enumerate(labels)]
    if is_dataframe(data):
        return _pandas_columns(data, fast=fast)
    if isinstance(data, pa.Table | pa.RecordBatch):
        return _arrow_columns(data)
    if isinstance(data, Mapping):
        return _mapping_columns(data)
    if isinstance(data, list) and data and isinstance(data[0], Mapping):
        return _record_columns(data)
    raise InvalidInputError(
        f"cannot read model input of type {type(data).__name__}; pass a pandas DataFrame, "
        "a pyarrow Table, a dict of columns, a list of records or a 2-D NumPy array"
    )
