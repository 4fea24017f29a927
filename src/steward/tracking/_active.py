"""A run being recorded: buffered metric logging with a bounded flush interval.

Metric values are kept in memory and written in one transaction per flush: when
``flush_every`` values are waiting, when the oldest has waited ``flush_interval``
seconds (a daemon thread checks), when the run ends, and at interpreter exit.
The run's start waits the same way (see ``_starts.py``) and is written with the
first of these, or with any other write. Params and tags are written at once, so
a conflicting param fails at the call.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import traceback
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from steward.core import ConflictError, InvalidInputError, PermissionDeniedError
from steward.tracking._models import Metric, RunStatus
from steward.tracking._starts import RunStart, hold_start, start_written
from steward.tracking._validation import (
    check_key,
    check_metric_value,
    check_step,
    check_timestamp,
)

if TYPE_CHECKING:
    from steward.tracking._service import TrackingService

__all__ = ["ActiveRun"]

_LIVE: weakref.WeakSet[ActiveRun] = weakref.WeakSet()
_EXIT_HOOK = False
_log = logging.getLogger("steward.tracking")


class ActiveRun:
    """Handle on a running run; use it as a context manager.

    Leaving the ``with`` block ends the run as finished, or as failed with the
    exception recorded when the block raises. Making a handle needs
    ``models:write``, checked again once per flush (never per value).

    Example:
        >>> with tracking.start_run("fraud", params={"lr": 0.1}) as run:  # doctest: +SKIP
        ...     run.log_metric("auc", 0.91)
    """

    def __init__(
        self,
        service: TrackingService,
        run_id: str,
        *,
        flush_every: int = 5_000,
        flush_interval: float = 2.0,
        start: RunStart | None = None,
    ) -> None:
        service._authorize_run_write(run_id)
        self._service = service
        self.id = run_id
        self._flush_every = flush_every
        self._flush_interval = flush_interval
        self._lock = threading.RLock()
        # Held while anything of the run is written, its start included; re-entered
        # when a flush or the end writes through the service.
        self._write_lock = threading.RLock()
        self._buffer: list[tuple[str, float, int, int]] = []
        self._oldest: float | None = None
        self._next_step: dict[str, int] = {}
        self._params: dict[str, Any] = {}
        self._checked_keys: set[str] = set()
        self._ended = False
        self._refused = False  # a flush was denied: the background flusher leaves the run be
        self._started = time.perf_counter()
        self._cpu_started = time.process_time()
        self._pid = os.getpid()
        self._start = start  # the run's creation, while it waits in memory
        self._start_since = time.monotonic()
        _LIVE.add(self)
        _register_exit_hook()
        if start is not None:
            hold_start(self)
            _FLUSHER.ensure_running()

    def __repr__(self) -> str:
        return f"ActiveRun(id={self.id!r})"

    # -- logging -----------------------------------------------------------

    def log_metric(
        self, key: str, value: float, *, step: int | None = None, timestamp_ms: int | None = None
    ) -> None:
        """Buffer one metric value; ``step`` defaults to the next step of that key.

        Raises:
            InvalidInputError: the key is malformed or the value not a finite number.
        """
        self._append([(key, value)], step, timestamp_ms)

    def log_metrics(
        self,
        values: Mapping[str, float],
        *,
        step: int | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        """Buffer several metrics at one step (checked all before any is kept)."""
        self._append(list(values.items()), step, timestamp_ms)

    def log_batch(
        self,
        metrics: Iterable[Metric | tuple[str, float, int]] = (),
        *,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Log many metric values (``Metric`` or ``(key, value, step)``), params and tags."""
        now = self._service.now_ms()
        rows: list[tuple[str, float, int, int]] = []
        for item in metrics:
            if isinstance(item, Metric):
                key, value, step, ts = item.key, item.value, item.step, item.timestamp_ms
            elif isinstance(item, tuple | list) and len(item) == 3:
                key, value, step = item
                ts = now
            else:
                raise InvalidInputError(
                    f"a metric entry must be a Metric or a (key, value, step) tuple, got {item!r}"
                )
            self._key(key)
            rows.append(
                (
                    key,
                    check_metric_value(key, value),
                    check_step(key, step),
                    check_timestamp(key, ts),
                )
            )
        if params:
            self.log_params(params)
        if tags:
            self.set_tags(tags)
        self._extend(rows)

    def _append(
        self, items: list[tuple[str, Any]], step: int | None, timestamp_ms: int | None
    ) -> None:
        if not items:
            return
        for key, _ in items:
            self._key(key)
        label = items[0][0]  # step and time are shared: errors name the first key
        ts = (
            self._service.now_ms() if timestamp_ms is None else check_timestamp(label, timestamp_ms)
        )
        if step is not None:
            step = check_step(label, step)
        rows = []
        for key, value in items:
            number = check_metric_value(key, value)
            with self._lock:
                at = self._next_step.get(key, 0) if step is None else step
                self._next_step[key] = max(self._next_step.get(key, 0), at + 1)
            rows.append((key, number, at, ts))
        self._extend(rows)

    def _key(self, key: str) -> str:
        if type(key) is not str or key not in self._checked_keys:  # checked once per run and key
            check_key("metric", key)
            self._checked_keys.add(key)
        return key

    def _extend(self, rows: list[tuple[str, float, int, int]]) -> None:
        if not rows:
            return
        with self._lock:
            self._check_open()
            self._buffer.extend(rows)
            if self._oldest is None:
                self._oldest = time.monotonic()
                _FLUSHER.ensure_running()
            full = len(self._buffer) >= self._flush_every
        if full:
            self.flush()

    def log_param(self, key: str, value: Any) -> None:
        """Record a param (str, int, float or bool); immutable once logged.

        Raises:
            ConflictError: the param was logged before with a different value.
        """
        self.log_params({key: value})

    def log_params(self, values: Mapping[str, Any]) -> None:
        """Record several params in one transaction (all or none)."""
        self._check_open()
        for key, value in values.items():
            if key in self._params and self._params[key] != value:
                raise ConflictError(
                    f"param {key!r} of run {self.id} is already {self._params[key]!r}; "
                    f"params are immutable, cannot set {value!r}"
                )
        self._service._log_params(self.id, values)
        self._params.update(values)

    def set_tag(self, key: str, value: str) -> None:
        """Set a tag (tags are mutable)."""
        self.set_tags({key: value})

    def set_tags(self, values: Mapping[str, str]) -> None:
        """Set several tags in one transaction."""
        self._service._set_tags(self.id, values)

    def log_artifact(self, path: str | os.PathLike[str], *, name: str | None = None) -> list[str]:
        """Store a file or a folder's files under the run; returns the stored logical paths."""
        return self._service.log_artifact(self.id, Path(path), name=name)

    def log_dataset(self, source: Any, *, name: str, role: str = "train") -> Any:
        """Fingerprint and profile a dataset and link it to this run with a role."""
        return self._service.log_dataset(self.id, source, name=name, role=role)

    def note(self, text: str) -> None:
        """Append a note to the run's notes."""
        self._service.add_note(self.id, text)

    # -- flushing and ending -----------------------------------------------

    def flush(self) -> int:
        """Write buffered metric values (and the run's start) now; returns how many values."""
        with self._write_lock:  # one write at a time, so end() never races a flush
            with self._lock:
                rows, self._buffer, self._oldest = self._buffer, [], None
            if rows or self._start is not None:
                try:
                    self._service._write_metrics(self.id, rows)
                except BaseException:
                    with self._lock:  # keep them for the next attempt: nothing logged is lost
                        if rows:
                            self._buffer[:0] = rows
                            self._oldest = self._oldest or time.monotonic()
                        self._start_since = time.monotonic()  # a start alone: retried later
                    raise
        return len(rows)

    def _write_start(self) -> None:
        """Write the run's start now, alone, when it still waits in memory."""
        with self._write_lock:
            if self._start is not None:
                self._service._write_metrics(self.id, [])

    def _start_committed(self) -> None:
        """Called under the write lock once the transaction holding the start committed."""
        self._start = None
        start_written(self.id)

    def _due(self) -> bool:
        with self._lock:
            if self._refused:
                return False
            waiting = [self._start_since] if self._start is not None else []
            if self._oldest is not None:
                waiting.append(self._oldest)
        return bool(waiting) and time.monotonic() - min(waiting) >= self._flush_interval

    def end(
        self, status: RunStatus | str = RunStatus.FINISHED, *, error: str | None = None
    ) -> None:
        """Flush and end the run with a status (ending twice is harmless)."""
        status = RunStatus(status)
        if status is RunStatus.RUNNING:
            raise InvalidInputError("a run cannot be ended with status 'running'")
        with self._write_lock:
            with self._lock:
                if self._ended:
                    return
                # Values stay buffered until the end is committed: a failed end loses
                # nothing and can be retried (by the caller or the exit hook).
                rows = list(self._buffer)
            self._service._end_run(
                self.id,
                status,
                rows=rows,
                error=error,
                wall_seconds=time.perf_counter() - self._started,
                cpu_seconds=time.process_time() - self._cpu_started,
            )
            with self._lock:
                self._ended = True
                late, self._buffer, self._oldest = self._buffer[len(rows) :], [], None
            if late:  # logged by another thread while the end was being written
                self._service._write_metrics(self.id, late)

    def _check_open(self) -> None:
        if self._ended:
            raise ConflictError(f"run {self.id} has ended; start a new run to log more")

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.end(RunStatus.FINISHED)
        elif isinstance(exc, KeyboardInterrupt):
            self.end(RunStatus.KILLED, error="KeyboardInterrupt")
        else:
            detail = "".join(traceback.format_exception(exc_type, exc, tb))[-4000:]
            self.end(RunStatus.FAILED, error=detail)


