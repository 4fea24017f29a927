"""Describe a dataset: content digest, shape, schema and profile, in one streaming pass.

:func:`describe_dataset` opens the source (:mod:`steward.tracking._dataset_sources`),
reads it ``chunk_rows`` rows at a time (a 10M-row Parquet file is never loaded
whole) and feeds each column of each batch to the digest
(:mod:`steward.tracking._dataset_digest`) and the profile
(:mod:`steward.tracking._dataset_profile`) on a thread pool: the Arrow, NumPy
and hashlib kernels release the GIL.  Parquet is read
``_COLUMNS_PER_PASS`` columns at a time, since its reader holds a few MB per
column it decodes; every column's state is independent of the others.

Memory is bounded by one batch plus a fixed state per column: for numbers a
sample buffer of at most 1.5 x ``quantile_sample_size`` 16-byte entries, and
for every column a distinct sketch of at most 2 x 16,384 8-byte hashes and up
to 10,000 counted values.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from steward.core import InvalidInputError
from steward.tracking._dataset_digest import (
    TableDigester,
    check_supported,
    normalize_array,
)
from steward.tracking._dataset_profile import BatchRows, ProfileOptions, TableProfiler
from steward.tracking._dataset_sources import DatasetSource, open_source

__all__ = ["DatasetColumn", "DatasetDescription", "describe_dataset"]

_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,200}")
_ROLE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_MAX_THREADS = 8
_COLUMNS_PER_PASS = 8


@dataclass(frozen=True)
class DatasetColumn:
    """One column of a dataset: name, Arrow type string and nullability."""

    name: str
    dtype: str
    nullable: bool

    def as_dict(self) -> dict[str, Any]:
        """Return ``{"name", "dtype", "nullable"}``."""
        return {"name": self.name, "dtype": self.dtype, "nullable": self.nullable}


@dataclass(frozen=True)
class DatasetDescription:
    """What :func:`describe_dataset` found: identity, shape, schema and profile.

    Attributes:
        digest: ``"sha256:<hex>"`` over values and column types (see
            :mod:`steward.tracking._dataset_digest`); equal for equal data
            however it is stored.
        source_uri: ``file://`` URI of the path read, or ``memory://dataframe``,
            ``memory://table``, ``memory://arrow-stream``.
        name: dataset name given by the caller.
        role: what the run used it for (``train``, ``validation``, ...).
        num_rows: rows read.
        num_columns: columns read.
        schema: the columns, in order.
        profile: JSON-ready dict ``{"format", "rows", "settings", "columns": [...]}``
            (see :mod:`steward.tracking._dataset_profile` for a column's keys).
    """

    digest: str
    source_uri: str
    name: str
    role: str
    num_rows: int
    num_columns: int
    schema: tuple[DatasetColumn, ...]
    profile: Mapping[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict; :meth:`from_dict` reverses it."""
        return {
            "digest": self.digest,
            "source_uri": self.source_uri,
            "name": self.name,
            "role": self.role,
            "num_rows": self.num_rows,
            "num_columns": self.num_columns,
            "schema": [column.as_dict() for column in self.schema],
            "profile": dict(self.profile),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetDescription:
        """Rebuild a description from :meth:`as_dict` output.

        Raises:
            InvalidInputError: a key is missing or has the wrong type.
        """
        try:
            schema = tuple(
                DatasetColumn(str(c["name"]), str(c["dtype"]), bool(c["nullable"]))
                for c in data["schema"]
            )
            description = cls(
                digest=str(data["digest"]),
                source_uri=str(data["source_uri"]),
                name=str(data["name"]),
                role=str(data["role"]),
                num_rows=int(data["num_rows"]),
                num_columns=int(data["num_columns"]),
                schema=schema,
                profile=dict(data["profile"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"not a dataset description: {exc!r}") from exc
        if not description.digest.startswith("sha256:"):
            raise InvalidInputError(f"dataset digest {description.digest!r} is not 'sha256:<hex>'")
        return description

    def column(self, name: str) -> dict[str, Any]:
        """Return the profile of column ``name``.

        Raises:
            InvalidInputError: there is no such column.
        """
        for column in self.profile["columns"]:
            if column["name"] == name:
                return dict(column)
        names = [c.name for c in self.schema]
        raise InvalidInputError(f"dataset {self.name!r} has no column {name!r}; columns: {names}")


def describe_dataset(
    source: object,
    *,
    name: str,
    role: str,
    chunk_rows: int = 65_536,
    top_k: int = 10,
    sample_size: int = 1_000,
    quantile_sample_size: int = 100_000,
    histogram_bins: int = 20,
    source_uri: str | None = None,
) -> DatasetDescription:
    """Fingerprint and profile a dataset in one streaming pass.

    Args:
        source: a pandas DataFrame, a pyarrow Table or RecordBatch, an object
            with ``__arrow_c_stream__``, or a path (str or PathLike) to a Parquet
            file, a folder of Parquet files (hive partitions become columns) or a
            ``.csv``/``.tsv`` file.
        name: dataset name: 1-200 of letters, digits, ``_``, ``.``, ``-``.
        role: lowercase identifier such as ``train``, ``validation``, ``holdout``.
        chunk_rows: rows read and processed at a time (bounds memory).
        top_k: most frequent values kept for string and boolean columns.
        sample_size: size of the sorted random sample kept per numeric column.
        quantile_sample_size: values kept per numeric column to compute quantiles;
            quantiles are exact up to this many finite values.
        histogram_bins: at most this many histogram bins per numeric column.
        source_uri: recorded instead of the URI derived from ``source``.

    Returns:
        The digest, shape, schema and profile.

    Raises:
        InvalidInputError: bad name, role or option; an unsupported source or
            column type; a missing, unreadable or corrupt file; no columns.

    Example:
        >>> import pyarrow as pa
        >>> d = describe_dataset(pa.table({"x": [1, 2, 3]}), name="toy", role="train")
        >>> d.num_rows, d.column("x")["mean"]
        (3, 2.0)
    """
    _check_identity(name, role)
    options = ProfileOptions(top_k, sample_size, quantile_sample_size, histogram_bins)
    _check_options(chunk_rows, options)
    opened = open_source(source, chunk_rows)
    schema = opened.schema
    _check_schema(schema)
    digester = TableDigester(schema)
    profiler = TableProfiler(schema, options)
    rows = _consume(opened, digester, profiler)
    return DatasetDescription(
        digest=digester.hexdigest(rows),
        source_uri=source_uri if source_uri is not None else opened.uri,
        name=name,
        role=role,
        num_rows=rows,
        num_columns=len(schema),
        schema=tuple(DatasetColumn(f.name, str(f.type), f.nullable) for f in schema),
        profile=profiler.result(rows),
    )


def _consume(source: DatasetSource, digester: TableDigester, profiler: TableProfiler) -> int:
    """Feed every column of ``source`` to the digest and profile; return the row count."""
    names = source.schema.names
    if source.columnar:
        passes = [names[i : i + _COLUMNS_PER_PASS] for i in range(0, len(names), _COLUMNS_PER_PASS)]
    else:
        passes = [names]
    workers = min(_MAX_THREADS, os.cpu_count() or 1, len(passes[0]))
    counts = set()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="steward-dataset") as pool:
        for columns in passes:
            batches = source.read(columns if len(passes) > 1 else None)
            counts.add(_consume_pass(batches, columns, source, digester, profiler, pool, workers))
    if len(counts) != 1:  # a file changed while it was read
        raise InvalidInputError(f"{source.uri} gave different row counts per column: {counts}")
    return counts.pop()


def _consume_pass(
    batches: Iterator[pa.RecordBatch],
    columns: Sequence[str],
    source: DatasetSource,
    digester: TableDigester,
    profiler: TableProfiler,
    pool: ThreadPoolExecutor,
    workers: int,
) -> int:
    indices = [source.schema.get_field_index(name) for name in columns]
    expected = pa.schema([source.schema.field(i) for i in indices])
    start = 0
    for batch in _checked(_translate_errors(batches, source.uri), expected, source.uri):
        rows = profiler.batch_rows(start, batch.num_rows)

        def work(position: int, batch: pa.RecordBatch = batch, rows: BatchRows = rows) -> None:
            array = normalize_array(batch.column(position))
            digester.update_column(indices[position], array)
            profiler.update_column(indices[position], array, rows)

        if workers == 1:
            for position in range(batch.num_columns):
                work(position)
        else:
            for _ in pool.map(work, range(batch.num_columns)):
                pass
        start += batch.num_rows
    return start


def _checked(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, uri: str
) -> Iterator[pa.RecordBatch]:
    # Skip empty batches; refuse a batch whose columns differ from the dataset's.
    for batch in batches:
        if batch.schema.names != schema.names or batch.schema.types != schema.types:
            raise InvalidInputError(
                f"{uri}: a batch has schema {batch.schema} but the dataset's is {schema}"
            )
        if batch.num_rows:
            yield batch


def _translate_errors(batches: Iterator[pa.RecordBatch], uri: str) -> Iterator[pa.RecordBatch]:
    try:
        yield from batches
    except (pa.ArrowException, OSError, ValueError) as exc:
        if isinstance(exc, InvalidInputError):
            raise
        raise InvalidInputError(f"cannot read {uri}: {exc}") from exc


# -- checks -----------------------------------------------------------------------------------


def _check_identity(name: object, role: object) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInputError(
            f"dataset name {name!r} must be 1-200 characters of letters, digits, '_', '.', '-'"
        )
    if not isinstance(role, str) or not _ROLE.fullmatch(role):
        raise InvalidInputError(
            f"dataset role {role!r} must be a lowercase identifier such as "
            "'train', 'validation' or 'holdout' (a-z, 0-9, '_'; at most 64)"
        )


def _check_options(chunk_rows: int, options: ProfileOptions) -> None:
    limits = {
        "chunk_rows": (chunk_rows, 1),
        "top_k": (options.top_k, 0),
        "sample_size": (options.sample_size, 0),
        "quantile_sample_size": (options.quantile_sample_size, 1),
        "histogram_bins": (options.histogram_bins, 1),
    }
    for option, (value, low) in limits.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidInputError(f"{option} must be an int >= {low}; got {value!r}")
    if options.sample_size > options.quantile_sample_size:
        raise InvalidInputError(
            f"sample_size ({options.sample_size}) cannot exceed quantile_sample_size "
            f"({options.quantile_sample_size}); the sample is drawn from the quantile sample"
        )


def _check_schema(schema: pa.Schema) -> None:
    if len(schema) == 0:
        raise InvalidInputError("the dataset has no columns")
    seen: set[str] = set()
    for field in schema:
        if field.name in seen:
            raise InvalidInputError(f"the dataset has two columns named {field.name!r}")
        seen.add(field.name)
        check_supported(field.name, field.type)
