"""Where compacted records live: Parquet files under a predictions root, by partition.

Layout (names are relative to the root, a local folder or ``s3://bucket/prefix``)::

    deployment=<name>/date=<YYYY-MM-DD>/part-<worker>.<segment>.parquet   predictions
    feedback/date=<YYYY-MM-DD>/part-<worker>.<segment>.parquet            feedback
    manifests/<worker>.<segment>.json                                     one per compacted segment

Files are written through the artifact store's blob backends, which publish
atomically (a local file is synced, then renamed into place; an S3 object is
uploaded under a temporary key, then copied to its name). A part's name is a
function of the segment it came from, so writing it twice gives the same file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from steward.core import ConfigurationError, NotFoundError
from steward.store.backends import BlobBackend, LocalBlobBackend, S3BlobBackend

__all__ = ["PartFile", "PartitionStore", "manifest_name", "open_partition_store", "part_name"]

_PART = re.compile(
    r"(?:deployment=(?P<deployment>[^/]+)|(?P<feedback>feedback))/date=(?P<date>\d{4}-\d{2}-\d{2})"
    r"/part-(?P<stem>[A-Za-z0-9_-]{1,64}\.[0-9a-f]{32})\.parquet"
)
_MANIFEST = re.compile(r"manifests/(?P<stem>[A-Za-z0-9_-]{1,64}\.[0-9a-f]{32})\.json")


@dataclass(frozen=True)
class PartFile:
    """One Parquet part, parsed from its name.

    Attributes:
        name: the name under the root.
        deployment: the deployment, or ``None`` for a feedback part.
        day: the partition's date (UTC).
        stem: the segment it was compacted from.
        size: its size in bytes.
    """

    name: str
    deployment: str | None
    day: date
    stem: str
    size: int

    @property
    def is_feedback(self) -> bool:
        """Whether the part holds feedback rather than predictions."""
        return self.deployment is None


def part_name(deployment: str | None, day: date, stem: str) -> str:
    """Return the name of the part of segment ``stem`` in one partition."""
    folder = "feedback" if deployment is None else f"deployment={deployment}"
    return f"{folder}/date={day.isoformat()}/part-{stem}.parquet"


def manifest_name(stem: str) -> str:
    """Return the name of segment ``stem``'s manifest."""
    return f"manifests/{stem}.json"


class PartitionStore:
    """Parquet parts and manifests under one root, on a blob backend."""

    def __init__(self, backend: BlobBackend, filesystem: pafs.FileSystem, base: str) -> None:
        self.backend = backend
        self._filesystem = filesystem
        self._base = base.rstrip("/")

    @property
    def location(self) -> str:
        """The root, for messages."""
        return self.backend.location

    def write_table(self, name: str, table: pa.Table) -> None:
        """Publish ``table`` as the Parquet file ``name`` (atomically, replacing any)."""
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        self.write_bytes(name, sink.getvalue().to_pybytes())

    def write_bytes(self, name: str, data: bytes) -> None:
        """Publish ``data`` under ``name`` (atomically, replacing any)."""
        staged = self.backend.stage()
        try:
            staged.write(data)
            staged.publish(name)
        except BaseException:
            staged.discard()
            raise

    def read_bytes(self, name: str) -> bytes | None:
        """Return the file ``name``, or ``None`` when there is none."""
        try:
            reader = self.backend.open_read(name)
        except NotFoundError:
            return None
        try:
            return reader.read()
        finally:
            reader.close()

    def delete(self, name: str) -> bool:
        """Delete the file ``name``; say whether there was one."""
        return self.backend.delete(name)

    def parts(self) -> list[PartFile]:
        """Return every Parquet part, in name order."""
        found = []
        for name, size in self._names():
            match = _PART.fullmatch(name)
            if match is not None:
                found.append(
                    PartFile(
                        name=name,
                        deployment=None if match["feedback"] else match["deployment"],
                        day=date.fromisoformat(match["date"]),
                        stem=match["stem"],
                        size=size,
                    )
                )
        return found

    def manifests(self) -> set[str]:
        """Return the stems of the segments whose compaction finished."""
        return {match["stem"] for name, _ in self._names() if (match := _MANIFEST.fullmatch(name))}

    def dataset(self, parts: list[PartFile], schema: pa.Schema) -> pads.Dataset:
        """Return the parts as one Arrow dataset with ``schema`` (missing columns read as null)."""
        paths = [f"{self._base}/{part.name}" for part in parts]
        return pads.dataset(paths, schema=schema, format="parquet", filesystem=self._filesystem)

    def read_metadata(self, part: PartFile) -> pq.FileMetaData:
        """Read a part's Parquet footer (proves the file is whole)."""
        with self._filesystem.open_input_file(f"{self._base}/{part.name}") as handle:
            return pq.ParquetFile(handle).metadata

    def _names(self) -> Iterator[tuple[str, int]]:
        for name, size in self.backend.list(""):
            if not name.startswith("tmp/"):  # staging area of the local backend
                yield name, size


def open_partition_store(
    uri: str, *, s3_endpoint_url: str | None = None, setting: str = "STEWARD_PREDICTIONS_URI"
) -> PartitionStore:
    """Open the predictions root ``uri``: a folder, ``file:///...`` or ``s3://bucket/prefix``.

    Raises:
        ConfigurationError: an unknown scheme or a malformed URL (the message names
            ``setting``), or s3fs is missing for an ``s3://`` root.
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("", "file") or len(scheme) == 1:  # one letter: a Windows drive
        if scheme == "file" and (parts.netloc not in ("", "localhost") or not parts.path):
            raise ConfigurationError(
                f"{setting}={uri!r} is not a local file URL; write file:///absolute/path"
            )
        root = Path(unquote(parts.path) if scheme == "file" else uri).expanduser().absolute()
        root.mkdir(parents=True, exist_ok=True)
        return PartitionStore(LocalBlobBackend(root), pafs.LocalFileSystem(), root.as_posix())
    if scheme == "s3":
        if not parts.netloc or parts.query or parts.fragment:
            raise ConfigurationError(
                f"{setting}={uri!r} is not a bucket URL; write s3://bucket or s3://bucket/prefix"
            )
        backend = S3BlobBackend(parts.netloc, parts.path.strip("/"), endpoint_url=s3_endpoint_url)
        filesystem = pafs.PyFileSystem(pafs.FSSpecHandler(backend.fs))
        return PartitionStore(backend, filesystem, backend.key("").rstrip("/"))
    raise ConfigurationError(
        f"{setting}={uri!r} has unknown scheme {scheme + '://'!r}; use a folder path, "
        "file:///absolute/path or s3://bucket/prefix"
    )
