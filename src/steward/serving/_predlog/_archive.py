"""The read and maintenance side of the log: compact, query, verify, tail, purge.

:class:`PredictionArchive` needs no writer: the CLI, a background worker or a
monitoring job opens one on the same folders the gateway writes.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa

from steward.core import InvalidInputError
from steward.serving._predlog._compaction import CompactionReport, Progress, compact_segments
from steward.serving._predlog._errors import SegmentCorruptError
from steward.serving._predlog._files import try_lock
from steward.serving._predlog._partitions import (
    PartFile,
    PartitionStore,
    manifest_name,
    open_partition_store,
)
from steward.serving._predlog._query import open_views, run_query
from steward.serving._predlog._records import check_deployment_name
from steward.serving._predlog._recovery import RecoveryReport, recover_segments
from steward.serving._predlog._segment import OPEN_SUFFIX, SEALED_SUFFIX, SegmentName, scan_segment
from steward.serving._predlog._settings import PredictionLogSettings

__all__ = ["PredictionArchive", "PurgeReport", "VerifyReport"]

Held = Callable[[str, date], bool]


@dataclass
class VerifyReport:
    """What ``verify`` found.

    Attributes:
        segments: segments checked (sealed and open).
        records: records in them that verified.
        parts: Parquet parts whose footer was read.
        torn_bytes: bytes of torn tails in segments of dead writers (cut at next recovery).
        problems: one line per damaged file, naming it (and the byte offset).
    """

    segments: int = 0
    records: int = 0
    parts: int = 0
    torn_bytes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing is damaged."""
        return not self.problems


@dataclass
class PurgeReport:
    """What a purge deleted, and what a legal hold kept.

    Attributes:
        deleted: ``(deployment, date)`` of each partition deleted.
        held: ``(deployment, date)`` of each partition kept because it is held.
        files: Parquet files deleted.
        bytes: their size.
    """

    deleted: list[tuple[str, date]] = field(default_factory=list)
    held: list[tuple[str, date]] = field(default_factory=list)
    files: int = 0
    bytes: int = 0


