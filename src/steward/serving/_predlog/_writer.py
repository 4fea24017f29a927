"""Group commit: many threads append, one thread writes, one fsync acknowledges them all.

Appenders put their frame into the *open batch* and (in durable mode) wait on it.
The writer thread takes the whole open batch at once, writes it with one
``pwrite``, syncs once, and wakes every waiter of that batch; while it syncs, the
next batch fills. The cost of a sync is thus shared by every request that arrived
during the previous one, so throughput grows with concurrency instead of being
capped at one record per disk flush.

In ``async`` mode appenders return at once; the writer flushes every
``flush_interval`` seconds, or sooner once 1 MiB waits. When more than
``max_buffer_bytes`` wait, appenders wait for the commit like durable ones
(back-pressure instead of unbounded memory).

A failed write or sync fails only the records of that batch (with
:class:`~steward.core.BackendUnavailableError`): the segment is cut back to its
last synced size and sealed, and the next batch starts a new segment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from steward.core import BackendUnavailableError, new_id, utc_now
from steward.serving._predlog._errors import PredictionLogClosedError
from steward.serving._predlog._files import fsync_folder, sync_file, try_lock, write_all
from steward.serving._predlog._segment import (
    FORMAT_VERSION,
    OPEN_SUFFIX,
    SEALED_SUFFIX,
    STAGING_SUFFIX,
    SegmentHeader,
    encode_header,
)

__all__ = ["Batch", "GroupCommitWriter", "Mode", "WriterStats"]

Mode = Literal["durable", "async"]
_FLUSH_BYTES = 1024 * 1024
_log = logging.getLogger("steward.serving.predlog")


@dataclass
class WriterStats:
    """Counters of one writer since it started (for metrics and benchmarks)."""

    records: int = 0
    batches: int = 0
    bytes: int = 0
    segments_sealed: int = 0
    failed_records: int = 0
    last_error: str | None = None


class Batch:
    """Frames committed together, and the callers waiting for them."""

    __slots__ = ("done", "error", "frames", "futures", "nbytes", "waiters")

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.nbytes = 0
        self.waiters = 0
        self.done = threading.Event()
        self.error: BackendUnavailableError | None = None
        self.futures: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def finish(self, error: BackendUnavailableError | None) -> None:
        """Record the outcome and wake every waiter, threads and event loops alike."""
        self.error = error
        self.done.set()
        # One wake-up per event loop, not per waiter: a group commit of 64 requests
        # from one worker costs its loop one call instead of 64.
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for loop, future in self.futures:
            by_loop.setdefault(loop, []).append(future)
        for loop, futures in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody awaits
                loop.call_soon_threadsafe(_settle, futures, error)

    def raise_error(self) -> None:
        """Raise the batch's failure in the calling thread, if it failed."""
        if self.error is not None:
            raise type(self.error)(*self.error.args)


def _settle(futures: list[asyncio.Future[None]], error: BackendUnavailableError | None) -> None:
    for future in futures:
        if future.done():  # the awaiting task was cancelled
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(type(error)(*error.args))


class _ActiveSegment:
    """The segment being written: created with its header synced, locked while open."""

    def __init__(self, directory: Path, worker: str) -> None:
        self.segment_id = new_id()
        self.path = directory / f"{worker}.{self.segment_id}{OPEN_SUFFIX}"
        header = encode_header(
            SegmentHeader(
                format=FORMAT_VERSION, worker=worker, segment=self.segment_id, created=utc_now()
            )
        )
        # Created under a name recovery does not look at, and renamed to ``.open`` only
        # once locked with its header synced: a recovering process that saw the bare
        # ``.open`` file before the lock was taken would remove it as abandoned.
        staging = self.path.with_name(self.path.name + STAGING_SUFFIX)
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(staging, flags, 0o640)
        try:
            if not try_lock(fd):  # pragma: no cover - a fresh name nobody else opens
                raise OSError(f"could not lock the new segment {staging}")
            write_all(fd, header, 0)
            sync_file(fd)
            os.replace(staging, self.path)  # the lock stays with the file
            fsync_folder(directory)
        except BaseException:
            os.close(fd)
            staging.unlink(missing_ok=True)
            self.path.unlink(missing_ok=True)
            raise
        self.fd = fd
        self.size = len(header)
        self.records = 0
        self.opened = time.monotonic()

    def append(self, data: bytes) -> None:
        write_all(self.fd, data, self.size)
        self.size += len(data)
        sync_file(self.fd)

    def cut_back(self, size: int) -> None:
        os.ftruncate(self.fd, size)
        sync_file(self.fd)
        self.size = size

    def seal(self) -> Path:
        """Rename to ``.seg`` (everything in it is already synced), then release the lock."""
        sealed = self.path.with_suffix(SEALED_SUFFIX)
        try:
            os.replace(self.path, sealed)
            fsync_folder(self.path.parent)
        finally:
            os.close(self.fd)
        return sealed

    def discard(self) -> None:
        os.close(self.fd)
        self.path.unlink(missing_ok=True)
        fsync_folder(self.path.parent)


