"""Retention rules and plans: the grammar of rules, and what a plan lists."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from steward.core import ConflictError, InvalidInputError
from steward.governance._retention_predictions import PredictionPartition

__all__ = [
    "DEFAULT_RULES",
    "LegalHoldError",
    "RetentionItem",
    "RetentionPlan",
    "RetentionRule",
    "parse_rules",
    "read_rules",
]

_CONDITIONS = {
    "runs": ("archived", "finished"),
    "dataset_versions": ("unreferenced",),
    "model_versions": ("archived",),
    "predictions": ("older",),
}
_RULE = re.compile(
    r"^\s*(?P<kind>[a-z_]+)\s*:\s*(?P<condition>[a-z]+)\s+(?:for|than)\s+"
    r"(?P<number>\d{1,6})\s*(?P<unit>[dwy])\s*$"
)
_UNIT_DAYS = {"d": 1, "w": 7, "y": 365}
MAX_AGE = timedelta(days=365 * 100)


class LegalHoldError(ConflictError):
    """A deletion was refused because a legal hold keeps the object."""


@dataclass(frozen=True)
class RetentionRule:
    """One rule: objects of ``kind`` in ``condition`` for longer than ``age`` may go."""

    kind: str
    condition: str
    age: timedelta

    @classmethod
    def parse(cls, text: str) -> RetentionRule:
        """Parse ``runs: archived for 90d`` (units: ``d``, ``w``, ``y`` = 365 days).

        Example:
            >>> RetentionRule.parse("runs: archived for 90d").age.days
            90

        Raises:
            InvalidInputError: the text does not follow the grammar, or names an
                unknown kind or condition.
        """
        if not isinstance(text, str) or len(text) > 200:
            raise InvalidInputError(f"retention rule {str(text)[:80]!r} is not a short line")
        match = _RULE.match(text)
        if match is None:
            raise InvalidInputError(
                f"retention rule {text!r} is not understood; write 'KIND: CONDITION for AGE', "
                "e.g. 'runs: archived for 90d' or 'predictions: older than 400d'"
            )
        kind, condition = match["kind"], match["condition"]
        if kind not in _CONDITIONS:
            raise InvalidInputError(
                f"retention rule {text!r} names kind {kind!r}; use one of {', '.join(_CONDITIONS)}"
            )
        if condition not in _CONDITIONS[kind]:
            raise InvalidInputError(
                f"retention rule {text!r}: {kind} take the condition "
                f"{' or '.join(_CONDITIONS[kind])}, not {condition!r}"
            )
        age = timedelta(days=int(match["number"]) * _UNIT_DAYS[match["unit"]])
        if age > MAX_AGE:
            raise InvalidInputError(f"retention rule {text!r}: keep periods over 100 years out")
        return cls(kind, condition, age)

    def __str__(self) -> str:
        joiner = "than" if self.condition == "older" else "for"
        return f"{self.kind}: {self.condition} {joiner} {self.age.days}d"


DEFAULT_RULES: tuple[RetentionRule, ...] = tuple(
    RetentionRule.parse(line)
    for line in (
        "runs: archived for 90d",
        "dataset_versions: unreferenced for 180d",
        "model_versions: archived for 7y",
        "predictions: older than 400d",
    )
)


def parse_rules(lines: Iterable[str]) -> tuple[RetentionRule, ...]:
    """Parse rule lines; a later rule for the same kind and condition replaces an earlier one.

    Raises:
        InvalidInputError: a line is not a rule (the message names it).
    """
    rules: dict[tuple[str, str], RetentionRule] = {}
    for line in lines:
        rule = RetentionRule.parse(line)
        rules[(rule.kind, rule.condition)] = rule
    return tuple(rules.values())


def read_rules(path: str | Path) -> tuple[RetentionRule, ...]:
    """Read rules from a TOML file's ``[retention]`` table.

    Example file::

        [retention]
        runs = "archived for 90d"
        dataset_versions = "unreferenced for 180d"

    Raises:
        InvalidInputError: the file is missing, not TOML, or holds a bad rule.
    """
    source = Path(path)
    try:
        document = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"retention rules file {str(source)!r} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            f"retention rules file {str(source)!r} is not TOML: {exc}"
        ) from None
    table = document.get("retention")
    if not isinstance(table, dict) or not table:
        raise InvalidInputError(
            f'{str(source)!r} has no [retention] table; write e.g. runs = "archived for 90d"'
        )
    lines = []
    for kind, value in table.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if not isinstance(item, str):
                raise InvalidInputError(f"{str(source)!r}: retention.{kind} must be text")
            lines.append(f"{kind}: {item}")
    return parse_rules(lines)


@dataclass(frozen=True)
class RetentionItem:
    """One object a rule looked at, and what retention does with it."""

    kind: str  # run | artifact | dataset_version | model_version | model_artifact
    id: str
    label: str
    action: str  # delete | keep
    reason: str
    rule: str | None = None
    hold_id: str | None = None
    size: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return {
            "kind": self.kind,
            "id": self.id,
            "label": self.label,
            "action": self.action,
            "reason": self.reason,
            "rule": self.rule,
            "hold": self.hold_id,
            "size": self.size,
        }


@dataclass(frozen=True)
class RetentionPlan:
    """What retention would delete (or did, once applied) and what it keeps, with reasons."""

    at: datetime
    rules: tuple[RetentionRule, ...]
    items: tuple[RetentionItem, ...]
    prediction_cutoff: date | None = None
    applied: bool = False
    deleted: dict[str, int] = field(default_factory=dict)
    predictions: tuple[PredictionPartition, ...] = ()

    @property
    def to_delete(self) -> list[RetentionItem]:
        """Items retention deletes."""
        return [i for i in self.items if i.action == "delete"]

    @property
    def kept(self) -> list[RetentionItem]:
        """Items past a rule's period that are kept, each with its reason."""
        return [i for i in self.items if i.action == "keep"]

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return {
            "at": self.at.isoformat(),
            "rules": [str(r) for r in self.rules],
            "applied": self.applied,
            "deleted": dict(self.deleted),
            "prediction_cutoff": self.prediction_cutoff.isoformat()
            if self.prediction_cutoff
            else None,
            "items": [i.as_dict() for i in self.items],
            "predictions": [p.as_dict() for p in self.predictions],
        }
