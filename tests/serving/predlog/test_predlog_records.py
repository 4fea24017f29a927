from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from tests.serving.predlog._factories import feedback, prediction

from steward.core import InvalidInputError
from steward.serving._predlog import FeedbackRecord, PredictionRecord, RecordTooLargeError
from steward.serving._predlog._records import decode_record, encode_record
from steward.serving._predlog._tables import feedback_table, prediction_table


def test_encode_record_round_trips_both_kinds() -> None:
    for record in (prediction(1), feedback(1), feedback(2, label=None, reward=0.5)):
        assert decode_record(encode_record(record)) == record


def test_encode_record_turns_numpy_values_into_plain_ones() -> None:
    record = prediction(1, outputs={"proba": np.array([0.25, 0.75]), "label": np.int64(1)})
    decoded = decode_record(encode_record(record))
    assert isinstance(decoded, PredictionRecord)
    assert decoded.outputs == {"proba": [0.25, 0.75], "label": 1}


def test_nan_in_inputs_is_kept_in_the_segment_and_null_in_the_table() -> None:
    record = prediction(1, inputs={"amount": float("nan"), "limit": float("inf"), "n": 3})
    decoded = decode_record(encode_record(record))
    assert isinstance(decoded, PredictionRecord)
    assert np.isnan(decoded.inputs["amount"])
    table = prediction_table([decoded])
    assert table.column("inputs").to_pylist() == ['{"amount":null,"limit":null,"n":3}']


@pytest.mark.parametrize("latency", [float("nan"), float("inf"), -1.0])
def test_encode_record_refuses_a_bad_latency(latency: float) -> None:
    with pytest.raises(InvalidInputError, match="latency_ms"):
        encode_record(prediction(1, latency_ms=latency))


def test_encode_record_refuses_a_nan_reward_or_label() -> None:
    with pytest.raises(InvalidInputError, match="reward"):
        encode_record(feedback(1, reward=float("nan")))
    with pytest.raises(InvalidInputError, match="label"):
        encode_record(feedback(1, label=float("inf")))


def test_encode_record_refuses_feedback_without_label_or_reward() -> None:
    with pytest.raises(InvalidInputError, match="neither a label nor a reward"):
        encode_record(feedback(1, label=None, reward=None))


def test_encode_record_refuses_oversized_records_naming_the_sizes() -> None:
    record = prediction(1, inputs={"blob": "x" * 5000})
    with pytest.raises(RecordTooLargeError, match=r"req-000001.*over the prediction log's limit"):
        encode_record(record, max_bytes=4096)
    assert isinstance(RecordTooLargeError("x"), InvalidInputError)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"revision": "three"}, "revision"),
        ({"features": {1: 2}}, "features"),
        ({"test": "yes"}, "test"),
        ({"inputs": {"when": object()}}, "JSON types"),
        ({"ts": datetime(2026, 1, 1)}, "timezone-aware"),
        ({"ts": "2026-01-01"}, "timezone-aware"),
        ({"request_id": ""}, "request_id"),
        ({"request_id": "r" * 300}, "request_id"),
        ({"deployment": "../etc"}, "deployment name"),
        ({"deployment": "a/b"}, "deployment name"),
        ({"deployment": ""}, "deployment name"),
        ({"deployment": 7}, "deployment name"),
    ],
)
def test_encode_record_names_the_bad_field(changes: dict[str, object], named: str) -> None:
    with pytest.raises(InvalidInputError, match=named):
        encode_record(prediction(1, **changes))


def test_encode_record_refuses_other_objects() -> None:
    with pytest.raises(InvalidInputError, match="PredictionRecord or a FeedbackRecord"):
        encode_record({"request_id": "r1"})


def test_feedback_table_gives_numeric_labels_a_value() -> None:
    records = [
        feedback(1, label=True),
        feedback(2, label=0),
        feedback(3, label="fraud"),
        FeedbackRecord(request_id="r", ts=datetime(2026, 1, 1, tzinfo=UTC), reward=1.0),
    ]
    table = feedback_table(records)
    assert table.column("label").to_pylist() == ["true", "0", '"fraud"', None]
    assert table.column("label_value").to_pylist() == [1.0, 0.0, None, None]
    assert table.column("reward").to_pylist() == [None, None, None, 1.0]


def test_verify_decodes_back_and_catches_a_field_of_the_wrong_type() -> None:
    good = prediction(1)
    assert encode_record(good, verify=False) == encode_record(good)
    wrong = prediction(2, revision="3")  # encodes, but compaction could not read it back
    with pytest.raises(InvalidInputError, match="req-000002"):
        encode_record(wrong)
    encode_record(wrong, verify=False)  # the caller vouched for its types
