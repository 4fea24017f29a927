"""Open what users hand to ``describe_dataset`` as a schema plus batches of rows.

Accepted: a pandas DataFrame, a pyarrow Table or RecordBatch, any object with
``__arrow_c_stream__`` (polars, DuckDB relations), or a path to a Parquet file,
a folder of Parquet files (hive partitions become columns) or a CSV/TSV file.

Parquet is columnar, so a Parquet source can be read a few columns at a time
(``columnar=True``): the Parquet reader holds a few MB of page and dictionary
buffers per column it decodes, which for a wide file is more than a batch.
Other sources are read once, all columns together.

pandas is optional, so it is never imported: a DataFrame is recognised by its
class's module and converted ``chunk_rows`` rows at a time against a schema
inferred once from the whole frame; its index is left out.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from steward.core import InvalidInputError

__all__ = ["DatasetSource", "open_source"]

_PARQUET_SUFFIXES = {".parquet", ".pq", ".parq"}
_CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
_CSV_BLOCK = 16 << 20  # the CSV reader infers column types from the first block
_READ_BUFFER = 1 << 20  # Parquet: buffered page reads, not whole column chunks in memory

Reader = Callable[[Sequence[str] | None], Iterator[pa.RecordBatch]]


@dataclass(frozen=True)
class DatasetSource:
    """An opened dataset: where it is, its schema, and a way to read it in batches.

    ``read(columns)`` yields record batches of at most ``chunk_rows`` rows holding
    ``columns`` (None: all).  Only a ``columnar`` source accepts a subset of
    columns, and may be read more than once.
    """

    uri: str
    schema: pa.Schema
    read: Reader
    columnar: bool = False


def open_source(source: object, chunk_rows: int) -> DatasetSource:
    """Open ``source`` for reading ``chunk_rows`` rows at a time.

    Raises:
        InvalidInputError: an unsupported object, a missing path, a file that is
            neither Parquet nor CSV, or one that cannot be opened.
    """
    if isinstance(source, pa.RecordBatch):
        source = pa.Table.from_batches([source])
    if isinstance(source, pa.Table):
        table = source
        return DatasetSource(
            "memory://table",
            table.schema,
            lambda _: iter(table.to_batches(max_chunksize=chunk_rows)),
        )
    if _is_pandas_frame(source):
        return _pandas(source, chunk_rows)
    if isinstance(source, str | os.PathLike):
        return _open_path(Path(source).expanduser(), chunk_rows)
    if hasattr(source, "__arrow_c_stream__"):
        try:
            reader = pa.RecordBatchReader.from_stream(source)
        except (pa.ArrowException, TypeError) as exc:
            raise InvalidInputError(
                f"cannot read the Arrow stream of {type(source).__name__}: {exc}"
            ) from exc
        return DatasetSource(
            "memory://arrow-stream", reader.schema, lambda _: slices(reader, chunk_rows)
        )
    raise InvalidInputError(
        f"cannot describe a {type(source).__name__}; give a pandas DataFrame, a pyarrow Table, "
        "or a path to a Parquet file, a Parquet folder or a CSV file"
    )


def slices(batches: Iterable[pa.RecordBatch], chunk_rows: int) -> Iterator[pa.RecordBatch]:
    """Cut batches into slices of at most ``chunk_rows`` rows (zero-copy)."""
    for batch in batches:
        for start in range(0, batch.num_rows, chunk_rows):
            yield batch.slice(start, chunk_rows)


def _is_pandas_frame(source: object) -> bool:
    module = type(source).__module__
    return module.split(".", 1)[0] == "pandas" and hasattr(source, "to_records")


def _pandas(frame: Any, chunk_rows: int) -> DatasetSource:
    try:
        schema = pa.Schema.from_pandas(frame, preserve_index=False).remove_metadata()
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise InvalidInputError(f"cannot convert the DataFrame to Arrow: {exc}") from exc
    # Arrow names every column by a string; select pandas columns by position instead.
    frame = frame.set_axis(schema.names, axis="columns")

    def batches(_: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
        for start in range(0, len(frame), chunk_rows):
            part = frame.iloc[start : start + chunk_rows]
            yield pa.RecordBatch.from_pandas(part, schema=schema, preserve_index=False)

    return DatasetSource("memory://dataframe", schema, batches)


def _open_path(path: Path, chunk_rows: int) -> DatasetSource:
    if not path.exists():
        raise InvalidInputError(f"no file or folder at {str(path)!r}")
    uri = path.resolve().as_uri()
    try:
        if path.is_dir():
            return _parquet_folder(uri, path, chunk_rows)
        suffixes = "".join(path.suffixes[-2:]).lower()
        delimiter = next((d for s, d in _CSV_SUFFIXES.items() if s in suffixes), None)
        if delimiter is not None:
            return _csv_file(uri, path, delimiter, chunk_rows)
        if path.suffix.lower() in _PARQUET_SUFFIXES or _has_parquet_magic(path):
            return _parquet_file(uri, path, chunk_rows)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read {str(path)!r}: {exc}") from exc
    raise InvalidInputError(
        f"{str(path)!r} is neither Parquet nor CSV; supported: .parquet/.pq files, "
        "folders of Parquet files, .csv/.tsv files (optionally .gz/.bz2/.zst compressed)"
    )


def _has_parquet_magic(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"PAR1"


def _parquet_file(uri: str, path: Path, chunk_rows: int) -> DatasetSource:
    parquet = pq.ParquetFile(path, buffer_size=_READ_BUFFER, pre_buffer=False)

    def batches(columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
        selected = list(columns) if columns is not None else None
        read: Iterator[pa.RecordBatch] = parquet.iter_batches(
            batch_size=chunk_rows, columns=selected, use_threads=True
        )
        return read

    return DatasetSource(uri, parquet.schema_arrow, batches, columnar=True)


def _parquet_folder(uri: str, path: Path, chunk_rows: int) -> DatasetSource:
    # Imported here, not at the top: pyarrow.dataset imports pandas (~1.5 s) when installed.
    import pyarrow.dataset as pa_ds

    dataset = pa_ds.dataset(path, format="parquet", partitioning="hive")
    scan = pa_ds.ParquetFragmentScanOptions(
        use_buffered_stream=True, buffer_size=_READ_BUFFER, pre_buffer=False
    )

    def batches(columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
        return iter(
            dataset.to_batches(
                columns=list(columns) if columns is not None else None,
                batch_size=chunk_rows,
                batch_readahead=2,
                fragment_readahead=1,
                fragment_scan_options=scan,
                use_threads=True,
            )
        )

    return DatasetSource(uri, dataset.schema, batches, columnar=True)


def _csv_file(uri: str, path: Path, delimiter: str, chunk_rows: int) -> DatasetSource:
    reader = pa_csv.open_csv(
        path,
        read_options=pa_csv.ReadOptions(block_size=_CSV_BLOCK),
        parse_options=pa_csv.ParseOptions(delimiter=delimiter),
    )
    return DatasetSource(uri, reader.schema, lambda _: slices(reader, chunk_rows))
