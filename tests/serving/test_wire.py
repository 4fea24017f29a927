"""Turning request records into model input: the all-float fast path and its fallbacks."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steward.registry import ColumnSpec, Signature
from steward.serving._wire import RequestProblemError, build_block, decode_inputs, prepare_block


def floats(*names: str) -> Signature:
    return Signature(tuple(ColumnSpec(n, "float64", nullable=False) for n in names))


def test_float_records_become_one_matrix_in_signature_order() -> None:
    sig = floats("b", "a", "c")
    records = [{"a": 1.0, "b": 2, "c": -3.5}, {"c": 0.25, "a": 4, "b": 5.0}]
    block = prepare_block(sig, records)
    assert isinstance(block, np.ndarray) and block.dtype == np.float64
    assert block.tolist() == [[2.0, 1.0, -3.5], [5.0, 4.0, 0.25]]
    # the same as the checked path would build
    assert np.array_equal(np.asarray(build_block(sig, records), dtype=np.float64), block)


def test_a_one_column_signature_takes_the_fast_path_too() -> None:
    block = prepare_block(floats("amount"), [{"amount": 1.5}, {"amount": 2}])
    assert block.shape == (2, 1) and block[:, 0].tolist() == [1.5, 2.0]


@pytest.mark.parametrize(
    ("record", "field", "words"),
    [
        ({"a": 1.0}, "b", "missing"),
        ({"a": 1.0, "b": 2.0, "z": 3.0}, "z", "unexpected"),
        ({"a": 1.0, "z": 3.0}, "b", "missing"),  # right count, wrong key
        ({"a": True, "b": 2.0}, "a", ""),
        ({"a": "1.5", "b": 2.0}, "a", ""),
        ({"a": None, "b": 2.0}, "a", ""),
        ({"a": math.nan, "b": 2.0}, "a", ""),
        ({"a": math.inf, "b": 2.0}, "a", ""),
        ({"a": [1.0], "b": 2.0}, "a", ""),
    ],
)
def test_anything_unusual_is_refused_naming_the_field_and_row(
    record: dict[str, Any], field: str, words: str
) -> None:
    good = {"a": 0.0, "b": 0.0}
    with pytest.raises(RequestProblemError) as info:
        prepare_block(floats("a", "b"), [good, record])
    problems = [(p.field, p.row) for p in info.value.problems]
    assert (field, 1) in problems
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("dtype", "value"),
    [("float64", 10**400), ("float64", -(10**400)), ("int64", 2**63), ("int32", -(2**31) - 1)],
)
def test_a_number_out_of_the_columns_range_is_refused_not_crashed(dtype: str, value: int) -> None:
    sig = Signature((ColumnSpec("a", dtype, nullable=False),))
    with pytest.raises(RequestProblemError) as info:
        prepare_block(sig, [{"a": value}])
    assert info.value.problems[0].field == "a"
    assert "out of range" in info.value.problems[0].message


def test_mixed_signatures_use_the_checked_path() -> None:
    sig = Signature((ColumnSpec("a", "float64"), ColumnSpec("city", "string")))
    block = prepare_block(sig, [{"a": 1.0, "city": "Oslo"}])
    assert not isinstance(block, np.ndarray)


# Decoding straight into a matrix (all-float signatures) must accept, refuse and
# log exactly what the general path does.


def _general(body: bytes, sig: Signature, max_rows: int = 1000) -> Any:
    decoded = decode_inputs(body, max_rows=max_rows)  # no signature: the general path
    return decoded, prepare_block(sig, decoded.records)


def test_a_body_of_records_is_decoded_straight_into_the_matrix() -> None:
    sig = floats("b", "a")
    body = b'{"inputs": [{"a": 1, "b": 2.5}, {"b": -1e10, "a": 0.125}]}'
    fast = decode_inputs(body, max_rows=10, signature=sig)
    assert fast.block is not None and fast.signature is sig
    assert fast.block.dtype == np.float64
    assert fast.block.tolist() == [[2.5, 1.0], [-1e10, 0.125]]
    assert fast.block_for(sig) is fast.block
    # The records read as dicts, and the log gets the same encoding as decoded JSON.
    assert list(fast.records) == [{"b": 2.5, "a": 1.0}, {"b": -1e10, "a": 0.125}]
    assert fast.records[1] == {"a": 0.125, "b": -1e10} and fast.records[-1:] == [fast.records[1]]
    general, block = _general(body, sig)
    assert np.array_equal(block, fast.block)
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(fast.inputs)) == general.inputs


def test_one_record_is_decoded_straight_too() -> None:
    sig = floats("amount", "hour")
    fast = decode_inputs(b'{"inputs": {"hour": 3, "amount": 12.5}}', max_rows=10, signature=sig)
    assert fast.block is not None and fast.block.tolist() == [[12.5, 3.0]]
    assert list(fast.records) == [{"amount": 12.5, "hour": 3.0}]
    assert msgspec.json.decode(msgspec.json.encode(fast.inputs)) == {"amount": 12.5, "hour": 3.0}


def test_a_body_of_columns_is_decoded_straight_too() -> None:
    sig = floats("b", "a")
    body = b'{"inputs": {"a": [1, 0.125], "b": [2.5, -1e10]}}'
    fast = decode_inputs(body, max_rows=10, signature=sig)
    assert fast.block is not None and fast.block.flags.c_contiguous
    assert fast.block.tolist() == [[2.5, 1.0], [-1e10, 0.125]]
    assert list(fast.records) == [{"b": 2.5, "a": 1.0}, {"b": -1e10, "a": 0.125}]
    general, block = _general(body, sig)
    assert np.array_equal(block, fast.block)
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(fast.inputs)) == general.inputs


def test_column_names_need_not_be_python_names() -> None:
    sig = floats("amount (usd)", "class", "1st-seen", "inputs")
    body = b'{"inputs": [{"amount (usd)": 1, "class": 2, "1st-seen": 3, "inputs": 4}]}'
    fast = decode_inputs(body, max_rows=10, signature=sig)
    assert fast.block is not None and fast.block.tolist() == [[1.0, 2.0, 3.0, 4.0]]
    assert fast.records[0] == {"amount (usd)": 1.0, "class": 2.0, "1st-seen": 3.0, "inputs": 4.0}


def test_another_signature_gets_its_own_matrix_from_the_records() -> None:
    """A canary whose model takes the columns in another order, or other columns."""
    body = b'{"inputs": [{"a": 1, "b": 2}]}'
    fast = decode_inputs(body, max_rows=10, signature=floats("a", "b"))
    assert fast.block_for(floats("b", "a")).tolist() == [[2.0, 1.0]]
    with pytest.raises(RequestProblemError) as info:
        fast.block_for(floats("a", "c"))
    assert ("c", 0) in [(p.field, p.row) for p in info.value.problems]


@pytest.mark.parametrize(
    "body",
    [
        b'{"inputs": {"a": [1, 2], "b": [3]}}',  # columns of different lengths
        b'{"inputs": {"a": [], "b": []}}',
        b'{"inputs": {"a": [1, 2, 3, 4], "b": [1, 2, 3, 4]}}',  # too many rows
        b'{"inputs": {"a": [1, true], "b": [3, 4]}}',
        b'{"inputs": {"a": [1, 2], "b": 3}}',
        b'{"inputs": {"a": [1, 2], "b": [3, 4], "c": [5, 6]}}',
        b'{"inputs": [{"a": 1}]}',  # missing
        b'{"inputs": [{"a": 1, "b": 2, "z": 3}]}',  # extra
        b'{"inputs": [{"a": true, "b": 2}]}',
        b'{"inputs": [{"a": "1", "b": 2}]}',
        b'{"inputs": [{"a": null, "b": 2}]}',
        b'{"inputs": [{"a": 1e400, "b": 2}]}',
        b'{"inputs": [{"a": ' + b"9" * 400 + b', "b": 2}]}',
        b'{"inputs": []}',
        b'{"inputs": [{"a": 1, "b": 2}], "extra": 1}',
        b'{"inputs": [{"a": 1, "b": 2}, 7]}',
        b'{"inputs": [{"a": 1, "b": 2}',
        b"[]",
        b"",
    ],
)
def test_a_body_that_does_not_fit_gets_the_general_paths_answer(body: bytes) -> None:
    sig = floats("a", "b")
    try:
        expected: Any = _general(body, sig, max_rows=3)[1].tolist()
    except RequestProblemError as exc:
        expected = exc.problems
    try:
        fast = decode_inputs(body, max_rows=3, signature=sig)
        got: Any = fast.block_for(sig).tolist()
    except RequestProblemError as exc:
        got = exc.problems
    assert got == expected


def test_too_many_rows_are_refused_on_the_fast_path_too() -> None:
    body = msgspec.json.encode({"inputs": [{"a": 1.0, "b": 2.0}] * 4})
    with pytest.raises(RequestProblemError, match="4 rows; the limit is 3"):
        decode_inputs(body, max_rows=3, signature=floats("a", "b"))


_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
)
_records = st.dictionaries(st.sampled_from(["a", "b", "c"]), _values, max_size=4)


_columns = st.dictionaries(
    st.sampled_from(["a", "b", "c"]), st.one_of(st.lists(_values, max_size=4), _values), max_size=4
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(_records, max_size=4), _records, _columns))
def test_the_fast_path_agrees_with_the_general_path_on_any_inputs(inputs: Any) -> None:
    sig = floats("a", "b")
    body = msgspec.json.encode({"inputs": inputs})
    try:
        expected: Any = _general(body, sig, max_rows=3)[1].tolist()
    except RequestProblemError as exc:
        expected = [(p.row, p.field) for p in exc.problems]
    try:
        got: Any = decode_inputs(body, max_rows=3, signature=sig).block_for(sig).tolist()
    except RequestProblemError as exc:
        got = [(p.row, p.field) for p in exc.problems]
    assert got == expected
