"""Policies as code: which checks and sign-offs each risk tier needs before each stage.

A policy is a YAML or TOML document (see ``docs/governance.md`` for the format):

.. code-block:: yaml

    policy: credit-models
    tiers: [low, medium, high, critical]
    request_ttl: 7d
    gates:
      high:
        production:
          checks:
            - "holdout auc >= 0.80"
            - {check: beats_champion, metric: auc, dataset: holdout, margin: 0.005}
            - {check: fairness, attribute: gender, metric: disparate_impact, min: 0.8}
          approvals:
            - {role: model-risk, count: 1}
    freeze_windows:
      - {name: year-end, start: 2026-12-20T00:00:00Z, end: 2027-01-04T00:00:00Z}
    emergency:
      approvals: [{role: admin, count: 1}]

This module holds the validated document: its gates, approval rules, freeze
windows and emergency rule. The kinds of check a gate lists are in
``_policy_checks.py``, reading a document is ``_policy_parser.py``, and
evaluating the checks is ``_checks.py``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from steward.core import InvalidInputError, canonical_json, sha256_hex
from steward.governance._policy_checks import Check, StrictModel, expand_shorthand

__all__ = [
    "STAGES",
    "ApprovalRule",
    "Emergency",
    "FreezeWindow",
    "Gate",
    "Policy",
    "Stage",
]

Stage = Literal["staging", "production"]
STAGES: tuple[Stage, ...] = ("staging", "production")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ApprovalRule(StrictModel):
    """``count`` distinct approvers holding ``role``."""

    role: str = Field(min_length=1, max_length=100)
    count: int = Field(default=1, ge=1, le=20)


class Gate(StrictModel):
    """What moving a version of one risk tier into one stage requires."""

    checks: list[Check] = Field(default_factory=list)
    approvals: list[ApprovalRule] = Field(default_factory=list)
    separation_of_duties: bool = True

    @field_validator("checks", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [expand_shorthand(item) for item in value]


class FreezeWindow(StrictModel):
    """A period in which promotion to the frozen stages is refused (unless emergency).

    Either a fixed range (``start``/``end``, aware datetimes or dates, end exclusive)
    or a recurring one (``weekdays`` and optional ``from_time``/``to_time`` in
    ``timezone``).
    """

    name: str = Field(min_length=1, max_length=100)
    start: datetime | None = None
    end: datetime | None = None
    weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] | None = None
    from_time: time | None = None
    to_time: time | None = None
    timezone: str = "UTC"
    stages: list[Stage] = Field(default_factory=lambda: list[Stage](["production"]))

    @field_validator("start", "end", mode="before")
    @classmethod
    def _dates(cls, value: Any) -> Any:
        if isinstance(value, datetime):
            return value
        if hasattr(value, "isoformat") and not isinstance(value, time):  # a date
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    @model_validator(mode="after")
    def _shape(self) -> FreezeWindow:
        fixed = self.start is not None or self.end is not None
        recurring = self.weekdays is not None or self.from_time or self.to_time
        if fixed == bool(recurring):
            raise ValueError("give either start and end, or weekdays (with optional times)")
        if fixed:
            if self.start is None or self.end is None:
                raise ValueError("a fixed window needs both start and end")
            for moment in (self.start, self.end):
                if moment.tzinfo is None:
                    raise ValueError(f"{moment.isoformat()} has no time zone; add Z or +hh:mm")
            if self.end <= self.start:
                raise ValueError("end must be after start")
        return self

    def contains(self, when: datetime) -> bool:
        """Return whether the aware datetime ``when`` falls in this window."""
        if self.start is not None and self.end is not None:
            return self.start <= when < self.end
        local = when.astimezone(ZoneInfo(self.timezone))
        if self.weekdays is not None and _WEEKDAYS[local.weekday()] not in self.weekdays:
            return False
        clock = local.time().replace(tzinfo=None)
        after = self.from_time is None or clock >= self.from_time
        before = self.to_time is None or clock <= self.to_time
        return after and before

    def describe(self) -> str:
        """One line."""
        if self.start is not None and self.end is not None:
            return f"{self.name}: {self.start.isoformat()} to {self.end.isoformat()}"
        days = ",".join(self.weekdays or _WEEKDAYS)
        hours = f" {self.from_time or '00:00'}-{self.to_time or '23:59'}"
        return f"{self.name}: every {days}{hours} {self.timezone}"


class Emergency(StrictModel):
    """Extra approvals that let a promotion through a freeze window."""

    approvals: list[ApprovalRule] = Field(
        default_factory=lambda: [ApprovalRule(role="admin", count=1)]
    )


class Policy(StrictModel):
    """A validated policy document."""

    policy: str = Field(min_length=1, max_length=100)
    description: str = ""
    tiers: list[str] = Field(default_factory=lambda: ["low", "medium", "high", "critical"])
    request_ttl: timedelta = timedelta(days=7)
    gates: dict[str, dict[Stage, Gate]] = Field(default_factory=dict)
    freeze_windows: list[FreezeWindow] = Field(default_factory=list)
    emergency: Emergency = Field(default_factory=Emergency)

    @field_validator("request_ttl", mode="before")
    @classmethod
    def _ttl(cls, value: Any) -> Any:
        if isinstance(value, str) and (match := _DURATION.match(value)):
            return timedelta(seconds=int(match[1]) * _DURATION_UNITS[match[2]])
        if isinstance(value, str) and not value.startswith("P"):  # ISO 8601 passes through
            raise ValueError(f"cannot read duration {value!r}; write e.g. 7d, 12h or 30m")
        return value

    @field_validator("tiers")
    @classmethod
    def _tier_names(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one risk tier")
        for tier in value:
            if not _NAME.match(tier):
                raise ValueError(f"tier {tier!r} must be lowercase letters, digits, - or _")
        if len(set(value)) != len(value):
            raise ValueError("tiers must be unique")
        return value

    @model_validator(mode="after")
    def _known_tiers(self) -> Policy:
        unknown = [tier for tier in self.gates if tier not in self.tiers]
        if unknown:
            raise ValueError(
                f"gates name unknown tier(s) {', '.join(unknown)}; "
                f"tiers are {', '.join(self.tiers)}"
            )
        if self.request_ttl <= timedelta(0):
            raise ValueError("request_ttl must be positive")
        return self

    def gate(self, tier: str, stage: str) -> Gate:
        """Return the gate for moving a version of ``tier`` into ``stage`` (empty when none).

        Raises:
            InvalidInputError: the tier is not one of this policy's tiers.
        """
        if tier not in self.tiers:
            raise InvalidInputError(
                f"risk tier {tier!r} is not in policy {self.policy!r}; "
                f"its tiers are {', '.join(self.tiers)}"
            )
        for gate_stage, gate in self.gates.get(tier, {}).items():
            if gate_stage == stage:
                return gate
        return Gate()

    def freeze_at(self, when: datetime, stage: str) -> FreezeWindow | None:
        """Return the freeze window covering ``stage`` at ``when``, if any."""
        for window in self.freeze_windows:
            if stage in window.stages and window.contains(when):
                return window
        return None

    def canonical(self) -> str:
        """Canonical JSON of the validated document: what the digest is computed over."""
        return canonical_json(self.model_dump(mode="json"))

    @property
    def digest(self) -> str:
        """SHA-256 of :meth:`canonical`: two documents meaning the same share it."""
        return sha256_hex(self.canonical())
