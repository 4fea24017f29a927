"""The prediction log the gateway writes: durable by group commit, queryable at once."""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import re
import socket
import threading
import weakref
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from steward.core import InvalidInputError, load_settings
from steward.serving._predlog._archive import Held, PredictionArchive, PurgeReport
from steward.serving._predlog._compaction import CompactionReport
from steward.serving._predlog._partitions import PartitionStore, open_partition_store
from steward.serving._predlog._records import DEFAULT_MAX_RECORD_BYTES, encode_record
from steward.serving._predlog._recovery import RecoveryReport, recover_segments
from steward.serving._predlog._segment import MAX_FRAME_BYTES, check_worker_id, encode_frame
from steward.serving._predlog._settings import PredictionLogSettings
from steward.serving._predlog._writer import GroupCommitWriter, Mode, WriterStats

__all__ = ["PredictionLog"]

_log = logging.getLogger("steward.serving.predlog")
_MODES = ("durable", "async")


def default_worker_id() -> str:
    """Return ``<host>-<pid>``, made safe for file names."""
    host = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}"


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise InvalidInputError(f"{name} is {value!r}; it must be a positive number")


class PredictionLog:
    """An append-only log of predictions and feedback, shared by the gateway's processes.

    Each process (worker) writes its own segments in ``directory``; ``append``
    is thread-safe and, in ``durable`` mode, returns only once the record is on
    disk. Concurrent appends share one ``fsync`` (group commit). Opening the log
    first recovers segments left open by writers that died. Sealed segments are
    compacted into Parquet partitions under ``predictions``; ``query`` sees both.

    Args:
        directory: the segment folder, on a local disk (created if missing).
        predictions: the Parquet root: a :class:`PartitionStore`, a folder or an
            ``s3://bucket/prefix`` URL; default ``<directory>/parquet``.
        mode: ``"durable"`` (default) or ``"async"`` (buffered; a crash loses at most
            ``flush_interval`` seconds of records).
        worker_id: names this writer's segments; default ``<host>-<pid>``.
        segment_max_bytes: seal a segment at this size.
        segment_max_age: seal a segment this many seconds after its first record.
        flush_interval: async mode: how long records may wait in memory.
        max_record_bytes: refuse records that encode to more than this.
        auto_compact: compact in a background thread whenever a segment is sealed.

    Example:
        >>> import tempfile
        >>> from datetime import UTC, datetime
        >>> from steward.serving._predlog import PredictionRecord
        >>> with PredictionLog(tempfile.mkdtemp()) as log:
        ...     log.append(PredictionRecord(
        ...         request_id="r1", ts=datetime.now(UTC), deployment="fraud", revision=1,
        ...         variant="champion", model_version="fraud/3", inputs={"amount": 12.5},
        ...         outputs={"score": 0.07}, latency_ms=1.8))
        ...     log.query("SELECT count(*) AS n FROM predictions").column("n").to_pylist()
        [1]

    Raises:
        InvalidInputError: a setting is out of range (the message names it).
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        predictions: PartitionStore | Path | str | None = None,
        mode: Literal["durable", "async"] = "durable",
        worker_id: str | None = None,
        segment_max_bytes: int = 64 * 1024 * 1024,
        segment_max_age: float = 300.0,
        flush_interval: float = 0.2,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        auto_compact: bool = False,
        s3_endpoint_url: str | None = None,
    ) -> None:
        if mode not in _MODES:
            raise InvalidInputError(f"mode {mode!r} is not one of {', '.join(_MODES)}")
        _positive("segment_max_bytes", segment_max_bytes)
        _positive("segment_max_age", segment_max_age)
        _positive("flush_interval", flush_interval)
        if not 0 < max_record_bytes <= MAX_FRAME_BYTES:
            raise InvalidInputError(
                f"max_record_bytes is {max_record_bytes}; it must be between 1 and "
                f"{MAX_FRAME_BYTES}"
            )
        try:
            worker = check_worker_id(worker_id or default_worker_id())
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from None
        self.directory = Path(directory).expanduser().absolute()
        self.directory.mkdir(parents=True, exist_ok=True)
        if not isinstance(predictions, PartitionStore):
            root = self.directory / "parquet" if predictions is None else predictions
            predictions = open_partition_store(str(root), s3_endpoint_url=s3_endpoint_url)
        self.mode: Mode = mode
        self.worker_id = worker
        self.archive = PredictionArchive(self.directory, predictions)
        self.recovery: RecoveryReport = recover_segments(self.directory)
        if self.recovery.dropped_bytes:
            _log.warning(
                "prediction log %s: cut %d bytes of torn tails (never acknowledged) from %d "
                "segments of dead writers",
                self.directory,
                self.recovery.dropped_bytes,
                len(self.recovery.segments),
            )
        for problem in self.recovery.corrupt:
            _log.error("%s", problem)
        self._max_record_bytes = max_record_bytes
        self._compactor = _BackgroundCompactor(self.archive) if auto_compact else None
        self._writer = GroupCommitWriter(
            self.directory,
            worker=worker,
            mode=mode,
            segment_max_bytes=segment_max_bytes,
            segment_max_age=segment_max_age,
            flush_interval=flush_interval,
            on_sealed=self._compactor.request if self._compactor else None,
        )
        # Buffered records must reach the disk when the interpreter exits normally.
        atexit.register(_close_at_exit, weakref.ref(self))

    @classmethod
    def from_settings(
        cls, settings: PredictionLogSettings | None = None, **overrides: Any
    ) -> PredictionLog:
        """Open the log that ``STEWARD_*`` settings describe (keyword arguments win).

        Raises:
            ConfigurationError: a setting is malformed or names an unusable location.
        """
        s = settings or load_settings(PredictionLogSettings)
        options: dict[str, Any] = {
            "predictions": s.resolved_predictions_uri(),
            "mode": s.prediction_log_mode,
            "segment_max_bytes": s.prediction_log_segment_max_bytes,
            "segment_max_age": s.prediction_log_segment_max_age,
            "flush_interval": s.prediction_log_flush_interval,
            "max_record_bytes": s.prediction_log_max_record_bytes,
            "s3_endpoint_url": s.s3_endpoint_url,
        }
        options.update(overrides)
        return cls(s.resolved_prediction_log_dir(), **options)

    # -- writing -----------------------------------------------------------------------------

    def append(self, record: object, *, durable: bool | None = None) -> None:
        """Log one record; when durable, return once it is on disk.

        Thread-safe. Encoding and checks run in the calling thread, so a bad record
        fails here and never reaches the segment.

        Args:
            record: a :class:`PredictionRecord` or :class:`FeedbackRecord`.
            durable: override the log's mode for this record, e.g. durable for a
                production deployment's requests in a log whose default is async
                (one log per process serves deployments of both kinds).

        Raises:
            InvalidInputError: the record is malformed; the message names the field.
            RecordTooLargeError: the record encodes to more than ``max_record_bytes``.
            BackendUnavailableError: the disk write failed; the record is not logged.
            PredictionLogClosedError: the log is closed.
        """
        frame = encode_frame(encode_record(record, max_bytes=self._max_record_bytes))
        batch = self._writer.submit(frame, durable=durable)
        if batch is not None:
            batch.done.wait()
            batch.raise_error()

    async def append_async(
        self, record: object, *, durable: bool | None = None, verify: bool = True
    ) -> None:
        """Log one record from asyncio code: awaits the group commit without blocking the loop.

        ``durable`` overrides the log's mode for this record, as in :meth:`append`;
        ``verify=False`` skips decoding the encoded record back (see
        :func:`encode_record`), for records built with the declared field types.

        Raises:
            The same errors as :meth:`append`.
        """
        frame = encode_frame(encode_record(record, max_bytes=self._max_record_bytes, verify=verify))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if self._writer.submit(frame, (loop, future), durable=durable) is not None:
            await future

    def flush(self) -> None:
        """Wait until every record appended so far is on disk (async mode's barrier)."""
        self._writer.flush()

    def rotate(self) -> None:
        """Seal the current segment now, so that compaction can take it."""
        self._writer.rotate()

    def close(self) -> None:
        """Write what is buffered, seal the segment and stop (idempotent)."""
        self._writer.close()
        if self._compactor is not None:
            self._compactor.stop()

    @property
    def stats(self) -> WriterStats:
        """Counters of this writer: records, batches (syncs), bytes, failures."""
        return self._writer.stats

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reading and upkeep (see PredictionArchive) ------------------------------------------

    def compact(self) -> CompactionReport:
        """Compact sealed segments into Parquet partitions."""
        return self.archive.compact()

    def query(
        self, sql: str, params: Sequence[Any] | None = None, *, limit: int | None = None
    ) -> pa.Table:
        """Run DuckDB SQL over the ``predictions`` and ``feedback`` views; return Arrow."""
        return self.archive.query(sql, params, limit=limit)

    def purge(self, deployment: str, before: date, *, held: Held) -> PurgeReport:
        """Delete the deployment's partitions dated before ``before`` unless ``held``."""
        return self.archive.purge(deployment, before, held=held)


def _close_at_exit(ref: weakref.ref[PredictionLog]) -> None:
    log = ref()
    if log is not None:
        log.close()


class _BackgroundCompactor:
    """One daemon thread that compacts after seals, coalescing requests that pile up."""

    def __init__(self, archive: PredictionArchive) -> None:
        self._archive = archive
        self._wanted = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name="steward-predlog-compact", daemon=True
        )
        self._thread.start()

    def request(self, _sealed: Path) -> None:
        self._wanted.set()

    def stop(self) -> None:
        self._stopping = True
        self._wanted.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._stopping:
                return
            try:
                report = self._archive.compact()
            except Exception:  # the segments stay; the next seal retries
                _log.exception("prediction log compaction failed")
                continue
            for problem in report.corrupt:
                _log.error("%s", problem)
