"""Recovery of segments whose writer died: cut the torn tail, then seal.

A segment still named ``.open`` whose ``flock`` can be taken has no live writer
(the kernel releases the lock of a dead process, SIGKILL included). Its frames up
to the last one that verifies were synced, and some of them acknowledged; what
follows was written after the last sync and never acknowledged. Recovery cuts
it off (reporting how many bytes), syncs, and renames the segment to ``.seg``,
after which it is compacted like any other. A segment damaged *before* a good
frame is reported as corrupt and left untouched for an operator.

Several processes may recover the same folder at once: the lock makes one of
them do the work; the inode check catches a segment renamed under our feet.

A writer that died while creating a segment leaves a ``.open.new`` file that
holds no record. Recovery removes such files once they are unlocked and older
than :data:`STALE_STAGING_S`, so that a writer still creating one is never raced.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from steward.serving._predlog._errors import SegmentCorruptError
from steward.serving._predlog._files import fsync_folder, sync_file, try_lock
from steward.serving._predlog._segment import (
    OPEN_SUFFIX,
    SEALED_SUFFIX,
    STAGING_SUFFIX,
    SegmentName,
    scan_segment,
)

__all__ = ["STALE_STAGING_S", "RecoveredSegment", "RecoveryReport", "recover_segments"]

STALE_STAGING_S = 600.0


@dataclass(frozen=True)
class RecoveredSegment:
    """One segment a dead writer left open, after recovery.

    Attributes:
        path: where the segment is now (``.seg``), or was (removed when empty).
        records: the records it keeps.
        dropped_bytes: the torn tail that was cut off (never acknowledged).
    """

    path: Path
    records: int
    dropped_bytes: int


@dataclass
class RecoveryReport:
    """What recovery did to the segments of dead writers.

    Attributes:
        segments: each segment recovered.
        corrupt: segments left as they were because acknowledged data in them is damaged.
    """

    segments: list[RecoveredSegment] = field(default_factory=list)
    corrupt: list[SegmentCorruptError] = field(default_factory=list)

    @property
    def dropped_bytes(self) -> int:
        """Bytes of torn tails cut off, over all segments."""
        return sum(s.dropped_bytes for s in self.segments)


def recover_segments(directory: Path) -> RecoveryReport:
    """Recover every ``.open`` segment in ``directory`` whose writer is gone.

    Segments of live writers (in this process or another) are left alone.

    Example:
        >>> import tempfile
        >>> recover_segments(Path(tempfile.mkdtemp())).segments
        []
    """
    report = RecoveryReport()
    for path in sorted(directory.glob(f"*{OPEN_SUFFIX}")):
        if SegmentName.parse(path.name) is None:
            continue
        try:
            recovered = _recover_one(path)
        except SegmentCorruptError as exc:
            report.corrupt.append(exc)
            continue
        if recovered is not None:
            report.segments.append(recovered)
    for path in sorted(directory.glob(f"*{OPEN_SUFFIX}{STAGING_SUFFIX}")):
        _remove_stale_staging(path)
    return report


def _remove_stale_staging(path: Path) -> None:
    try:
        if time.time() - path.stat().st_mtime < STALE_STAGING_S:
            return
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return
    try:
        if try_lock(fd) and _same_file(fd, path):
            path.unlink()
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


def _recover_one(path: Path) -> RecoveredSegment | None:
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:  # sealed or recovered meanwhile
        return None
    try:
        if not try_lock(fd) or not _same_file(fd, path):
            return None
        scan = scan_segment(path, "recover")
        if not scan.records:
            path.unlink()
            fsync_folder(path.parent)
            return RecoveredSegment(path, 0, scan.size)
        if scan.torn_bytes:
            os.ftruncate(fd, scan.valid_end)
            sync_file(fd)
        sealed = path.with_suffix(SEALED_SUFFIX)
        os.replace(path, sealed)
        fsync_folder(path.parent)
        return RecoveredSegment(sealed, len(scan.records), scan.torn_bytes)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False
