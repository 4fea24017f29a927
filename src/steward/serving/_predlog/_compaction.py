"""Compaction: sealed segments become Parquet parts, then the segments go.

For each sealed segment, in order, and safe to interrupt anywhere:

1. write one part per partition it touches (``deployment=<d>/date=<day>``, and
   ``feedback/date=<day>``), named after the segment, each published atomically;
2. publish the segment's manifest (its parts and row counts);
3. delete the segment.

A crash before step 2 leaves parts without a manifest: the segment is still the
source of truth, queries ignore those parts, and the next compaction rewrites
the same names with the same rows. A crash after step 2 leaves a segment whose
manifest exists: queries read the parts and ignore the segment, and the next
compaction just deletes it. Either way no row is lost or counted twice.
One compaction runs at a time per segment folder (an ``flock``); another caller
returns at once with ``busy`` set.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from steward.core import utc_now
from steward.serving._predlog._errors import SegmentCorruptError
from steward.serving._predlog._files import fsync_folder, try_lock
from steward.serving._predlog._partitions import PartitionStore, manifest_name, part_name
from steward.serving._predlog._records import FeedbackRecord, LogRecord, PredictionRecord
from steward.serving._predlog._recovery import RecoveryReport, recover_segments
from steward.serving._predlog._segment import SEALED_SUFFIX, SegmentName, read_segment
from steward.serving._predlog._tables import feedback_table, partition_date, prediction_table

__all__ = ["CompactionReport", "compact_segments", "sealed_segments"]

LOCK_NAME = ".compact.lock"
Progress = Callable[[int, int], None]


@dataclass
class CompactionReport:
    """What one compaction did.

    Attributes:
        segments: segments compacted and removed.
        records: records they held.
        parts: Parquet parts written.
        finished_earlier: segments whose compaction had finished before a crash; removed now.
        corrupt: segments that failed verification, left in place.
        recovery: what recovering dead writers' segments did first.
        busy: another compaction held the folder; nothing was done.
    """

    segments: int = 0
    records: int = 0
    parts: int = 0
    finished_earlier: int = 0
    corrupt: list[SegmentCorruptError] = field(default_factory=list)
    recovery: RecoveryReport = field(default_factory=RecoveryReport)
    busy: bool = False


def sealed_segments(directory: Path) -> list[tuple[Path, SegmentName]]:
    """Return the sealed segments in ``directory``, oldest first."""
    found = []
    for path in directory.glob(f"*{SEALED_SUFFIX}"):
        name = SegmentName.parse(path.name)
        if name is not None and name.sealed:
            found.append((path, name))
    return sorted(found, key=lambda item: item[1].segment)


def compact_segments(
    directory: Path, store: PartitionStore, *, progress: Progress | None = None
) -> CompactionReport:
    """Compact every sealed segment of ``directory`` into ``store``; see the module docstring.

    Segments a dead writer left open are recovered (and compacted) first.

    Raises:
        BackendUnavailableError: the predictions root cannot be written; segments not yet
            compacted stay where they are.
    """
    report = CompactionReport()
    directory.mkdir(parents=True, exist_ok=True)
    lock_fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        if not try_lock(lock_fd):
            report.busy = True
            return report
        report.recovery = recover_segments(directory)
        report.corrupt.extend(report.recovery.corrupt)
        segments = sealed_segments(directory)
        finished = store.manifests()
        for index, (path, name) in enumerate(segments):
            if name.stem in finished:
                remove_segment(path)
                report.finished_earlier += 1
            else:
                _compact_one(path, name.stem, store, report)
            if progress is not None:
                progress(index + 1, len(segments))
    finally:
        os.close(lock_fd)
    return report


def _compact_one(path: Path, stem: str, store: PartitionStore, report: CompactionReport) -> None:
    try:
        records = read_segment(path)
    except SegmentCorruptError as exc:
        report.corrupt.append(exc)
        return
    except FileNotFoundError:  # removed by an operator meanwhile
        return
    written = []
    for (deployment, day), rows in _partitions(records).items():
        name = part_name(deployment, day, stem)
        if deployment is None:
            table = feedback_table([r for r in rows if isinstance(r, FeedbackRecord)])
        else:
            table = prediction_table([r for r in rows if isinstance(r, PredictionRecord)])
        store.write_table(name, table)
        written.append({"name": name, "rows": table.num_rows})
    manifest = {
        "segment": stem,
        "records": len(records),
        "parts": written,
        "compacted_at": utc_now().isoformat(),
    }
    store.write_bytes(manifest_name(stem), json.dumps(manifest, indent=1).encode())
    remove_segment(path)
    report.segments += 1
    report.records += len(records)
    report.parts += len(written)


def _partitions(records: list[LogRecord]) -> dict[tuple[str | None, date], list[LogRecord]]:
    groups: dict[tuple[str | None, date], list[LogRecord]] = defaultdict(list)
    for record in records:
        deployment = record.deployment if isinstance(record, PredictionRecord) else None
        groups[(deployment, partition_date(record))].append(record)
    return dict(sorted(groups.items(), key=lambda item: (item[0][0] or "", item[0][1])))


def remove_segment(path: Path) -> None:
    """Delete a compacted segment and make the deletion durable."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fsync_folder(path.parent)
