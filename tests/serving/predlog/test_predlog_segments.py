"""Segment format, torn tails and corruption: what recovery cuts, and what it refuses to."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tests.serving.predlog._factories import count, prediction, request_ids

from steward.core import IntegrityError
from steward.serving._predlog import (
    PredictionArchive,
    PredictionLog,
    SegmentCorruptError,
    open_partition_store,
)
from steward.serving._predlog._recovery import recover_segments
from steward.serving._predlog._segment import read_segment, scan_segment

N = 10


def _sealed_segment(open_log: Callable[..., PredictionLog], log_dir: Path) -> Path:
    log = open_log()
    for i in range(N):
        log.append(prediction(i))
    log.close()
    (segment,) = log_dir.glob("*.seg")
    return segment


def _as_dead_writers_segment(segment: Path) -> Path:
    """Make a sealed segment look like one a killed writer left open."""
    return segment.rename(segment.with_suffix(".open"))


def _offsets(segment: Path) -> list[int]:
    return scan_segment(segment, "sealed").offsets


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def test_sealed_segment_reads_back_every_record(
    open_log: Callable[..., PredictionLog], log_dir: Path
) -> None:
    segment = _sealed_segment(open_log, log_dir)
    assert [r.request_id for r in read_segment(segment)] == [f"req-{i:06d}" for i in range(N)]


@pytest.mark.parametrize(
    "tear",
    [
        pytest.param(lambda data, last: data[: last + 20], id="cut-inside-last-frame"),
        pytest.param(lambda data, last: data[: last + 5], id="cut-inside-frame-header"),
        pytest.param(lambda data, last: data + b"\x07\x00\x00", id="stray-bytes"),
        pytest.param(lambda data, last: data + bytes(4096), id="zeroed-tail"),
        pytest.param(
            lambda data, last: data[:-1] + bytes([data[-1] ^ 1]), id="last-frame-checksum"
        ),
    ],
)
def test_recovery_cuts_a_torn_tail_and_reports_the_bytes(
    open_log: Callable[..., PredictionLog],
    log_dir: Path,
    tear: Callable[[bytes, int], bytes],
) -> None:
    segment = _sealed_segment(open_log, log_dir)
    last = _offsets(segment)[-1]
    original = segment.read_bytes()
    torn = tear(original, last)
    opened = _as_dead_writers_segment(segment)
    opened.write_bytes(torn)

    log = open_log(worker_id="after")
    (recovered,) = log.recovery.segments
    assert recovered.path == segment  # sealed under its own name
    assert recovered.dropped_bytes == len(torn) - segment.stat().st_size
    assert recovered.dropped_bytes > 0
    kept = read_segment(segment)
    assert [r.request_id for r in kept] == [f"req-{i:06d}" for i in range(len(kept))]
    assert len(kept) in (N - 1, N)  # the torn frame itself, never an earlier one
    assert not log.recovery.corrupt
    assert count(log) == len(kept)


def test_recovery_refuses_to_cut_when_a_good_frame_follows_the_damage(
    open_log: Callable[..., PredictionLog], log_dir: Path
) -> None:
    segment = _sealed_segment(open_log, log_dir)
    third = _offsets(segment)[3]
    opened = _as_dead_writers_segment(segment)
    _flip(opened, third + 12)
    before = opened.read_bytes()

    log = open_log(worker_id="after")
    (problem,) = log.recovery.corrupt
    assert problem.path == opened
    assert problem.offset == third
    assert "valid frame follows" in problem.reason
    assert opened.read_bytes() == before  # acknowledged data is never cut
    assert not log.recovery.segments
    # The frames before the damage stay queryable.
    assert request_ids(log) == [f"req-{i:06d}" for i in range(3)]


def test_corruption_in_a_sealed_segment_names_file_and_offset(
    open_log: Callable[..., PredictionLog], log_dir: Path
) -> None:
    segment = _sealed_segment(open_log, log_dir)
    fifth = _offsets(segment)[5]
    _flip(segment, fifth + 30)

    with pytest.raises(SegmentCorruptError) as info:
        read_segment(segment)
    assert info.value.path == segment
    assert info.value.offset == fifth
    assert str(segment) in str(info.value)
    assert f"byte {fifth}" in str(info.value)
    assert isinstance(info.value, IntegrityError)

    log = open_log(worker_id="after")
    report = log.compact()
    assert [c.path for c in report.corrupt] == [segment]
    assert segment.exists()  # left for an operator, never deleted
    verify = log.archive.verify()
    assert not verify.ok
    assert any(str(segment) in p and str(fifth) in p for p in verify.problems)


def test_a_sealed_segment_with_a_bad_header_is_corrupt_at_byte_zero(
    open_log: Callable[..., PredictionLog], log_dir: Path
) -> None:
    segment = _sealed_segment(open_log, log_dir)
    _flip(segment, 2)
    with pytest.raises(SegmentCorruptError, match="at byte 0") as info:
        read_segment(segment)
    assert "does not start with" in info.value.reason


def test_a_sealed_segment_cut_short_is_corrupt(
    open_log: Callable[..., PredictionLog], log_dir: Path
) -> None:
    segment = _sealed_segment(open_log, log_dir)
    segment.write_bytes(segment.read_bytes()[:-3])
    with pytest.raises(SegmentCorruptError, match="cut short"):
        read_segment(segment)


@pytest.mark.parametrize("keep", [0, 9, 20])
def test_recovery_removes_an_open_segment_whose_header_never_landed(
    open_log: Callable[..., PredictionLog], log_dir: Path, keep: int
) -> None:
    segment = _sealed_segment(open_log, log_dir)
    header_end = _offsets(segment)[0]
    assert keep < header_end
    opened = _as_dead_writers_segment(segment)
    opened.write_bytes(opened.read_bytes()[:keep])

    report = recover_segments(log_dir)
    (recovered,) = report.segments
    assert (recovered.records, recovered.dropped_bytes) == (0, keep)
    assert not opened.exists() and not segment.exists()


def test_recovery_keeps_a_header_only_segment_out_of_the_way(
    open_log: Callable[..., PredictionLog], log_dir: Path
) -> None:
    segment = _sealed_segment(open_log, log_dir)
    header_end = _offsets(segment)[0]
    opened = _as_dead_writers_segment(segment)
    opened.write_bytes(opened.read_bytes()[:header_end])
    (recovered,) = recover_segments(log_dir).segments
    assert recovered.records == 0
    assert list(log_dir.glob("*.open")) == [] and list(log_dir.glob("*.seg")) == []


def test_recovery_leaves_a_live_writers_segment_alone(
    open_log: Callable[..., PredictionLog], log_dir: Path
) -> None:
    live = open_log(worker_id="live")
    live.append(prediction(1))
    (segment,) = log_dir.glob("live.*.open")
    size = segment.stat().st_size

    other = open_log(worker_id="other")
    assert other.recovery.segments == [] and other.recovery.corrupt == []
    assert segment.exists() and segment.stat().st_size == size
    verify = other.archive.verify()
    assert verify.ok and verify.records == 1
    live.append(prediction(2))  # still writing to it
    assert request_ids(other) == ["req-000001", "req-000002"]


def test_verify_reports_a_dead_writers_torn_tail_without_changing_it(
    open_log: Callable[..., PredictionLog], log_dir: Path, tmp_path: Path
) -> None:
    segment = _sealed_segment(open_log, log_dir)
    opened = _as_dead_writers_segment(segment)
    opened.write_bytes(opened.read_bytes() + b"\x01\x02\x03")
    size = opened.stat().st_size
    archive = PredictionArchive(log_dir, open_partition_store(str(tmp_path / "parquet")))
    report = archive.verify()
    assert report.ok
    assert (report.segments, report.records, report.torn_bytes) == (1, N, 3)
    assert opened.stat().st_size == size  # verify only reads
