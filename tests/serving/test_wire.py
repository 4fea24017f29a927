"""Turning request records into model input: the all-float fast path and its fallbacks."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from steward.registry import ColumnSpec, Signature
from steward.serving._wire import RequestProblemError, build_block, prepare_block


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
