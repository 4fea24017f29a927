"""The few file-system calls the log's durability rests on, in one place.

- ``sync_file``: ``fdatasync`` where the platform has it (it flushes the data and
  the file size, which is all an append needs), else ``fsync``.
- ``fsync_folder``: a created or renamed file survives a crash only once its
  folder entry is flushed (POSIX).
- ``try_lock``: an exclusive, non-blocking ``flock``. The kernel drops it when the
  process dies, however it dies, which is how a writer's live segment is told
  apart from one a crashed writer left behind.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one writer per folder, no liveness check
    fcntl = None  # type: ignore[assignment]

__all__ = ["fsync_folder", "sync_file", "try_lock", "write_all"]


def sync_file(fd: int) -> None:
    """Flush a file's data (and size) to disk."""
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:  # pragma: no cover - macOS, Windows
        os.fsync(fd)


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries, so that files created or renamed in it survive a crash."""
    if os.name != "posix":  # pragma: no cover - Windows cannot open folders
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (``pwrite`` may write less than asked)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def try_lock(fd: int) -> bool:
    """Take an exclusive lock on an open file without waiting; say whether it was taken."""
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
