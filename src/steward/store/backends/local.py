"""Blobs in a local folder, published with ``fsync`` + ``os.replace`` so none is ever torn."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from steward.core import NotFoundError

__all__ = ["LocalBlobBackend"]

# Blobs are staged here, inside the root, so os.replace never crosses a filesystem.
_STAGING = "tmp"


def _fsync_folder(folder: Path) -> None:
    # A rename is durable only once the folder entry is flushed (POSIX);
    # Windows cannot open folders.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _LocalStagedBlob:
    def __init__(self, root: Path) -> None:
        staging = root / _STAGING
        staging.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".put-", dir=staging)
        self._root = root
        self._temp = Path(name)
        self._file: BinaryIO | None = os.fdopen(fd, "wb")

    def write(self, data: bytes, /) -> None:
        if self._file is None:
            raise ValueError("write to a staged blob that was published or discarded")
        self._file.write(data)

    def publish(self, name: str) -> None:
        if self._file is None:
            raise ValueError("publish of a staged blob that was published or discarded")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        target = self._root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._temp, target)
        _fsync_folder(target.parent)

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._temp.unlink(missing_ok=True)


class LocalBlobBackend:
    """Blobs stored as files under ``root``; names map to relative paths.

    Args:
        root: the folder; created by :meth:`check` when missing.

    Example:
        >>> backend = LocalBlobBackend(Path(tempfile.mkdtemp()))
        >>> backend.check()
        >>> staged = backend.stage()
        >>> staged.write(b"hello")
        >>> staged.publish("greetings/hello")
        >>> backend.read_head("greetings/hello", 4)
        b'hell'
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def location(self) -> str:
        """The folder, as an absolute path."""
        return str(self.root)

    def _path(self, name: str) -> Path:
        return self.root / name

    def check(self) -> None:
        """Create the folder and prove that files can be written in it.

        Raises:
            OSError: the folder cannot be created or written (permissions, a file in the way).
        """
        staging = self.root / _STAGING
        staging.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(prefix=".probe-", dir=staging) as probe:
            probe.write(b"ok")

    def open_read(self, name: str) -> BinaryIO:
        """Open the blob ``name`` for reading.

        Raises:
            NotFoundError: no blob has this name.
        """
        try:
            return self._path(name).open("rb")
        except FileNotFoundError:
            raise NotFoundError(f"no blob {name!r} in {self.location}") from None

    def read_head(self, name: str, size: int) -> bytes:
        """Return the first ``size`` bytes of the blob ``name``.

        Raises:
            NotFoundError: no blob has this name.
        """
        with self.open_read(name) as handle:
            return handle.read(size)

    def size(self, name: str) -> int | None:
        """Return the size of the blob ``name`` in bytes, or ``None`` when there is none."""
        try:
            return self._path(name).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            return None

    def stage(self) -> _LocalStagedBlob:
        """Start writing a new blob in the staging folder under the root."""
        return _LocalStagedBlob(self.root)

    def delete(self, name: str) -> bool:
        """Delete the blob ``name``; return whether there was one."""
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            return False
        return True

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        """Yield ``(name, size)`` of the blobs under the folder ``prefix``, in name order."""
        top = self._path(prefix)
        if not top.is_dir():
            return
        for folder, subfolders, files in os.walk(top):
            subfolders.sort()
            here = Path(folder)
            for file in sorted(files):
                path = here / file
                try:
                    size = path.stat().st_size
                except FileNotFoundError:  # deleted while we walked
                    continue
                yield path.relative_to(self.root).as_posix(), size