class PredictionArchive:
    """Compacted partitions plus live segments of one prediction log, for reading and upkeep.

    Args:
        directory: the segment folder the writers use.
        store: the predictions root (see :func:`open_partition_store`).
    """

    def __init__(self, directory: Path, store: PartitionStore) -> None:
        self.directory = directory
        self.store = store

    @classmethod
    def from_settings(cls, settings: PredictionLogSettings) -> PredictionArchive:
        """Open the archive of the folders that ``STEWARD_*`` settings name.

        Raises:
            ConfigurationError: ``STEWARD_PREDICTIONS_URI`` is malformed or unusable.
        """
        store = open_partition_store(
            settings.resolved_predictions_uri(), s3_endpoint_url=settings.s3_endpoint_url
        )
        return cls(settings.resolved_prediction_log_dir(), store)

    def recover(self) -> RecoveryReport:
        """Cut torn tails off segments of dead writers and seal them."""
        return recover_segments(self.directory)

    def compact(self, *, progress: Progress | None = None) -> CompactionReport:
        """Turn sealed segments into Parquet partitions (crash-safe, idempotent)."""
        return compact_segments(self.directory, self.store, progress=progress)

    def query(
        self, sql: str, params: Sequence[Any] | None = None, *, limit: int | None = None
    ) -> pa.Table:
        """Run DuckDB SQL over the ``predictions`` and ``feedback`` views; return Arrow.

        Example:
            >>> archive.query(  # doctest: +SKIP
            ...     "SELECT p.variant, avg(f.label_value) FROM predictions p "
            ...     "JOIN feedback f USING (request_id) GROUP BY 1"
            ... )

        Raises:
            InvalidInputError: the SQL fails; the message names the views and columns.
        """
        con = open_views(self.directory, self.store)
        try:
            return run_query(con, sql, params, limit=limit)
        finally:
            con.close()

    def tail(self, count: int = 20, *, deployment: str | None = None) -> pa.Table:
        """Return the newest ``count`` predictions (of one deployment), newest first.

        Raises:
            InvalidInputError: ``count`` is below 1.
        """
        if count < 1:
            raise InvalidInputError(f"count {count} must be at least 1")
        where, params = ("WHERE deployment = ?", [deployment]) if deployment else ("", [])
        return self.query(
            f"SELECT * FROM predictions {where} ORDER BY ts DESC, request_id DESC LIMIT {count}",
            params,
        )

    def partitions(self, before: date) -> list[tuple[str, date]]:
        """Return ``(deployment, date)`` of each compacted prediction partition before ``before``.

        Feedback partitions are left out; governance's retention plans over these.
        """
        found = {
            (part.deployment, part.day)
            for part in self.store.parts()
            if part.deployment is not None and part.day < before
        }
        return sorted(found)

    def purge(self, deployment: str, before: date, *, held: Held) -> PurgeReport:
        """Delete the deployment's partitions dated before ``before``, except held ones.

        Retention runs on compacted partitions: records still in segments are purged
        by a later run, once compacted (segments are sealed within their max age).

        Args:
            deployment: whose predictions to delete.
            before: partitions of earlier dates (UTC) are deleted.
            held: ``held(deployment, date)`` says whether a legal hold keeps that
                partition; governance supplies it.

        Raises:
            InvalidInputError: ``deployment`` is not a valid deployment name.
        """
        check_deployment_name(deployment)
        by_day: dict[date, list[PartFile]] = defaultdict(list)
        for part in self.store.parts():
            if part.deployment == deployment and part.day < before:
                by_day[part.day].append(part)
        report = PurgeReport()
        for day in sorted(by_day):
            if held(deployment, day):
                report.held.append((deployment, day))
                continue
            for part in by_day[day]:
                if self.store.delete(part.name):
                    report.files += 1
                    report.bytes += part.size
            report.deleted.append((deployment, day))
        return report

    def purge_feedback(self, before: date, *, held: Callable[[date], bool]) -> PurgeReport:
        """Delete feedback partitions dated before ``before``, except held ones."""
        report = PurgeReport()
        by_day: dict[date, list[PartFile]] = defaultdict(list)
        for part in self.store.parts():
            if part.is_feedback and part.day < before:
                by_day[part.day].append(part)
        for day in sorted(by_day):
            if held(day):
                report.held.append(("feedback", day))
                continue
            for part in by_day[day]:
                if self.store.delete(part.name):
                    report.files += 1
                    report.bytes += part.size
            report.deleted.append(("feedback", day))
        return report

    def verify(self) -> VerifyReport:
        """Check every segment frame by frame and every part's footer; change nothing."""
        report = VerifyReport()
        stems: set[str] = set()
        if self.directory.is_dir():
            for path in sorted(self.directory.iterdir()):
                name = SegmentName.parse(path.name)
                if name is not None:
                    stems.add(name.stem)
                    self._verify_segment(path, name, report)
        finished = set()
        for stem in self.store.manifests():
            raw = self.store.read_bytes(manifest_name(stem))
            try:
                json.loads(raw or b"")
            except ValueError:
                report.problems.append(f"manifest {manifest_name(stem)} is not valid JSON")
            else:
                finished.add(stem)
        for part in self.store.parts():
            report.parts += 1
            try:
                self.store.read_metadata(part)
            except (OSError, pa.ArrowException) as exc:
                report.problems.append(f"part {part.name} in {self.store.location}: {exc}")
            if part.stem not in finished and part.stem not in stems:
                report.problems.append(
                    f"part {part.name} has neither a manifest nor its segment {part.stem}"
                )
        return report

    def _verify_segment(self, path: Path, name: SegmentName, report: VerifyReport) -> None:
        if path.suffix not in (SEALED_SUFFIX, OPEN_SUFFIX):
            return
        try:
            if name.sealed:
                scan = scan_segment(path, "sealed")
            elif _writer_alive(path):
                scan = scan_segment(path, "live")
            else:
                scan = scan_segment(path, "recover")
                report.torn_bytes += scan.torn_bytes
        except SegmentCorruptError as exc:
            report.segments += 1
            report.problems.append(f"segment {exc.path} at byte {exc.offset}: {exc.reason}")
            return
        except FileNotFoundError:  # compacted or sealed while we looked
            return
        report.segments += 1
        report.records += len(scan.records)


def _writer_alive(path: Path) -> bool:
    """Whether a live writer holds the ``.open`` segment (its lock cannot be taken)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return False
    try:
        return not try_lock(fd)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
