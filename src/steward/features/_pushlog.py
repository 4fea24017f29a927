"""The offline push log: rows pushed online, kept as Parquet so training sees them too.

Layout, under ``STEWARD_OFFLINE_DIR`` (default ``STEWARD_HOME/features/offline``)::

    <offline dir>/<view>/<UTC time>-<id>.parquet     one file per push batch

Each file holds the columns of the view's source (join keys, event timestamp,
created timestamp when the source has one, and the features or the aggregated
columns), typed as the source types them, so that retrieval reads the source
and the log as one relation (``UNION ALL BY NAME``). A file is written under a
hidden temporary name, synced, then renamed into place: a reader never sees a
partial file, and a crash leaves at most a hidden leftover.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from steward.core import BackendUnavailableError, new_id

__all__ = ["append_push_log", "offline_push_log_path", "push_log_files"]


def offline_push_log_path(offline_dir: Path, view: str) -> Path:
    """Return the folder of ``view``'s push log (it may not exist yet).

    Example:
        >>> offline_push_log_path(Path("/srv/offline"), "customer_profile").as_posix()
        '/srv/offline/customer_profile'
    """
    return offline_dir / view


def push_log_files(offline_dir: Path, view: str) -> list[str]:
    """Return the Parquet files of ``view``'s push log, oldest first."""
    folder = offline_push_log_path(offline_dir, view)
    if not folder.is_dir():
        return []
    return sorted(str(path) for path in folder.glob("*.parquet"))


def append_push_log(offline_dir: Path, view: str, table: pa.Table, *, at: datetime) -> Path:
    """Write one push batch as a new Parquet file of ``view``'s log; return its path.

    Raises:
        BackendUnavailableError: the folder cannot be created or the file written.
    """
    folder = offline_push_log_path(offline_dir, view)
    stamp = at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    name = f"{stamp}-{new_id()}.parquet"
    temporary = folder / f".{name}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as handle:
            pq.write_table(table, handle, compression="zstd")
            handle.flush()
            os.fsync(handle.fileno())
        final = folder / name
        os.replace(temporary, final)
        _sync_folder(folder)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise BackendUnavailableError(
            f"cannot append to the push log of view {view!r} in {folder} ({exc}); "
            "make STEWARD_OFFLINE_DIR a writable folder"
        ) from exc
    return final


def _sync_folder(folder: Path) -> None:
    # Make the rename itself durable (POSIX); Windows has no directory handles to sync.
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
