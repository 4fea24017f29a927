"""Fallback declarations: parsing, validation and the callables they resolve to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steward.core import ConfigurationError, IntegrityError, InvalidInputError
from steward.serving._fallback import (
    ConstantFallback,
    LastKnownGood,
    ThresholdRule,
    parse_fallback,
    resolve_fallback,
)

RECORDS = [{"amount": 50.0}, {"amount": 1_000}, {"amount": 5_000.5}]


def test_constant_fallback_answers_every_record() -> None:
    fallback = resolve_fallback(parse_fallback({"kind": "constant", "value": 0.0}))
    assert fallback.kind == "constant"
    assert fallback(RECORDS) == [0.0, 0.0, 0.0]
    assert fallback([]) == []


def test_constant_fallback_answers_are_independent_copies() -> None:
    fallback = resolve_fallback(ConstantFallback({"label": "ok", "scores": [0.1]}))
    first, second = fallback(RECORDS[:2])
    first["scores"].append(9)
    assert second == {"label": "ok", "scores": [0.1]}


def test_threshold_rule_answers_above_and_below() -> None:
    rule = ThresholdRule("amount", 1_000, above="review", below="approve", missing="review")
    fallback = resolve_fallback(rule)
    assert fallback(RECORDS) == ["approve", "review", "review"]
    assert fallback([{}, {"amount": None}, {"amount": float("nan")}]) == ["review"] * 3


def test_threshold_rule_without_missing_value_names_the_field() -> None:
    fallback = resolve_fallback(ThresholdRule("amount", 10, above=1, below=0))
    with pytest.raises(InvalidInputError, match="reads field 'amount', which this record lacks"):
        fallback([{"other": 1}])
    with pytest.raises(InvalidInputError, match=r"has '12' \(str\); send a number"):
        fallback([{"amount": "12"}])
    with pytest.raises(InvalidInputError, match="send a number"):
        fallback([{"amount": True}])


@given(st.floats(allow_nan=False), st.floats(allow_nan=False, allow_infinity=False))
def test_threshold_rule_is_a_step_function(value: float, threshold: float) -> None:
    rule = ThresholdRule("x", threshold, above="hi", below="lo")
    assert rule.answer({"x": value}) == ("hi" if value >= threshold else "lo")


def test_last_known_good_uses_the_gateway_loader() -> None:
    loaded: list[str] = []

    def load(ref: str) -> Any:
        loaded.append(ref)

        def predict(records: Sequence[Mapping[str, Any]]) -> list[float]:
            return [float(r["amount"]) / 10_000 for r in records]

        return predict

    fallback = resolve_fallback(
        parse_fallback({"kind": "last_known_good", "model": "fraud/6"}), load_model=load
    )
    assert loaded == ["fraud/6"]
    assert fallback(RECORDS[:1]) == [0.005]
    assert fallback.kind == "last_known_good"


def test_last_known_good_needs_a_loader_and_checks_output_length() -> None:
    with pytest.raises(ConfigurationError, match="needs a model loader"):
        resolve_fallback(LastKnownGood("fraud/6"))
    fallback = resolve_fallback(LastKnownGood("fraud/6"), load_model=lambda ref: lambda rows: [1])
    with pytest.raises(IntegrityError, match="returned 1 outputs for 3 records"):
        fallback(RECORDS)


@pytest.mark.parametrize(
    "declaration",
    [
        LastKnownGood("fraud/6"),
        ConstantFallback([1, "a"]),
        ThresholdRule("amount", 1.5, above=1, below=0),
        ThresholdRule("amount", 1.5, above=1, below=0, missing=None),
    ],
)
def test_fallback_round_trips_through_dict(declaration: Any) -> None:
    assert parse_fallback(declaration.to_dict()) == declaration


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("constant", "an object with a 'kind'"),
        ({}, "kind None is not valid; valid: constant, last_known_good, threshold"),
        ({"kind": "retry"}, "kind 'retry' is not valid"),
        ({"kind": "constant"}, "constant fallback is missing 'value'"),
        ({"kind": "constant", "value": 1, "model": "x"}, r"unknown key\(s\) 'model'"),
        ({"kind": "constant", "value": float("nan")}, "must be a JSON value"),
        ({"kind": "constant", "value": object()}, "must be a JSON value"),
        ({"kind": "last_known_good", "model": ""}, "needs a model reference"),
        ({"kind": "threshold", "field": "a", "threshold": 1, "above": 1}, "missing 'below'"),
        (
            {"kind": "threshold", "field": "a", "threshold": "1", "above": 1, "below": 0},
            "needs a finite number as threshold",
        ),
        (
            {"kind": "threshold", "field": "a", "threshold": float("inf"), "above": 1, "below": 0},
            "needs a finite number",
        ),
        (
            {"kind": "threshold", "field": "", "threshold": 1, "above": 1, "below": 0},
            "needs a field name",
        ),
    ],
)
def test_parse_fallback_rejects_malformed(data: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_fallback(data)
