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

:func:`parse_policy` validates it completely and reports every problem with its
line number; the checks themselves are in ``_checks.py``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from steward.core import InvalidInputError, canonical_json, sha256_hex

__all__ = [
    "ApprovalRule",
    "BeatsChampionCheck",
    "CardCompletenessCheck",
    "Check",
    "DriftCheck",
    "FairnessCheck",
    "FreezeWindow",
    "Gate",
    "MetricCheck",
    "Policy",
    "PolicyError",
    "PolicyProblem",
    "ProhibitedAttributesCheck",
    "SignatureCheck",
    "parse_policy",
    "read_policy",
]

Stage = Literal["staging", "production"]
STAGES: tuple[Stage, ...] = ("staging", "production")
MAX_POLICY_BYTES = 1_000_000
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_SHORTHAND = re.compile(
    r"^\s*(?:(?P<dataset>[A-Za-z_][\w-]*)\s+)?(?P<metric>[A-Za-z_][\w.-]*)\s*"
    r"(?P<op>>=|<=|==|>|<)\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class PolicyProblem:
    """One thing wrong with a policy document: where (line, path) and what."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


class PolicyError(InvalidInputError):
    """A policy document is malformed; ``problems`` lists every issue found."""

    def __init__(self, source: str, problems: Sequence[PolicyProblem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        listed = "; ".join(str(p) for p in self.problems)
        super().__init__(f"invalid policy {source}: {listed}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricCheck(_Strict):
    """A logged metric (optionally on a dataset role) compared with a threshold."""

    check: Literal["metric"] = "metric"
    metric: str = Field(min_length=1, max_length=250)
    dataset: str | None = None
    op: Literal[">=", ">", "<=", "<", "=="] = ">="
    value: float

    def describe(self) -> str:
        """One line, e.g. ``holdout auc >= 0.8``."""
        on = f"{self.dataset} " if self.dataset else ""
        return f"{on}{self.metric} {self.op} {self.value:g}"


class BeatsChampionCheck(_Strict):
    """The candidate's metric beats the current champion's by at least ``margin``."""

    check: Literal["beats_champion"]
    metric: str = Field(min_length=1, max_length=250)
    dataset: str | None = None
    margin: float = 0.0
    higher_is_better: bool = True
    alias: str = "champion"

    def describe(self) -> str:
        """One line."""
        on = f"{self.dataset} " if self.dataset else ""
        sense = "higher" if self.higher_is_better else "lower"
        return f"{on}{self.metric} beats @{self.alias} by >= {self.margin:g} ({sense} is better)"


class FairnessCheck(_Strict):
    """A fairness metric on a protected attribute within bounds (``steward.quality``)."""

    check: Literal["fairness"]
    attribute: str = Field(min_length=1)
    metric: Literal[
        "disparate_impact",
        "demographic_parity_difference",
        "equal_opportunity_difference",
        "equalized_odds_difference",
    ] = "disparate_impact"
    dataset: str = "holdout"
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounded(self) -> FairnessCheck:
        if self.min is None and self.max is None:
            raise ValueError("give min or max (e.g. min: 0.8 for disparate impact)")
        return self

    def describe(self) -> str:
        """One line."""
        bounds = [f">= {self.min:g}" if self.min is not None else ""]
        bounds.append(f"<= {self.max:g}" if self.max is not None else "")
        limit = " and ".join(b for b in bounds if b)
        return f"{self.metric} by {self.attribute} on {self.dataset} {limit}"


class CardCompletenessCheck(_Strict):
    """The model card's completeness score (0..1) is at least ``min``."""

    check: Literal["card_completeness"]
    min: float = Field(ge=0.0, le=1.0)

    def describe(self) -> str:
        """One line."""
        return f"model card completeness >= {self.min:.0%}"


class SignatureCheck(_Strict):
    """The input signature is compatible with the version now in the target stage."""

    check: Literal["signature_compatible"]
    allow: Literal["compatible", "additive"] = "additive"

    def describe(self) -> str:
        """One line."""
        return f"signature change vs current is at most {self.allow}"


class ProhibitedAttributesCheck(_Strict):
    """No prohibited attribute among the inputs; no input a proxy for one above a threshold."""

    check: Literal["prohibited_attributes"]
    attributes: list[str] = Field(min_length=1)
    proxy_threshold: float | None = Field(default=None, gt=0.0, le=1.0)
    dataset: str = "train"

    def describe(self) -> str:
        """One line."""
        proxy = f", no proxy above {self.proxy_threshold:g}" if self.proxy_threshold else ""
        return f"no input among {', '.join(self.attributes)}{proxy}"


class DriftCheck(_Strict):
    """Drift between the training data and recent data stays below thresholds."""

    check: Literal["drift"]
    reference: str = "train"
    current: str = "recent"
    max_drifted_share: float = Field(default=0.0, ge=0.0, le=1.0)

    def describe(self) -> str:
        """One line."""
        return (
            f"share of columns drifted between {self.reference} and {self.current} "
            f"<= {self.max_drifted_share:.0%}"
        )


Check = Annotated[
    MetricCheck
    | BeatsChampionCheck
    | FairnessCheck
    | CardCompletenessCheck
    | SignatureCheck
    | ProhibitedAttributesCheck
    | DriftCheck,
    Field(discriminator="check"),
]


class ApprovalRule(_Strict):
    """``count`` distinct approvers holding ``role``."""

    role: str = Field(min_length=1, max_length=100)
    count: int = Field(default=1, ge=1, le=20)


class Gate(_Strict):
    """What moving a version of one risk tier into one stage requires."""

    checks: list[Check] = Field(default_factory=list)
    approvals: list[ApprovalRule] = Field(default_factory=list)
    separation_of_duties: bool = True

    @field_validator("checks", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [_expand_shorthand(item) for item in value]


def _expand_shorthand(item: Any) -> Any:
    if not isinstance(item, str):
        return item
    match = _SHORTHAND.match(item)
    if match is None:
        raise ValueError(
            f"cannot read check {item!r}; write it as '[dataset] metric OP number' "
            "(e.g. 'holdout auc >= 0.80') or as a mapping with a 'check' key"
        )
    return {
        "check": "metric",
        "dataset": match["dataset"],
        "metric": match["metric"],
        "op": match["op"],
        "value": float(match["value"]),
    }


class FreezeWindow(_Strict):
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


class Emergency(_Strict):
    """Extra approvals that let a promotion through a freeze window."""

    approvals: list[ApprovalRule] = Field(
        default_factory=lambda: [ApprovalRule(role="admin", count=1)]
    )


class Policy(_Strict):
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


def read_policy(path: str | Path) -> tuple[Policy, str]:
    """Read and validate a policy file (``.yaml``, ``.yml`` or ``.toml``).

    Returns:
        The policy and the document's text.

    Raises:
        PolicyError: the file is missing, too large, not YAML/TOML, or invalid.
    """
    file = Path(path)
    if not file.is_file():
        raise PolicyError(str(path), [PolicyProblem("", "no such file")])
    if file.stat().st_size > MAX_POLICY_BYTES:
        raise PolicyError(str(path), [PolicyProblem("", f"larger than {MAX_POLICY_BYTES} bytes")])
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(str(path), [PolicyProblem("", f"not UTF-8 text ({exc})")]) from None
    fmt: Literal["yaml", "toml"] = "toml" if file.suffix.lower() == ".toml" else "yaml"
    return parse_policy(text, fmt=fmt, source=str(path)), text


def parse_policy(
    text: str, *, fmt: Literal["yaml", "toml"] = "yaml", source: str = "<text>"
) -> Policy:
    """Validate a policy document given as text.

    Raises:
        PolicyError: every problem found, each with its line number when known.
    """
    if len(text.encode("utf-8")) > MAX_POLICY_BYTES:
        raise PolicyError(source, [PolicyProblem("", f"larger than {MAX_POLICY_BYTES} bytes")])
    root: yaml.Node | None = None
    try:
        if fmt == "toml":
            data: Any = tomllib.loads(text)
        else:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        line = int(found[1]) if found else None
        raise PolicyError(source, [PolicyProblem("", f"not valid TOML: {exc}", line)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line_no = mark.line + 1 if mark is not None else None
        raise PolicyError(
            source, [PolicyProblem("", f"not valid YAML: {problem}", line_no)]
        ) from None
    if not isinstance(data, dict):
        raise PolicyError(source, [PolicyProblem("", "a policy must be a mapping of settings")])
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = _document_path(data, error["loc"])
            path = ".".join(str(part) for part in loc)
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown setting (check the spelling)"
            line = _yaml_line(root, loc) if root is not None else _toml_line(text, loc)
            problems.append(PolicyProblem(path, message, line))
        raise PolicyError(source, problems) from None


_CHECK_KINDS = frozenset(
    {
        "metric",
        "beats_champion",
        "fairness",
        "card_completeness",
        "signature_compatible",
        "prohibited_attributes",
        "drift",
    }
)


def _document_path(data: Any, loc: Sequence[Any]) -> list[str | int]:
    """Drop the union tags pydantic puts in error locations (``checks.0.fairness.min``)."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(part, str) and part in _CHECK_KINDS and isinstance(node, dict | str):
            kind = node.get("check") if isinstance(node, dict) else "metric"
            if kind == part:
                continue
        path.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return path


def _yaml_line(root: yaml.Node, loc: Sequence[Any]) -> int | None:
    node, line = root, root.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    node, line = value, key.start_mark.line + 1
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _toml_line(text: str, loc: Sequence[Any]) -> int | None:
    """Best effort for TOML (the parser keeps no positions): the line defining the last key."""
    names = [str(part) for part in loc if isinstance(part, str)]
    lines = text.splitlines()
    for name in reversed(names):
        pattern = re.compile(
            rf"^\s*(\[+[^\]]*\b{re.escape(name)}\b[^\]]*\]+|{re.escape(name)}\s*=)"
        )
        for number, content in enumerate(lines, start=1):
            if pattern.search(content):
                return number
    return None
