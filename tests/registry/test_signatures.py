"""Signatures: inference from any container, enforcement naming every bad column, compatibility."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from steward.core import InvalidInputError
from steward.registry import (
    ColumnSpec,
    Signature,
    SignatureError,
    TensorSpec,
    check_compatibility,
)

SIG = Signature(
    (
        ColumnSpec("amount", "float64"),
        ColumnSpec("hour", "int64"),
        ColumnSpec("country", "string", nullable=True, categories=("DE", "FR")),
    ),
    outputs=(TensorSpec("prediction", "int64"),),
)


def test_signature_infer_reads_every_container_alike() -> None:
    frame = pd.DataFrame({"amount": [1.5, 2.0], "hour": [3, 4], "country": ["DE", None]})
    containers = [
        frame,
        pa.Table.from_pandas(frame, preserve_index=False),
        {"amount": [1.5, 2.0], "hour": [3, 4], "country": ["DE", None]},
        frame.to_dict("records"),
    ]
    for data in containers:
        sig = Signature.infer(data)
        assert [(c.name, c.dtype, c.nullable) for c in sig.inputs] == [
            ("amount", "float64", False),
            ("hour", "int64", False),
            ("country", "string", True),
        ], type(data)
        assert sig.input_format == "dataframe"


def test_signature_infer_array_names_columns_and_keeps_the_array_format() -> None:
    sig = Signature.infer(np.zeros((3, 2)), np.array([0, 1, 0]), classes=[0, 1])
    assert sig.names == ["x0", "x1"]
    assert sig.input_format == "ndarray"
    assert sig.outputs == (TensorSpec("prediction", "int64", (None,)),)
    assert sig.classes == (0, 1)
    named = Signature.infer(np.zeros((3, 2)), names=["a", "b"])
    assert named.names == ["a", "b"]


def test_signature_with_profile_adds_nullability_ranges_and_categories() -> None:
    profile = {
        "columns": [
            {"name": "amount", "kind": "numeric", "null_count": 2, "min": 0.5, "max": 900.0},
            {
                "name": "country",
                "kind": "string",
                "null_count": 0,
                "distinct_count": 2,
                "distinct_exact": True,
                "top_values": [{"value": "FR"}, {"value": "DE"}],
            },
            {"name": "not-an-input", "kind": "numeric", "min": 0, "max": 1},
        ]
    }
    sig = Signature.infer({"amount": [1.0], "country": ["DE"]}, profile=profile)
    amount, country = sig.inputs
    assert (amount.nullable, amount.min, amount.max) == (True, 0.5, 900.0)
    assert country.categories == ("DE", "FR")
    assert sig.names == ["amount", "country"]


def test_signature_check_names_every_bad_column_at_once() -> None:
    bad = pd.DataFrame({"amount": ["12"], "hour": [None], "city": ["Paris"]})
    with pytest.raises(SignatureError) as caught:
        SIG.check(bad, ref="fraud:3")
    problems = dict(caught.value.problems)
    assert set(problems) == {"amount", "hour", "country", "city"}
    message = str(caught.value)
    assert message.startswith("input does not match the signature of fraud:3 (4 problems)")
    assert "column 'amount': expected float64, got string" in message
    assert "missing column 'country'" in message
    assert "unexpected column 'city'" in message
    assert "column 'hour': 1 null value(s) but the column is not nullable" in message
    assert isinstance(caught.value, InvalidInputError)


def test_signature_check_accepts_widening_and_whole_floats_for_integers() -> None:
    ok = {"amount": np.array([1, 2]), "hour": np.array([3.0, 4.0]), "country": ["DE", None]}
    columns = SIG.check(ok)
    assert [c.name for c in columns] == ["amount", "hour", "country"]
    with pytest.raises(SignatureError, match="fractional values"):
        SIG.check({"amount": [1.0], "hour": [3.5], "country": ["DE"]})


def test_signature_check_array_is_positional_and_counts_columns() -> None:
    sig = Signature(
        (ColumnSpec("a", "float64"), ColumnSpec("b", "float64")), input_format="ndarray"
    )
    assert [c.name for c in sig.check(np.ones((2, 2)))] == ["a", "b"]
    with pytest.raises(SignatureError, match=r"expected 2 columns \(a, b\), got 3"):
        sig.check(np.ones((1, 3)))
    with pytest.raises(InvalidInputError, match="must be 2-D"):
        sig.check(np.ones(2))


def test_signature_check_ranges_only_when_asked() -> None:
    sig = Signature(
        (ColumnSpec("amount", "float64", min=0.0, max=10.0), SIG.inputs[2]),
    )
    data = {"amount": [5.0, 11.0, -1.0], "country": ["DE", "IT", "ES"]}
    sig.check(data)
    with pytest.raises(SignatureError) as caught:
        sig.check(data, check_ranges=True)
    message = str(caught.value)
    assert "2 value(s) outside the training range [0, 10]" in message
    assert "unknown categories 'ES', 'IT'" in message


def test_signature_check_refuses_unreadable_containers() -> None:
    with pytest.raises(InvalidInputError, match="cannot read model input of type str"):
        SIG.check("amount=1")
    with pytest.raises(InvalidInputError, match="different lengths"):
        SIG.check({"amount": [1.0, 2.0], "hour": [1], "country": ["DE", "FR"]})
    with pytest.raises(InvalidInputError, match="record 1 is a int"):
        SIG.check([{"amount": 1.0}, 3])


def test_signature_round_trips_through_dict_and_rejects_malformed() -> None:
    assert Signature.from_dict(SIG.to_dict()) == SIG
    assert Signature.from_dict(SIG.to_dict()).fingerprint == SIG.fingerprint
    with pytest.raises(InvalidInputError, match="list of 'inputs'"):
        Signature.from_dict({"inputs": "amount"})
    with pytest.raises(InvalidInputError, match="not a column spec"):
        Signature.from_dict({"inputs": [{"dtype": "float64"}]})
    with pytest.raises(InvalidInputError, match="input_format"):
        Signature.from_dict({"inputs": [], "input_format": "tensor"})
    with pytest.raises(InvalidInputError, match="more than once"):
        Signature((ColumnSpec("a", "float64"), ColumnSpec("a", "int64")))


def test_signature_error_survives_pickling() -> None:
    error = SignatureError([("a", "missing column 'a'")], "fraud:1")
    copy = pickle.loads(pickle.dumps(error))
    assert copy.problems == error.problems
    assert str(copy) == str(error)


def _sig(*columns: ColumnSpec, outputs: tuple[TensorSpec, ...] = (), classes=None) -> Signature:  # type: ignore[no-untyped-def]
    return Signature(columns, outputs=outputs, classes=classes)


A = ColumnSpec("a", "int64")
B = ColumnSpec("b", "string")
OUT = TensorSpec("prediction", "int64")


def test_compatibility_identical_is_compatible_and_range_changes_are_notes() -> None:
    old = _sig(ColumnSpec("a", "float64", min=0, max=1), outputs=(OUT,))
    new = _sig(ColumnSpec("a", "float64", min=0, max=5), outputs=(OUT,))
    result = check_compatibility(old, new)
    assert result.level == "compatible"
    assert result.reasons == ()
    assert "training range" in result.notes[0]


def test_compatibility_additive_changes() -> None:
    old = _sig(A, outputs=(OUT,))
    wider = _sig(
        ColumnSpec("a", "float64", nullable=True), outputs=(OUT, TensorSpec("score", "float64"))
    )
    result = check_compatibility(old, wider)
    assert result.level == "additive"
    assert any("widened from int64 to float64" in r for r in result.reasons)
    assert any("now accepts nulls" in r for r in result.reasons)
    assert any("new output 'score'" in r for r in result.reasons)


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        (_sig(A, B), "new input 'b' is required"),
        (_sig(), "input 'a' was removed"),
        (_sig(ColumnSpec("a", "string")), "changed type from int64 to string"),
        (_sig(B, A), None),  # column order: same set, new input -> breaking anyway
    ],
)
def test_compatibility_breaking_changes(new: Signature, expected: str | None) -> None:
    old = _sig(A)
    result = check_compatibility(old, new)
    assert result.level == "breaking"
    assert result.breaking
    if expected:
        assert any(expected in r for r in result.reasons)


def test_compatibility_order_nullability_outputs_classes() -> None:
    base = _sig(A, B, outputs=(OUT,), classes=(0, 1))
    assert "order changed" in " ".join(
        check_compatibility(base, _sig(B, A, outputs=(OUT,), classes=(0, 1))).reasons
    )
    stricter = _sig(A, ColumnSpec("b", "string", nullable=False), outputs=(OUT,), classes=(0, 1))
    nullable_base = _sig(
        A, ColumnSpec("b", "string", nullable=True), outputs=(OUT,), classes=(0, 1)
    )
    assert "no longer accepts nulls" in check_compatibility(nullable_base, stricter).reasons[0]
    assert check_compatibility(base, _sig(A, B, classes=(0, 1))).level == "breaking"
    assert (
        "classes changed"
        in check_compatibility(base, _sig(A, B, outputs=(OUT,), classes=(0, 1, 2))).reasons[0]
    )


def test_compatibility_without_signatures() -> None:
    assert check_compatibility(None, None).level == "compatible"
    assert check_compatibility(None, _sig(A)).level == "breaking"
    assert "no signature" in check_compatibility(_sig(A), None).reasons[0]


def test_signature_check_of_numeric_frames_keeps_every_rule() -> None:
    sig = Signature((ColumnSpec("amount", "float64"), ColumnSpec("hour", "int64")))
    ok = pd.DataFrame({"amount": [1.5, 2.5], "hour": [3, 4]})
    assert [c.name for c in sig.check(ok)] == ["amount", "hour"]
    bad = pd.DataFrame({"amount": [np.nan, 2.5], "hour": [3.5, 4.0], "extra": [0.0, 1.0]})
    with pytest.raises(SignatureError) as caught:
        sig.check(bad)
    assert dict(caught.value.problems) == {
        "amount": "column 'amount': 1 null value(s) but the column is not nullable",
        "hour": "column 'hour': expected int64, got float64 with fractional values",
        "extra": "unexpected column 'extra'",
    }
    inferred = Signature.infer(ok)  # inference keeps the integer type
    assert [c.dtype for c in inferred.inputs] == ["float64", "int64"]
