"""The gateway's own compaction of its prediction log, every ``gateway_compact_interval_s``.

Each round compacts the sealed segments of the log folder into Parquet
partitions in a thread, so the event loop keeps serving. The segment a writer
is filling is never taken (compaction reads only sealed ones, and segments a
dead writer left open after recovery). Workers of one gateway share the
folder: compaction holds an exclusive ``flock`` on it, so when another worker's
round is running this one skips its turn (counted as ``busy``); the crash-safe
steps of compaction (parts, then manifest, then delete) mean a round cut short
loses and duplicates nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from steward.core import utc_now
from steward.serving._metrics import GatewayMetrics
from steward.serving._predlog import CompactionReport, PredictionArchive

__all__ = ["LogCompactor"]

_log = logging.getLogger("steward.serving.gateway")


class LogCompactor:
    """Compacts one prediction log folder on a timer, counting what it did.

    Args:
        archive: the log's archive (segment folder and Parquet root).
        interval_s: seconds between rounds; 0 turns the timer off (``run_once`` still works).
        metrics: the worker's metrics, where rounds, records and failures are counted.
    """

    def __init__(
        self, archive: PredictionArchive, *, interval_s: float, metrics: GatewayMetrics
    ) -> None:
        self.archive = archive
        self.interval_s = interval_s
        self.metrics = metrics
        self.last_compaction_at: datetime | None = None
        self.last_error: str | None = None
        self.rounds = 0
        self.records = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the timer in the running event loop (nothing when the interval is 0)."""
        if self.interval_s > 0 and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="steward-gateway-compact")

    async def close(self) -> None:
        """Stop the timer; a round in progress finishes in its thread."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.run_once()

    async def run_once(self) -> CompactionReport | None:
        """Compact now, off the event loop; return the report, or None when it failed.

        A failure (the Parquet root unreachable, say) is logged and counted; the
        segments stay and the next round retries them.
        """
        try:
            report = await asyncio.to_thread(self.archive.compact)
        except Exception as exc:  # any failure: keep serving, retry next round
            self.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            self.metrics.log_compactions.labels("failed").inc()
            _log.exception("prediction log compaction failed; the segments stay for next round")
            return None
        self._count(report)
        return report

    def _count(self, report: CompactionReport) -> None:
        if report.busy:
            self.metrics.log_compactions.labels("busy").inc()
            return
        outcome = "corrupt" if report.corrupt else "ok"
        self.metrics.log_compactions.labels(outcome).inc()
        self.metrics.log_compacted_records.inc(report.records)
        for problem in report.corrupt:
            _log.error("%s", problem)
        self.rounds += 1
        self.records += report.records
        self.last_compaction_at = utc_now()
        self.last_error = None

    def describe(self) -> dict[str, Any]:
        """Return this worker's compaction status, for the deployment status endpoint."""
        last = self.last_compaction_at
        return {
            "interval_s": self.interval_s,
            "last_compaction_at": None if last is None else last.isoformat(),
            "rounds": self.rounds,
            "records_compacted": self.records,
            "last_error": self.last_error,
        }