class GroupCommitWriter:
    """Appends frames to segments in ``directory`` from many threads through one writer thread.

    Args:
        directory: the segment folder (must exist).
        worker: this writer's id, the first part of its segment names.
        mode: ``"durable"`` (callers wait for the sync) or ``"async"``.
        segment_max_bytes: seal the segment once it is this large.
        segment_max_age: seal a segment this many seconds after its first record.
        flush_interval: in async mode, the longest a record waits before it is written.
        max_buffer_bytes: in async mode, callers wait once this much is pending.
        on_sealed: called in the writer thread with each sealed segment's path.
    """

    def __init__(
        self,
        directory: Path,
        *,
        worker: str,
        mode: Mode,
        segment_max_bytes: int,
        segment_max_age: float,
        flush_interval: float,
        max_buffer_bytes: int = 64 * 1024 * 1024,
        on_sealed: Callable[[Path], None] | None = None,
    ) -> None:
        self.directory = directory
        self.worker = worker
        self.durable = mode == "durable"
        self._max_bytes = segment_max_bytes
        self._max_age = segment_max_age
        self._flush_interval = flush_interval
        self._max_buffer = max_buffer_bytes
        self._on_sealed = on_sealed
        self.stats = WriterStats()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # only the writer thread waits on it
        self._rotated = threading.Condition(self._lock)
        self._batch = Batch()
        self._inflight: Batch | None = None
        self._segment: _ActiveSegment | None = None
        self._closed = False
        self._flush_requested = False
        self._rotate_requested = False
        self._last_flush = time.monotonic()
        self._thread = threading.Thread(
            target=self._run, name=f"steward-predlog-{worker}", daemon=True
        )
        self._thread.start()

    # -- appenders ---------------------------------------------------------------------------

    def submit(
        self,
        frame: bytes,
        future: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None,
        *,
        durable: bool | None = None,
    ) -> Batch | None:
        """Queue ``frame``; return the batch to wait on, or ``None`` when nobody need wait.

        ``durable`` overrides the writer's mode for this frame: ``True`` waits for the
        sync (and makes the writer flush now), ``False`` does not wait.

        Raises:
            PredictionLogClosedError: the writer was closed.
        """
        with self._lock:
            if self._closed:
                raise PredictionLogClosedError(
                    f"the prediction log in {self.directory} is closed; open a new PredictionLog"
                )
            batch = self._batch
            batch.frames.append(frame)
            batch.nbytes += len(frame)
            inflight = self._inflight.nbytes if self._inflight is not None else 0
            wait = (self.durable if durable is None else durable) or (
                batch.nbytes + inflight > self._max_buffer
            )
            if wait:
                batch.waiters += 1
                if future is not None:
                    batch.futures.append(future)
                self._wake.notify()
            elif len(batch.frames) == 1 or batch.nbytes >= _FLUSH_BYTES:
                self._wake.notify()  # start the flush timer, or flush a full buffer now
        return batch if wait else None

    def flush(self) -> None:
        """Wait until everything submitted so far is on disk.

        Raises:
            BackendUnavailableError: a batch that held some of those records failed.
        """
        with self._lock:
            pending = [b for b in (self._inflight, self._batch) if b is not None and b.frames]
            self._flush_requested = True
            self._wake.notify()
        for batch in pending:
            batch.done.wait()
        for batch in pending:
            batch.raise_error()

    def rotate(self) -> None:
        """Seal the current segment now (after writing what is pending), so it can be compacted."""
        with self._lock:
            self._rotate_requested = True
            self._wake.notify()
            while self._rotate_requested and self._thread.is_alive():
                self._rotated.wait(0.05)

    def close(self) -> None:
        """Write what is pending, seal the segment and stop the writer thread (idempotent)."""
        with self._lock:
            self._closed = True
            self._wake.notify()
        self._thread.join()

    # -- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    self._wait_for_work()
                    batch, rotate, stopping = self._batch, self._rotate_requested, self._closed
                    if batch.frames:
                        self._batch, self._inflight = Batch(), batch
                    self._flush_requested = False
                if batch.frames:
                    self._commit(batch)
                self._seal_if_due(force=rotate or stopping)
                with self._lock:
                    self._inflight = None
                    if rotate:
                        self._rotate_requested = False
                        self._rotated.notify_all()
                    if stopping and not self._batch.frames:
                        return
        except BaseException as exc:  # a bug here must fail the waiters, not hang them
            _log.exception("prediction log writer for %s stopped", self.directory)
            self._fail_everything(exc)
            raise

    def _wait_for_work(self) -> None:
        while not (self._closed or self._rotate_requested):
            now = time.monotonic()
            timeout: float | None = None
            batch = self._batch
            if batch.frames:
                if (
                    self.durable
                    or batch.waiters
                    or self._flush_requested
                    or batch.nbytes >= _FLUSH_BYTES
                ):
                    return
                timeout = self._last_flush + self._flush_interval - now
            segment = self._segment
            if segment is not None and segment.records:
                age_left = segment.opened + self._max_age - now
                timeout = age_left if timeout is None else min(timeout, age_left)
            if timeout is not None and timeout <= 0:
                return
            self._wake.wait(timeout)

    def _commit(self, batch: Batch) -> None:
        data = b"".join(batch.frames)
        error: BackendUnavailableError | None = None
        good = 0
        try:
            if self._segment is None:
                self._segment = _ActiveSegment(self.directory, self.worker)
            good = self._segment.size
            self._segment.append(data)
            self._segment.records += len(batch.frames)
            self.stats.records += len(batch.frames)
            self.stats.batches += 1
            self.stats.bytes += len(data)
        except OSError as exc:
            error = BackendUnavailableError(
                f"the prediction log could not write {len(batch.frames)} records in "
                f"{self.directory}: {exc.strerror or exc}; they were not logged. Check free "
                "space and permissions on that folder"
            )
            self.stats.failed_records += len(batch.frames)
            self.stats.last_error = str(error)
            _log.error("%s", error)
            self._abandon_segment(good)
        self._last_flush = time.monotonic()
        batch.finish(error)

    def _abandon_segment(self, good: int) -> None:
        # Keep what was synced before the failure; start the next batch in a new segment.
        segment, self._segment = self._segment, None
        if segment is None:
            return
        try:
            segment.cut_back(good)
            self._seal(segment)
        except OSError:
            # Left as .open and unlocked once closed: the next recovery cuts its tail.
            with contextlib.suppress(OSError):
                os.close(segment.fd)

    def _seal_if_due(self, *, force: bool) -> None:
        segment = self._segment
        if segment is None:
            return
        due = segment.size >= self._max_bytes or (
            segment.records and time.monotonic() - segment.opened >= self._max_age
        )
        if force or due:
            self._segment = None
            self._seal(segment)

    def _seal(self, segment: _ActiveSegment) -> None:
        try:
            if not segment.records:
                segment.discard()
                return
            path = segment.seal()
        except OSError as exc:  # left as .open: the next recovery seals it
            self.stats.last_error = f"could not seal {segment.path}: {exc}"
            _log.error("prediction log: %s", self.stats.last_error)
            return
        self.stats.segments_sealed += 1
        if self._on_sealed is not None:
            try:
                self._on_sealed(path)
            except Exception:  # a failing hook must not stop the log
                _log.exception("prediction log: on_sealed hook failed for %s", path)

    def _fail_everything(self, exc: BaseException) -> None:
        error = PredictionLogClosedError(
            f"the prediction log writer for {self.directory} stopped ({exc!r}); records were "
            "not logged. Restart the process; recovery keeps everything already acknowledged"
        )
        with self._lock:
            self._closed = True
            batches = [b for b in (self._inflight, self._batch) if b is not None]
        for batch in batches:
            if not batch.done.is_set():
                batch.finish(error)
