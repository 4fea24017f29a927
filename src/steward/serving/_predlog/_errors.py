"""Errors of the prediction log.

They extend the shared leaves of :mod:`steward.core`, so callers (the gateway's
status table, the CLI's exit codes) branch on the kind of failure::

    IntegrityError
    └── SegmentCorruptError         a frame fails its CRC where no crash can explain it
    InvalidInputError
    └── RecordTooLargeError         one record encodes to more than max_record_bytes
    BackendUnavailableError
    └── PredictionLogClosedError    append after close(), or the writer thread has stopped
"""

from __future__ import annotations

from pathlib import Path

from steward.core import BackendUnavailableError, IntegrityError, InvalidInputError

__all__ = ["PredictionLogClosedError", "RecordTooLargeError", "SegmentCorruptError"]


class SegmentCorruptError(IntegrityError):
    """A log segment holds bytes that fail verification, not explained by a torn tail.

    Attributes:
        path: the segment file.
        offset: the byte offset of the first bad frame (or 0 for a bad header).
        reason: what was wrong there.
    """

    def __init__(self, path: Path, offset: int, reason: str) -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        super().__init__(
            f"prediction log segment {path} is corrupt at byte {offset}: {reason}; the records "
            "before it are intact. Keep a copy of the file, then run `steward logs verify` to "
            "list every damaged segment"
        )

    def __reduce__(self) -> tuple[type[SegmentCorruptError], tuple[Path, int, str]]:
        return (type(self), (self.path, self.offset, self.reason))


class RecordTooLargeError(InvalidInputError):
    """One record encodes to more bytes than the log accepts."""


class PredictionLogClosedError(BackendUnavailableError):
    """The log was closed (or its writer stopped) and accepts no more records."""