class _Flusher:
    """One daemon thread per process that flushes every live run whose values are due."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def ensure_running(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="steward-metric-flusher", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(_TICK)
            for run in list(_LIVE):
                if run._ended or run._pid != os.getpid() or not run._due():
                    continue  # a forked child leaves its parent's runs to the parent
                try:
                    run.flush()
                except PermissionDeniedError:  # audited once; retrying would only repeat it
                    run._refused = True
                    _log.warning("flushing metrics of run %s was denied", run.id, exc_info=True)
                except Exception:  # values stay buffered; retried next tick or at end
                    _log.warning(
                        "flushing metrics of run %s failed; will retry", run.id, exc_info=True
                    )


_TICK = 0.25  # seconds between checks; a value waits at most flush_interval + _TICK
_FLUSHER = _Flusher()


def _flush_all_at_exit() -> None:
    for run in list(_LIVE):
        if not run._ended and run._pid == os.getpid():  # a forked child leaves them alone
            try:
                run.end(RunStatus.FINISHED)
            except Exception:
                _log.error("could not end run %s at exit", run.id, exc_info=True)


def _register_exit_hook() -> None:
    global _EXIT_HOOK
    if not _EXIT_HOOK:
        atexit.register(_flush_all_at_exit)
        _EXIT_HOOK = True
