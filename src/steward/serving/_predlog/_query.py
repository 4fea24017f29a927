"""SQL over the log with DuckDB: the ``predictions`` and ``feedback`` views.

Each view is the Parquet parts of compacted segments plus the records of
segments not yet compacted, so a record is visible as soon as it is on disk.
Which side a segment's rows come from is decided by its manifest, read *after*
the segments (see :func:`open_views`), so a compaction running at the same time
never makes a row vanish or appear twice.

The connection is in memory and locked down before the caller's SQL runs: no
file or network access (``COPY ... TO``, ``read_csv('/etc/passwd')``, ``ATTACH``
and ``INSTALL`` fail) and no configuration changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from steward.core import InvalidInputError
from steward.serving._predlog._partitions import PartitionStore
from steward.serving._predlog._records import LogRecord
from steward.serving._predlog._segment import (
    OPEN_SUFFIX,
    SEALED_SUFFIX,
    SegmentName,
    scan_segment,
)
from steward.serving._predlog._tables import (
    FEEDBACK_SCHEMA,
    PREDICTION_SCHEMA,
    feedback_table,
    prediction_table,
    split_records,
)

__all__ = ["open_views", "run_query"]


def _segment_snapshot(directory: Path) -> dict[str, list[LogRecord]]:
    """Read every segment's good frames, by stem; segments that vanish meanwhile are skipped."""
    named = []
    for path in directory.iterdir():
        name = SegmentName.parse(path.name)
        if name is not None and path.suffix in (SEALED_SUFFIX, OPEN_SUFFIX):
            named.append((name, path))
    found: dict[str, list[LogRecord]] = {}
    for name, path in sorted(named, key=lambda item: item[0].segment):
        for candidate in (path, path.with_suffix(SEALED_SUFFIX)):  # sealed while we looked
            with contextlib.suppress(FileNotFoundError):
                # Queries tolerate damage: they show the frames before it; verify reports it.
                found[name.stem] = scan_segment(candidate, "live").records
                break
    return found


def open_views(directory: Path, store: PartitionStore) -> duckdb.DuckDBPyConnection:
    """Return a locked-down DuckDB connection with the ``predictions`` and ``feedback`` views."""
    segments = _segment_snapshot(directory) if directory.is_dir() else {}
    finished = store.manifests()  # after the segments: see the module docstring
    parts = [p for p in store.parts() if p.stem in finished]
    fresh = [r for stem, records in segments.items() if stem not in finished for r in records]
    predictions, feedback = split_records(fresh)
    con = duckdb.connect(":memory:")
    try:
        sources: dict[str, Any] = {
            "_predictions_parts": store.dataset(
                [p for p in parts if not p.is_feedback], PREDICTION_SCHEMA
            ),
            "_predictions_fresh": prediction_table(predictions),
            "_feedback_parts": store.dataset([p for p in parts if p.is_feedback], FEEDBACK_SCHEMA),
            "_feedback_fresh": feedback_table(feedback),
        }
        for name, source in sources.items():
            con.register(name, source)
        for view in ("predictions", "feedback"):
            con.execute(
                f"CREATE VIEW {view} AS SELECT * FROM _{view}_parts "
                f"UNION ALL SELECT * FROM _{view}_fresh"
            )
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def _columns(schema: pa.Schema) -> str:
    return ", ".join(schema.names)


def run_query(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: Sequence[Any] | None = None,
    *,
    limit: int | None = None,
) -> pa.Table:
    """Run ``sql`` on ``con`` and return the result as an Arrow table (at most ``limit`` rows).

    Raises:
        InvalidInputError: the SQL does not parse, names an unknown column or table, fails
            while running, or tries to reach files; the message lists the views' columns.
    """
    try:
        relation = con.sql(sql, params=list(params) if params is not None else None)
        if relation is None:  # a statement without a result, e.g. SET
            return pa.table({})
        if limit is not None:
            relation = relation.limit(limit)
        return relation.to_arrow_table()
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInputError(
            f"query failed: {first}. Query the views predictions({_columns(PREDICTION_SCHEMA)}) "
            f"and feedback({_columns(FEEDBACK_SCHEMA)}); they join on request_id, and "
            "json_extract(inputs, '$.field') reads a JSON column"
        ) from None
