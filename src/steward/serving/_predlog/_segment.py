"""The segment file format, and reading it back with crash recovery.

A segment is one append-only file written by one writer::

    header  b"STEWPLOG" | u16 format | u32 n | n bytes: msgpack SegmentHeader | u32 crc32
    frame   u32 length | u32 crc32(payload) | payload (msgpack record)    repeated

All integers are little-endian. A segment being written is named
``<worker>.<segment id>.open`` and its writer holds an exclusive ``flock`` on it
(it is created as ``.open.new``, locked, its header synced, and only then renamed,
so that no reader ever sees an unlocked ``.open`` file of a live writer);
it is *sealed* by renaming it to ``<worker>.<segment id>.seg`` once everything in
it is on disk. Segment ids are UUIDv7, so names sort by creation time and never
collide, whichever processes share the folder.

Reading applies one of three policies to the first frame that does not verify:

- ``sealed``: nothing can be torn in a sealed segment, so it is corruption
  (:class:`SegmentCorruptError` naming the file and offset);
- ``live``: another writer may be mid-write, so reading stops there quietly;
- ``recover`` (an ``.open`` segment whose writer died): the bytes from there on are
  a torn tail, written after the last ``fsync`` and never acknowledged, and are
  cut off, unless a valid frame follows them, which no crash can produce: that is
  corruption of acknowledged data, and it is reported, never truncated.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import msgspec

from steward.serving._predlog._errors import SegmentCorruptError
from steward.serving._predlog._records import LogRecord, decode_record

__all__ = [
    "FORMAT_VERSION",
    "MAX_FRAME_BYTES",
    "OPEN_SUFFIX",
    "SEALED_SUFFIX",
    "STAGING_SUFFIX",
    "SegmentHeader",
    "SegmentName",
    "SegmentScan",
    "check_worker_id",
    "encode_frame",
    "encode_header",
    "read_segment",
    "scan_segment",
]

MAGIC = b"STEWPLOG"
FORMAT_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024 * 1024  # a length above this is garbage, not a record
OPEN_SUFFIX = ".open"
STAGING_SUFFIX = ".new"  # appended to an .open name while the segment is being created
SEALED_SUFFIX = ".seg"
_HEAD = struct.Struct("<8sHI")
_CRC = struct.Struct("<I")
_FRAME = struct.Struct("<II")
_WORKER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NAME = re.compile(
    r"(?P<worker>[A-Za-z0-9_-]{1,64})\.(?P<segment>[0-9a-f]{32})(?P<suffix>\.seg|\.open)"
)
# msgspec writes a tagged struct as a map whose first key is the tag field: this is
# how a frame's payload starts, and how recovery finds frames after damaged bytes.
_TAG_KEY = b"\xa4kind"

Policy = Literal["sealed", "live", "recover"]


class SegmentHeader(msgspec.Struct, kw_only=True):
    """What a segment says about itself."""

    format: int
    worker: str
    segment: str
    created: datetime


@dataclass(frozen=True)
class SegmentName:
    """A segment file's name, parsed: ``<worker>.<segment id>.seg`` or ``.open``."""

    worker: str
    segment: str
    sealed: bool

    @property
    def stem(self) -> str:
        """``<worker>.<segment id>``: names the segment's Parquet parts and manifest."""
        return f"{self.worker}.{self.segment}"

    @classmethod
    def parse(cls, filename: str) -> SegmentName | None:
        """Return the parsed name, or ``None`` for files that are not segments."""
        match = _NAME.fullmatch(filename)
        if match is None:
            return None
        return cls(match["worker"], match["segment"], match["suffix"] == SEALED_SUFFIX)


@dataclass
class SegmentScan:
    """What reading one segment found.

    Attributes:
        path: the segment file.
        header: its header, or ``None`` when a torn segment has none.
        records: the records of every frame that verified, in order.
        offsets: the byte offset of each record's frame.
        valid_end: the offset just past the last good frame.
        size: the file's size when read.
        problem: why reading stopped before ``size``, or ``None``.
    """

    path: Path
    header: SegmentHeader | None
    records: list[LogRecord]
    offsets: list[int]
    valid_end: int
    size: int
    problem: str | None = None

    @property
    def torn_bytes(self) -> int:
        """How many bytes after the last good frame did not verify."""
        return self.size - self.valid_end


def check_worker_id(worker: str) -> str:
    """Return ``worker`` if it can be part of segment names, else raise ``ValueError``."""
    if not _WORKER_ID.fullmatch(worker):
        raise ValueError(
            f"worker id {worker!r} cannot name segments: use 1 to 64 letters, digits, '_' or '-'"
        )
    return worker


def encode_header(header: SegmentHeader) -> bytes:
    """Return the bytes that open a segment."""
    body = msgspec.msgpack.encode(header)
    head = _HEAD.pack(MAGIC, header.format, len(body)) + body
    return head + _CRC.pack(zlib.crc32(head[len(MAGIC) :]))


