"""Fallback declarations: what a deployment answers when its model fails or times out.

A deployment declares one fallback (JSON in its settings) and the gateway
resolves it into a callable over a batch of records once, when the revision
loads, so a broken declaration is found before traffic arrives:

- ``{"kind": "last_known_good", "model": "fraud/6"}``: a previous model version,
  loaded by the gateway's own loader;
- ``{"kind": "constant", "value": 0.0}``: the same answer for every record;
- ``{"kind": "threshold", "field": "amount", "threshold": 1000, "above": "review",
  "below": "approve", "missing": "review"}``: a rule on one input: ``above``
  when the field is >= the threshold, else ``below``; ``missing`` when the
  field is absent, null or NaN (without it, such a record is an error).

Answers served by a fallback are flagged in the response and the prediction
log by the gateway.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from steward.core import ConfigurationError, IntegrityError, InvalidInputError, canonical_json

__all__ = [
    "ConstantFallback",
    "Fallback",
    "FallbackKind",
    "LastKnownGood",
    "Predict",
    "ResolvedFallback",
    "ThresholdRule",
    "parse_fallback",
    "resolve_fallback",
]

Predict = Callable[[Sequence[Mapping[str, Any]]], Sequence[Any]]
"""A model as the gateway calls it: a batch of records in, one output per record out."""

FallbackKind = Literal["last_known_good", "constant", "threshold"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


def _json_value(value: Any, what: str) -> Any:
    try:
        canonical_json(value)
    except InvalidInputError as exc:
        raise InvalidInputError(f"fallback {what} must be a JSON value: {exc}") from exc
    return value


@dataclass(frozen=True)
class LastKnownGood:
    """Serve a previous model version (``model`` is its reference, e.g. ``"fraud/6"``)."""

    model: str
    kind: Literal["last_known_good"] = "last_known_good"

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise InvalidInputError(
                f"a last_known_good fallback needs a model reference like 'fraud/6', "
                f"got {self.model!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form :func:`parse_fallback` reads."""
        return {"kind": self.kind, "model": self.model}


@dataclass(frozen=True)
class ConstantFallback:
    """Answer ``value`` (any JSON value) for every record."""

    value: Any
    kind: Literal["constant"] = "constant"

    def __post_init__(self) -> None:
        _json_value(self.value, "constant value")

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form :func:`parse_fallback` reads."""
        return {"kind": self.kind, "value": self.value}


@dataclass(frozen=True)
class ThresholdRule:
    """Answer ``above`` when ``record[field] >= threshold``, else ``below``.

    ``missing`` answers records where the field is absent, null or NaN; left
    unset, such a record raises :class:`~steward.core.InvalidInputError`.
    """

    field: str
    threshold: float
    above: Any
    below: Any
    missing: Any = MISSING
    kind: Literal["threshold"] = "threshold"

    def __post_init__(self) -> None:
        if not isinstance(self.field, str) or not self.field:
            raise InvalidInputError(f"a threshold fallback needs a field name, got {self.field!r}")
        threshold = self.threshold
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not math.isfinite(threshold)
        ):
            raise InvalidInputError(
                f"threshold fallback on {self.field!r} needs a finite number as threshold, "
                f"got {threshold!r}"
            )
        _json_value(self.above, "'above' value")
        _json_value(self.below, "'below' value")
        if self.missing is not MISSING:
            _json_value(self.missing, "'missing' value")

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form :func:`parse_fallback` reads."""
        data = {
            "kind": self.kind,
            "field": self.field,
            "threshold": self.threshold,
            "above": self.above,
            "below": self.below,
        }
        if self.missing is not MISSING:
            data["missing"] = self.missing
        return data

    def answer(self, record: Mapping[str, Any]) -> Any:
        """Return the rule's output for one record.

        Raises:
            InvalidInputError: the field is missing (and no ``missing`` value is
                declared) or is not a number.
        """
        value = record.get(self.field)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            if self.missing is MISSING:
                raise InvalidInputError(
                    f"the threshold fallback reads field {self.field!r}, which this record "
                    "lacks; send it, or declare a 'missing' value in the fallback"
                )
            return self.missing
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInputError(
                f"the threshold fallback compares field {self.field!r} with {self.threshold:g}, "
                f"but the record has {value!r} ({type(value).__name__}); send a number"
            )
        return self.above if value >= self.threshold else self.below


