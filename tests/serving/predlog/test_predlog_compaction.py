"""Compaction into Parquet partitions: layout, idempotence, and a crash at every step."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from tests.serving.predlog._factories import T0, count, feedback, prediction, request_ids

from steward.serving._predlog import (
    PartitionStore,
    PredictionArchive,
    PredictionLog,
    open_partition_store,
)
from steward.serving._predlog import _compaction as compaction_module


class Crash(Exception):
    """Stands for the process dying at this point."""


def _fill(log: PredictionLog) -> tuple[list[str], list[str]]:
    """Log predictions of two deployments over two days, and feedback; seal them."""
    ids = []
    for i in range(30):
        deployment = "fraud" if i % 3 else "credit"
        ts = T0 + timedelta(hours=i)  # from 12:00 on day one into day two
        log.append(prediction(i, deployment=deployment, ts=ts))
        ids.append(f"req-{i:06d}")
    for i in range(0, 30, 5):
        log.append(feedback(i))
    log.rotate()
    return ids, [f"req-{i:06d}" for i in range(0, 30, 5)]


def _names(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_compaction_writes_partitions_by_deployment_and_date(
    open_log: Callable[..., PredictionLog], tmp_path: Path, log_dir: Path
) -> None:
    log = open_log()
    ids, feedback_ids = _fill(log)
    report = log.compact()
    assert (report.segments, report.records, report.parts) == (1, 36, 5)
    assert list(log_dir.glob("*.seg")) == []
    root = tmp_path / "parquet"
    stem = json.loads(next(root.glob("manifests/*.json")).read_text())["segment"]
    assert [n for n in _names(root) if not n.startswith("tmp/")] == sorted(
        [
            f"deployment=credit/date=2026-03-01/part-{stem}.parquet",
            f"deployment=credit/date=2026-03-02/part-{stem}.parquet",
            f"deployment=fraud/date=2026-03-01/part-{stem}.parquet",
            f"deployment=fraud/date=2026-03-02/part-{stem}.parquet",
            f"feedback/date=2026-03-02/part-{stem}.parquet",
            f"manifests/{stem}.json",
        ]
    )
    part = pq.read_table(root / f"deployment=credit/date=2026-03-01/part-{stem}.parquet")
    assert set(part.column("deployment").to_pylist()) == {"credit"}
    assert request_ids(log) == ids
    assert request_ids(log, "feedback") == feedback_ids
    manifest = json.loads((root / f"manifests/{stem}.json").read_text())
    assert manifest["records"] == 36
    assert sum(p["rows"] for p in manifest["parts"]) == 36


def test_compaction_twice_changes_nothing(
    open_log: Callable[..., PredictionLog], tmp_path: Path
) -> None:
    log = open_log()
    ids, _ = _fill(log)
    log.compact()
    before = _names(tmp_path / "parquet")
    again = log.compact()
    assert (again.segments, again.records, again.finished_earlier) == (0, 0, 0)
    assert _names(tmp_path / "parquet") == before
    assert request_ids(log) == ids


def _crash_at_part(k: int) -> Callable[[pytest.MonkeyPatch], None]:
    def install(monkeypatch: pytest.MonkeyPatch) -> None:
        real = PartitionStore.write_table
        calls = {"n": 0}

        def write_table(self: PartitionStore, name: str, table: object) -> None:
            if calls["n"] == k:
                raise Crash(f"before part {k}")
            calls["n"] += 1
            real(self, name, table)  # type: ignore[arg-type]

        monkeypatch.setattr(PartitionStore, "write_table", write_table)

    return install


def _crash_before_manifest(monkeypatch: pytest.MonkeyPatch) -> None:
    real = PartitionStore.write_bytes

    def write_bytes(self: PartitionStore, name: str, data: bytes) -> None:
        if name.startswith("manifests/"):
            raise Crash("before the manifest")
        real(self, name, data)

    monkeypatch.setattr(PartitionStore, "write_bytes", write_bytes)


def _crash_before_delete(monkeypatch: pytest.MonkeyPatch) -> None:
    def remove_segment(path: Path) -> None:
        raise Crash("before deleting the segment")

    monkeypatch.setattr(compaction_module, "remove_segment", remove_segment)


@pytest.mark.parametrize(
    "crash",
    [
        pytest.param(_crash_at_part(0), id="before-first-part"),
        pytest.param(_crash_at_part(2), id="after-two-parts"),
        pytest.param(_crash_at_part(4), id="before-last-part"),
        pytest.param(_crash_before_manifest, id="before-manifest"),
        pytest.param(_crash_before_delete, id="before-segment-delete"),
    ],
)
def test_a_crash_anywhere_in_compaction_neither_loses_nor_duplicates(
    open_log: Callable[..., PredictionLog],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    log_dir: Path,
    crash: Callable[[pytest.MonkeyPatch], None],
) -> None:
    log = open_log()
    ids, feedback_ids = _fill(log)
    with monkeypatch.context() as patch:
        crash(patch)
        with pytest.raises(Crash):
            log.compact()
    # Between the crash and the next compaction, every row is visible exactly once.
    assert request_ids(log) == ids
    assert request_ids(log, "feedback") == feedback_ids

    report = log.compact()
    assert report.segments + report.finished_earlier == 1
    assert list(log_dir.glob("*.seg")) == []
    assert request_ids(log) == ids
    assert request_ids(log, "feedback") == feedback_ids
    assert log.archive.verify().ok
    assert len(list((tmp_path / "parquet").glob("deployment=*/date=*/*.parquet"))) == 4


def test_compaction_recovers_dead_writers_segments_first(
    open_log: Callable[..., PredictionLog], log_dir: Path, tmp_path: Path
) -> None:
    log = open_log()
    for i in range(5):
        log.append(prediction(i))
    log.close()
    (segment,) = log_dir.glob("*.seg")
    opened = segment.rename(segment.with_suffix(".open"))
    opened.write_bytes(opened.read_bytes() + b"\x00\x01")
    archive = PredictionArchive(log_dir, open_partition_store(str(tmp_path / "parquet")))
    report = archive.compact()
    assert report.recovery.dropped_bytes == 2
    assert report.segments == 1 and report.records == 5
    assert request_ids(log) == [f"req-{i:06d}" for i in range(5)]


def test_a_second_compaction_at_once_returns_busy(
    open_log: Callable[..., PredictionLog], log_dir: Path
) -> None:
    log = open_log()
    _fill(log)
    fd = os.open(log_dir / ".compact.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        report = log.compact()
        assert report.busy and report.segments == 0
        assert len(list(log_dir.glob("*.seg"))) == 1
    finally:
        os.close(fd)
    assert log.compact().segments == 1


def test_compacted_rows_keep_every_column(open_log: Callable[..., PredictionLog]) -> None:
    log = open_log()
    record = prediction(7, test=True, fallback=True, shadow=True, error="timeout", caller=None)
    log.append(record)
    fresh = log.query("SELECT * FROM predictions").to_pylist()
    log.rotate()
    log.compact()
    compacted = log.query("SELECT * FROM predictions").to_pylist()
    assert fresh == compacted
    (row,) = compacted
    assert row["ts"] == record.ts
    assert (row["test"], row["fallback"], row["shadow"], row["error"]) == (
        True,
        True,
        True,
        "timeout",
    )
    assert row["caller"] is None
    assert json.loads(row["inputs"]) == record.inputs
    assert json.loads(row["features"]) == record.features
    assert count(log) == 1


def test_verify_names_parts_whose_segment_and_manifest_are_both_gone(
    open_log: Callable[..., PredictionLog], monkeypatch: pytest.MonkeyPatch, log_dir: Path
) -> None:
    log = open_log()
    _fill(log)
    with monkeypatch.context() as patch:
        _crash_before_manifest(patch)
        with pytest.raises(Crash):
            log.compact()
    assert log.archive.verify().ok  # parts without a manifest, but their segment is there
    for segment in log_dir.glob("*.seg"):
        segment.unlink()  # an operator deletes the segment by hand
    report = log.archive.verify()
    assert len(report.problems) == 5
    assert all("neither a manifest nor its segment" in p for p in report.problems)
