"""Turn the inputs users hand us into columns we can read one batch at a time.

Accepted tables: a pyarrow ``Table`` or ``RecordBatch``, a pandas ``DataFrame``,
a mapping of column name to array-like, or a path to a Parquet file, a Parquet
dataset folder or a CSV file.  Accepted 1-D inputs (one column named
``"value"``): a NumPy array, a list or tuple, a pyarrow ``Array`` or
``ChunkedArray``, a pandas ``Series``.

pandas is optional, so it is never imported here: pandas objects are recognised
by their class's module and converted column by column through pyarrow, which
keeps peak memory at one column's copy instead of the whole frame's.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from steward.core import InvalidInputError

__all__ = [
    "SINGLE_COLUMN",
    "Category",
    "ColumnKind",
    "TableSource",
    "arrow_kind",
    "as_array",
    "as_table",
    "category_counts",
    "float_values",
    "is_one_dimensional",
    "iter_batches",
    "numeric_values",
]

SINGLE_COLUMN = "value"
"""The name a 1-D input gets as a one-column table."""

ColumnKind = Literal["numeric", "categorical"]
Category = str | int | float | bool
FloatArray = npt.NDArray[np.float64]


class TableSource(Protocol):
    """Columns readable in batches; what every table input becomes."""

    @property
    def names(self) -> tuple[str, ...]:
        """Column names, in table order."""
        ...

    @property
    def num_rows(self) -> int:
        """Number of rows."""
        ...

    def read(self, names: Sequence[str]) -> dict[str, pa.ChunkedArray]:
        """Read the named columns (a batch) into memory."""
        ...


@dataclass(frozen=True)
class _ArrowSource:
    table: pa.Table

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.table.column_names)

    @property
    def num_rows(self) -> int:
        return int(self.table.num_rows)

    def read(self, names: Sequence[str]) -> dict[str, pa.ChunkedArray]:
        return {name: self.table.column(name) for name in names}


@dataclass(frozen=True)
class _ParquetSource:
    """A Parquet file or dataset folder, read a batch of columns at a time."""

    path: Path
    dataset: Any  # pyarrow.dataset.Dataset (untyped)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.dataset.schema.names)

    @property
    def num_rows(self) -> int:
        return int(self.dataset.count_rows())

    def read(self, names: Sequence[str]) -> dict[str, pa.ChunkedArray]:
        table = self.dataset.to_table(columns=list(names))
        return {name: table.column(name) for name in names}


@dataclass(frozen=True)
class _MappingSource:
    columns: Mapping[str, Any]
    rows: int

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.columns)

    @property
    def num_rows(self) -> int:
        return self.rows

    def read(self, names: Sequence[str]) -> dict[str, pa.ChunkedArray]:
        return {name: _chunked(as_array(self.columns[name], name=name)) for name in names}


def _chunked(array: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    return array if isinstance(array, pa.ChunkedArray) else pa.chunked_array([array])


def _is_pandas(value: Any, kind: str) -> bool:
    """Tell whether ``value`` is a pandas ``kind`` (or a subclass) without importing pandas."""
    return any(
        cls.__name__ == kind and cls.__module__.partition(".")[0] == "pandas"
        for cls in type(value).__mro__
    )


def is_one_dimensional(data: Any) -> bool:
    """Tell whether ``data`` is a 1-D input (array, list, Series) rather than a table."""
    if isinstance(data, pa.Array | pa.ChunkedArray | list | tuple):
        return True
    if isinstance(data, np.ndarray):
        return data.ndim == 1
    return _is_pandas(data, "Series")


def as_table(data: Any, *, role: str = "data") -> TableSource:
    """Adapt any accepted table (or 1-D) input to a :class:`TableSource`.

    Args:
        data: the input; see the module docstring for what is accepted.
        role: how error messages name the input ("reference", "current", ...).

    Raises:
        InvalidInputError: the input is of an unsupported kind, has duplicate or
            mismatched columns, or names a file that cannot be read.
    """
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if isinstance(data, pa.Table):
        _check_unique(list(data.column_names), role)
        return _ArrowSource(data)
    if isinstance(data, str | Path):
        return _from_path(Path(data), role)
    if _is_pandas(data, "DataFrame"):
        return _from_pandas(data, role)
    if isinstance(data, np.ndarray) and data.ndim != 1:
        raise InvalidInputError(
            f"{role}: expected a table or a 1-D array, got an array of shape {data.shape}; "
            "pass a DataFrame, a pyarrow Table or a dict of columns"
        )
    if is_one_dimensional(data):
        column = as_array(data, name=SINGLE_COLUMN)
        return _MappingSource({SINGLE_COLUMN: column}, len(column))
    if isinstance(data, Mapping):
        return _from_mapping(data, role)
    raise InvalidInputError(
        f"{role}: unsupported input of type {type(data).__name__}; expected a pandas DataFrame, "
        "a pyarrow Table, a dict of columns, a Parquet/CSV path or a 1-D array"
    )


def _check_unique(names: list[str], role: str) -> None:
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise InvalidInputError(f"{role}: duplicate column names {duplicates}")


def _from_path(path: Path, role: str) -> TableSource:
    if not path.exists():
        raise InvalidInputError(f"{role}: no such file or folder: {str(path)!r}")
    suffix = path.suffix.lower()
    try:
        if suffix in {".csv", ".tsv"}:
            from pyarrow import csv as pa_csv  # submodule; pyarrow is a base dependency

            options = pa_csv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ",")
            table = pa_csv.read_csv(path, parse_options=options)
            _check_unique(list(table.column_names), role)
            return _ArrowSource(table)
        from pyarrow import dataset as pa_ds

        return _ParquetSource(path, pa_ds.dataset(path, format="parquet"))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise InvalidInputError(
            f"{role}: cannot read {str(path)!r} as Parquet or CSV: {exc}"
        ) from exc


def _from_pandas(frame: Any, role: str) -> TableSource:
    names = [str(label) for label in frame.columns]
    _check_unique(names, role)
    columns = {name: frame.iloc[:, position] for position, name in enumerate(names)}
    return _MappingSource(columns, len(frame))


def _from_mapping(data: Mapping[Any, Any], role: str) -> TableSource:
    if not data:
        raise InvalidInputError(f"{role}: the mapping has no columns")
    columns = {str(name): value for name, value in data.items()}
    lengths = {name: _length(value, name) for name, value in columns.items()}
    if len(set(lengths.values())) > 1:
        raise InvalidInputError(f"{role}: columns have different lengths: {lengths}")
    return _MappingSource(columns, next(iter(lengths.values())))


def _length(value: Any, name: str) -> int:
    try:
        return len(value)
    except TypeError:
        raise InvalidInputError(
            f"column {name!r} is not array-like: {type(value).__name__}"
        ) from None


def as_array(data: Any, *, name: str = SINGLE_COLUMN) -> pa.Array | pa.ChunkedArray:
    """Convert one array-like (NumPy, list, pandas Series, pyarrow) to a pyarrow array.

    NaN in float input stays NaN (it is treated as missing later); mixed-type
    object columns fall back to their string form.

    Raises:
        InvalidInputError: the value is not 1-D or cannot be converted.
    """
    if isinstance(data, pa.Array | pa.ChunkedArray):
        return data
    if isinstance(data, np.ndarray) and data.ndim != 1:
        raise InvalidInputError(f"column {name!r}: expected 1-D values, got shape {data.shape}")
    if isinstance(data, str | bytes) or not hasattr(data, "__len__"):
        raise InvalidInputError(
            f"column {name!r}: expected an array-like, got {type(data).__name__}"
        )
    try:
        return pa.array(data, from_pandas=_is_pandas(data, "Series"))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError):
        values = data.tolist() if hasattr(data, "tolist") else list(data)
        return pa.array([None if _is_missing(v) else str(v) for v in values], type=pa.string())


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, float) and math.isnan(value)


def arrow_kind(dtype: pa.DataType) -> ColumnKind | None:
    """Map an Arrow type to the kind of drift statistics it supports (None: unsupported).

    Numbers, decimals, dates, times, timestamps and durations are numeric;
    booleans, strings, binary and dictionary-encoded values are categorical.
    """
    if pa.types.is_dictionary(dtype):
        return "categorical"
    if pa.types.is_boolean(dtype):
        return "categorical"
    if (
        pa.types.is_integer(dtype)
        or pa.types.is_floating(dtype)
        or pa.types.is_decimal(dtype)
        or pa.types.is_temporal(dtype)
    ):
        return "numeric"
    if (
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_binary(dtype)
        or pa.types.is_large_binary(dtype)
        or getattr(pa.types, "is_string_view", lambda _: False)(dtype)
        or pa.types.is_null(dtype)
    ):
        return "categorical"
    return None


def numeric_values(array: pa.Array | pa.ChunkedArray) -> tuple[FloatArray, int]:
    """Return the finite values of a numeric column as float64, and how many were missing.

    Nulls, NaN and ±inf all count as missing: a distribution is compared on the
    finite values, and the missing share is compared separately.

    Example:
        >>> numeric_values(pa.array([1.0, None, float("nan"), 3.0, float("inf")]))
        (array([1., 3.]), 3)

    Raises:
        InvalidInputError: the column's type cannot be read as numbers.
    """
    if pa.types.is_null(array.type):
        return np.empty(0, dtype=np.float64), len(array)
    values = float_values(array)
    finite = np.isfinite(values)
    kept = int(np.count_nonzero(finite))
    if kept == len(values):
        return values, 0
    return values[finite], len(values) - kept


def float_values(array: pa.Array | pa.ChunkedArray) -> FloatArray:
    """Read a numeric or temporal column as float64, nulls as NaN.

    Dates, times and timestamps become their integer count of days or time units.

    Raises:
        InvalidInputError: the column's type cannot be read as numbers.
    """
    dtype = array.type
    try:
        if pa.types.is_temporal(dtype):
            array = pc.cast(array, pa.int32() if dtype.bit_width == 32 else pa.int64())
        if not pa.types.is_float64(array.type):
            array = pc.cast(array, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InvalidInputError(f"values of type {dtype} are not numeric: {exc}") from exc
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.float64)


def category_counts(
    array: pa.Array | pa.ChunkedArray,
) -> tuple[list[Category], npt.NDArray[np.int64], int]:
    """Count each distinct value of a column; nulls (and NaN) count as missing.

    Example:
        >>> category_counts(pa.array(["a", "b", None, "a"]))
        (['a', 'b'], array([2, 1]), 1)

    Returns:
        The distinct values (as JSON scalars), their counts, and the missing count.
    """
    if pa.types.is_floating(array.type):
        array = pc.if_else(pc.is_nan(array), pa.scalar(None, array.type), array)
    if pa.types.is_dictionary(array.type):
        array = pc.cast(array, array.type.value_type)
    missing = int(array.null_count)
    counted = pc.value_counts(array)
    if isinstance(counted, pa.ChunkedArray):  # pragma: no cover - depends on pyarrow version
        counted = counted.combine_chunks()
    values = counted.field("values")
    counts = np.asarray(counted.field("counts").to_numpy(zero_copy_only=False), dtype=np.int64)
    keep = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    keys = [
        _category(value) for value, valid in zip(values.to_pylist(), keep, strict=True) if valid
    ]
    return keys, counts[keep], missing


def _category(value: Any) -> Category:
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def iter_batches(names: Sequence[str], rows: int, budget_bytes: int) -> Iterator[list[str]]:
    """Split column names into batches whose float64 copies fit ``budget_bytes``."""
    per_column = max(1, rows) * 8
    size = max(1, budget_bytes // per_column)
    for start in range(0, len(names), size):
        yield list(names[start : start + size])
