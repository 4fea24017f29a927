"""The seam under the artifact store: a flat namespace of immutable blobs.

A backend knows nothing of digests or encryption; it stores bytes under
slash-separated names (``sha256/ab/ab12...``) and publishes each one atomically,
so a reader never sees half a blob. Backends translate their own exceptions:
a missing name raises :class:`~steward.core.NotFoundError`, an unreachable
service :class:`~steward.core.BackendUnavailableError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

__all__ = ["BlobBackend", "BlobReader", "StagedBlob"]


class BlobReader(Protocol):
    """A stored blob opened for sequential reading."""

    def read(self, size: int = -1, /) -> bytes:
        """Return up to ``size`` bytes; ``b""`` at the end."""
        ...

    def close(self) -> None:
        """Release the underlying file or connection."""
        ...


class StagedBlob(Protocol):
    """A blob being written under a temporary name, invisible until published."""

    def write(self, data: bytes, /) -> None:
        """Append ``data``."""
        ...

    def publish(self, name: str) -> None:
        """Make the written bytes visible under ``name`` at once, replacing any blob there."""
        ...

    def discard(self) -> None:
        """Throw the written bytes away; safe to call after a failure or twice."""
        ...


class BlobBackend(Protocol):
    """Where blobs live: a local folder, an S3 bucket, ..."""

    @property
    def location(self) -> str:
        """Say where the blobs are, for messages (a folder path, ``s3://bucket/prefix``)."""
        ...

    def check(self) -> None:
        """Make sure the location exists and can be written; create it when possible.

        Raises:
            NotFoundError: the location (e.g. the bucket) does not exist and cannot be created.
            BackendUnavailableError: the service cannot be reached.
            OSError: a local folder cannot be created or written.
        """
        ...

    def open_read(self, name: str) -> BlobReader:
        """Open the blob ``name`` for reading.

        Raises:
            NotFoundError: no blob has this name.
        """
        ...

    def read_head(self, name: str, size: int) -> bytes:
        """Return the first ``size`` bytes (fewer when the blob is shorter).

        Raises:
            NotFoundError: no blob has this name.
        """
        ...

    def size(self, name: str) -> int | None:
        """Return the size in bytes of the blob ``name``, or ``None`` when there is none."""
        ...

    def stage(self) -> StagedBlob:
        """Start writing a new blob under a temporary name."""
        ...

    def delete(self, name: str) -> bool:
        """Delete the blob ``name``; return whether there was one."""
        ...

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        """Yield ``(name, size)`` of every published blob whose name starts with ``prefix``."""
        ...