Fallback = LastKnownGood | ConstantFallback | ThresholdRule

_KEYS: dict[str, tuple[set[str], set[str]]] = {
    "last_known_good": ({"model"}, set()),
    "constant": ({"value"}, set()),
    "threshold": ({"field", "threshold", "above", "below"}, {"missing"}),
}


def parse_fallback(data: Mapping[str, Any]) -> Fallback:
    """Read a fallback declaration from its JSON form.

    Example:
        >>> parse_fallback({"kind": "constant", "value": 0.0})
        ConstantFallback(value=0.0, kind='constant')

    Raises:
        InvalidInputError: an unknown kind, missing or unknown keys, or bad values.
    """
    if not isinstance(data, Mapping):
        raise InvalidInputError(f"a fallback is an object with a 'kind', got {data!r}")
    kind = data.get("kind")
    if kind not in _KEYS:
        raise InvalidInputError(
            f"fallback kind {kind!r} is not valid; valid: {', '.join(sorted(_KEYS))}"
        )
    required, optional = _KEYS[kind]
    fields = {k: v for k, v in data.items() if k != "kind"}
    missing = sorted(required - set(fields))
    unknown = sorted(set(fields) - required - optional)
    if missing:
        raise InvalidInputError(f"{kind} fallback is missing {', '.join(map(repr, missing))}")
    if unknown:
        valid = ", ".join(sorted(required | optional | {"kind"}))
        raise InvalidInputError(
            f"{kind} fallback has unknown key(s) {', '.join(map(repr, unknown))}; valid: {valid}"
        )
    if kind == "last_known_good":
        return LastKnownGood(fields["model"])
    if kind == "constant":
        return ConstantFallback(fields["value"])
    return ThresholdRule(**fields)


@dataclass(frozen=True)
class ResolvedFallback:
    """A fallback ready to answer: call it with a batch of records.

    Attributes:
        declaration: what was declared.
        predict: the callable that answers.
    """

    declaration: Fallback
    predict: Predict

    @property
    def kind(self) -> FallbackKind:
        """The declaration's kind (for logs and metrics labels)."""
        return self.declaration.kind

    def __call__(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Answer every record.

        Raises:
            InvalidInputError: a record the rule cannot answer (threshold rule).
            IntegrityError: the last-known-good model returned the wrong number
                of outputs.
        """
        outputs = list(self.predict(records))
        if len(outputs) != len(records):
            raise IntegrityError(
                f"fallback {self.kind} returned {len(outputs)} outputs for {len(records)} records"
            )
        return outputs


def resolve_fallback(
    declaration: Fallback, *, load_model: Callable[[str], Predict] | None = None
) -> ResolvedFallback:
    """Turn a declaration into a callable, loading the last-known-good model if needed.

    Args:
        declaration: the fallback (see :func:`parse_fallback`).
        load_model: the gateway's model loader (reference -> predict callable);
            needed by ``last_known_good`` only.

    Returns:
        The resolved fallback.

    Raises:
        ConfigurationError: ``last_known_good`` without a model loader.
    """
    if isinstance(declaration, LastKnownGood):
        if load_model is None:
            raise ConfigurationError(
                f"the last_known_good fallback ({declaration.model}) needs a model loader; "
                "the gateway passes load_model"
            )
        return ResolvedFallback(declaration, load_model(declaration.model))
    if isinstance(declaration, ConstantFallback):
        value = declaration.value

        def constant(records: Sequence[Mapping[str, Any]]) -> list[Any]:
            # A copy per record: a caller mutating one answer must not change the others.
            if isinstance(value, dict | list):
                return [copy.deepcopy(value) for _ in records]
            return [value] * len(records)

        return ResolvedFallback(declaration, constant)
    rule = declaration

    def threshold(records: Sequence[Mapping[str, Any]]) -> list[Any]:
        return [rule.answer(record) for record in records]

    return ResolvedFallback(declaration, threshold)
