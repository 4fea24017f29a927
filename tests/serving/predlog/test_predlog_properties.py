"""Property tests of the segment reader and the record encoding (hypothesis)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.serving.predlog._factories import prediction

from steward.serving._predlog import PredictionRecord, SegmentCorruptError
from steward.serving._predlog._records import decode_record, encode_record
from steward.serving._predlog._segment import (
    FORMAT_VERSION,
    SegmentHeader,
    SegmentScan,
    encode_frame,
    encode_header,
    scan_segment,
)
from steward.serving._predlog._tables import prediction_table

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _segment(count: int) -> tuple[bytes, list[str]]:
    header = encode_header(
        SegmentHeader(
            format=FORMAT_VERSION,
            worker="w",
            segment="0" * 32,
            created=datetime(2026, 1, 1, tzinfo=UTC),
        )
    )
    ids = [f"req-{i:06d}" for i in range(count)]
    frames = b"".join(encode_frame(encode_record(prediction(i))) for i in range(count))
    return header + frames, ids


SEGMENT, IDS = _segment(6)


def _scan(policy: str, data: bytes) -> SegmentScan | SegmentCorruptError:
    try:
        return scan_segment(Path("seg"), policy, data)  # type: ignore[arg-type]
    except SegmentCorruptError as exc:
        return exc


def _prefix_of_ids(records: list[Any]) -> bool:
    return [r.request_id for r in records] == IDS[: len(records)]


@FAST
@given(cut=st.integers(0, len(SEGMENT)))
def test_a_segment_cut_anywhere_recovers_a_prefix_without_error(cut: int) -> None:
    scan = scan_segment(Path("seg.open"), "recover", SEGMENT[:cut])
    assert _prefix_of_ids(scan.records)
    assert scan.valid_end + scan.torn_bytes == cut
    if cut == len(SEGMENT):
        assert len(scan.records) == len(IDS) and scan.torn_bytes == 0


@FAST
@given(
    position=st.integers(0, len(SEGMENT) - 1),
    value=st.integers(0, 255),
    policy=st.sampled_from(["sealed", "live", "recover"]),
)
def test_a_damaged_byte_gives_a_prefix_or_a_named_corruption(
    position: int, value: int, policy: str
) -> None:
    damaged = bytearray(SEGMENT)
    damaged[position] = value
    outcome = _scan(policy, bytes(damaged))
    if isinstance(outcome, SegmentCorruptError):
        assert policy != "live"  # a live reader stops quietly; CRC32 catches any one byte
        assert 0 <= outcome.offset <= position  # the damaged frame, or the header
        return
    assert _prefix_of_ids(outcome.records)
    assert policy != "sealed" or bytes(damaged) == SEGMENT  # a sealed segment must not verify


@FAST
@given(garbage=st.binary(max_size=2000), policy=st.sampled_from(["sealed", "live", "recover"]))
def test_arbitrary_bytes_never_crash_the_reader(garbage: bytes, policy: str) -> None:
    outcome = _scan(policy, garbage)
    if not isinstance(outcome, SegmentCorruptError):
        assert outcome.records == [] or policy != "sealed"


@FAST
@given(inputs=json_values, outputs=json_values)
def test_any_json_value_round_trips_and_reads_back_as_json(inputs: Any, outputs: Any) -> None:
    record = prediction(1, inputs=inputs, outputs=outputs, ts=datetime(2026, 1, 1, tzinfo=UTC))
    decoded = decode_record(encode_record(record))
    assert isinstance(decoded, PredictionRecord)
    table = prediction_table([decoded])
    assert json.loads(table.column("inputs")[0].as_py()) == _as_json(inputs)
    assert json.loads(table.column("outputs")[0].as_py()) == _as_json(outputs)


@FAST
@given(offset_minutes=st.integers(-14 * 60, 14 * 60))
def test_any_time_zone_is_filed_under_its_utc_date(offset_minutes: int) -> None:
    zone = timezone(timedelta(minutes=offset_minutes))
    ts = datetime(2026, 3, 1, 23, 30, tzinfo=UTC).astimezone(zone)
    decoded = decode_record(encode_record(prediction(1, ts=ts)))
    assert decoded.ts == ts
    assert prediction_table([decoded]).column("ts")[0].as_py() == ts


def _as_json(value: Any) -> Any:
    """What JSON makes of a value: non-finite floats become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    return value
