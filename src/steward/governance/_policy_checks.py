"""The automated checks a policy gate can ask for, as validated policy settings.

Each kind is a strict, frozen model with a ``check`` tag and a one-line
:meth:`describe`; :data:`Check` is their tagged union. A metric check may also be
written as a string (``"holdout auc >= 0.80"``), which :func:`expand_shorthand`
turns into its mapping. Evaluating the checks against evidence is ``_checks.py``'s
job.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "CHECK_KINDS",
    "BeatsChampionCheck",
    "CardCompletenessCheck",
    "Check",
    "DriftCheck",
    "FairnessCheck",
    "MetricCheck",
    "ProhibitedAttributesCheck",
    "SignatureCheck",
    "StrictModel",
    "expand_shorthand",
]

_SHORTHAND = re.compile(
    r"^\s*(?:(?P<dataset>[A-Za-z_][\w-]*)\s+)?(?P<metric>[A-Za-z_][\w.-]*)\s*"
    r"(?P<op>>=|<=|==|>|<)\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)


class StrictModel(BaseModel):
    """A policy setting: unknown keys are refused and values are frozen once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricCheck(StrictModel):
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


class BeatsChampionCheck(StrictModel):
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


class FairnessCheck(StrictModel):
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


class CardCompletenessCheck(StrictModel):
    """The model card's completeness score (0..1) is at least ``min``."""

    check: Literal["card_completeness"]
    min: float = Field(ge=0.0, le=1.0)

    def describe(self) -> str:
        """One line."""
        return f"model card completeness >= {self.min:.0%}"


class SignatureCheck(StrictModel):
    """The input signature is compatible with the version now in the target stage."""

    check: Literal["signature_compatible"]
    allow: Literal["compatible", "additive"] = "additive"

    def describe(self) -> str:
        """One line."""
        return f"signature change vs current is at most {self.allow}"


class ProhibitedAttributesCheck(StrictModel):
    """No prohibited attribute among the inputs; no input a proxy for one above a threshold."""

    check: Literal["prohibited_attributes"]
    attributes: list[str] = Field(min_length=1)
    proxy_threshold: float | None = Field(default=None, gt=0.0, le=1.0)
    dataset: str = "train"

    def describe(self) -> str:
        """One line."""
        proxy = f", no proxy above {self.proxy_threshold:g}" if self.proxy_threshold else ""
        return f"no input among {', '.join(self.attributes)}{proxy}"


class DriftCheck(StrictModel):
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


# The ``check`` tags of the union above: pydantic names the union member in error
# locations, and the parser drops these names to report the document's own path.
CHECK_KINDS = frozenset(
    tag
    for model in get_args(get_args(Check)[0])
    for tag in get_args(model.model_fields["check"].annotation)
)


def expand_shorthand(item: Any) -> Any:
    """Turn a metric check written as a string into its mapping; leave anything else.

    ``"holdout auc >= 0.80"`` -> ``{"check": "metric", "dataset": "holdout",
    "metric": "auc", "op": ">=", "value": 0.8}``
    """
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