def encode_frame(payload: bytes) -> bytes:
    """Return the frame that carries ``payload``: length, CRC32, payload."""
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def _parse_header(data: bytes) -> tuple[SegmentHeader | None, int, str | None]:
    """Return ``(header, offset of the first frame, problem)``."""
    if len(data) < _HEAD.size:
        return None, 0, f"header is {len(data)} bytes, shorter than the {_HEAD.size} it needs"
    magic, version, length = _HEAD.unpack_from(data)
    if magic != MAGIC:
        return None, 0, f"file does not start with {MAGIC!r}: not a prediction log segment"
    if version != FORMAT_VERSION:
        return None, 0, f"format version {version}, this steward reads {FORMAT_VERSION}"
    end = _HEAD.size + length
    if end + _CRC.size > len(data):
        return None, 0, "header is cut short"
    (crc,) = _CRC.unpack_from(data, end)
    if crc != zlib.crc32(data[len(MAGIC) : end]):
        return None, 0, "header checksum mismatch"
    try:
        header = msgspec.msgpack.decode(data[_HEAD.size : end], type=SegmentHeader)
    except msgspec.DecodeError as exc:
        return None, 0, f"header does not decode: {exc}"
    return header, end + _CRC.size, None


def _frames(data: bytes, start: int) -> Iterator[tuple[int, memoryview] | tuple[int, str]]:
    """Yield ``(offset, payload)`` per good frame, then ``(offset, problem)`` if one is bad."""
    view = memoryview(data)
    offset, size = start, len(data)
    while offset < size:
        if size - offset < _FRAME.size:
            yield offset, f"{size - offset} stray bytes, shorter than a frame header"
            return
        length, crc = _FRAME.unpack_from(data, offset)
        body = offset + _FRAME.size
        if length == 0 or length > MAX_FRAME_BYTES:
            yield offset, f"frame length {length} is out of range"
            return
        if body + length > size:
            yield offset, f"frame of {length} bytes is cut short at {size - body}"
            return
        payload = view[body : body + length]
        if zlib.crc32(payload) != crc:
            yield offset, "frame checksum mismatch"
            return
        yield offset, payload
        offset = body + length


def _valid_frame_after(data: bytes, start: int) -> int | None:
    """Return the offset of a frame that verifies somewhere after ``start``, if any."""
    position = data.find(_TAG_KEY, start + 1)
    while position != -1:
        for map_header in (1, 3):  # fixmap, or map16
            offset = position - map_header - _FRAME.size
            if offset > start and _verifies(data, offset):
                return offset
        position = data.find(_TAG_KEY, position + 1)
    return None


def _verifies(data: bytes, offset: int) -> bool:
    length, crc = _FRAME.unpack_from(data, offset)
    body = offset + _FRAME.size
    if not 0 < length <= len(data) - body:
        return False
    return bool(zlib.crc32(data[body : body + length]) == crc)


def scan_segment(path: Path, policy: Policy, data: bytes | None = None) -> SegmentScan:
    """Read a segment under a policy (see the module docstring).

    Raises:
        SegmentCorruptError: a sealed segment does not verify, or an open one is damaged
            before its last good frame.
        FileNotFoundError: the file went away (compacted by another process).
    """
    data = path.read_bytes() if data is None else data
    header, start, problem = _parse_header(data)
    scan = SegmentScan(path, header, [], [], start, len(data), problem)
    if header is None:
        # An open segment is created and its header synced before any frame is
        # written: without a header it holds nothing that was ever acknowledged.
        if policy == "sealed" or (policy == "recover" and _valid_frame_after(data, 0) is not None):
            raise SegmentCorruptError(path, 0, problem or "no header")
        return scan
    for offset, item in _frames(data, start):
        if isinstance(item, str):
            scan.problem = item
            break
        try:
            scan.records.append(decode_record(item))
        except msgspec.DecodeError as exc:
            # The CRC matched, so these are the bytes that were written: not a torn tail.
            raise SegmentCorruptError(path, offset, f"frame does not decode: {exc}") from None
        scan.offsets.append(offset)
        scan.valid_end = offset + _FRAME.size + len(item)
    if scan.problem is not None:
        if policy == "sealed":
            raise SegmentCorruptError(path, scan.valid_end, scan.problem)
        if policy == "recover":
            later = _valid_frame_after(data, scan.valid_end)
            if later is not None:
                raise SegmentCorruptError(
                    path,
                    scan.valid_end,
                    f"{scan.problem}, yet a valid frame follows at byte {later}",
                )
    return scan


def read_segment(path: Path) -> list[LogRecord]:
    """Return every record of a sealed segment, verifying each frame.

    Raises:
        SegmentCorruptError: any byte of the segment fails verification.
    """
    return scan_segment(path, "sealed").records
