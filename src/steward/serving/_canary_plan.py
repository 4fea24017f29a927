"""Canary plans: the traffic steps a canary climbs and what it must prove at each step.

:class:`CanaryPlan` is stored with the canary (JSON through ``to_dict``);
:class:`CanaryState` is where a canary stands.  The analysis that moves a
canary from step to step is :class:`~steward.serving._canary.CanaryAnalysis`.

A plan with ``shadow_first`` starts with a shadow stage (share 0): the canary
gets a mirrored copy of the traffic, its outputs logged and never returned,
and must pass the same checks before it answers its first share of requests.
The stages a canary walks are ``plan.stages``: ``(0, *steps)`` with a shadow
stage, else ``steps``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from steward.core import InvalidInputError

__all__ = ["CanaryPlan", "CanaryState", "CanaryStatus"]

CanaryStatus = Literal["running", "complete", "rolled_back"]


@dataclass(frozen=True)
class CanaryPlan:
    """How a canary progresses and what it must prove at each step.

    Attributes:
        steps: the canary's traffic shares in percent, strictly increasing, the
            last one 100 (reaching it completes the canary).
        min_requests: requests each side needs in a step's window before it is judged.
        max_error_rate_delta: the canary's error rate may exceed the baseline's by at most this.
        max_p95_latency_ratio: the canary's p95 latency may be at most this
            multiple of the baseline's.
        max_psi: the largest population stability index of the canary's
            predictions against the baseline's; None turns the check off.
        min_prediction_samples: prediction samples each side needs for the PSI check.
        min_step_seconds: the least time a step runs before promotion.
        psi_bins: quantile bins of the PSI on numeric predictions.
        shadow_first: start with a shadow stage (share 0, mirrored traffic only)
            before the first step.

    Raises:
        InvalidInputError: a setting out of range; the message names it.
    """

    steps: tuple[float, ...] = (5.0, 10.0, 25.0, 50.0, 100.0)
    min_requests: int = 500
    max_error_rate_delta: float = 0.01
    max_p95_latency_ratio: float = 1.5
    max_psi: float | None = 0.2
    min_prediction_samples: int = 200
    min_step_seconds: float = 300.0
    psi_bins: int = 10
    shadow_first: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(float(s) for s in self.steps))
        steps = self.steps
        if len(steps) < 2 or steps[-1] != 100.0:
            raise InvalidInputError(
                f"canary steps {list(steps)} must have at least two shares ending at 100, "
                "e.g. [5, 10, 25, 50, 100]"
            )
        if any(not 0 < s <= 100 for s in steps) or any(
            a >= b for a, b in itertools.pairwise(steps)
        ):
            raise InvalidInputError(
                f"canary steps {list(steps)} must be strictly increasing percentages in (0, 100]"
            )
        _at_least("min_requests", self.min_requests, 1)
        _at_least("min_prediction_samples", self.min_prediction_samples, 1)
        _at_least("psi_bins", self.psi_bins, 2)
        _in_range("max_error_rate_delta", self.max_error_rate_delta, 0.0, 1.0)
        _in_range("max_p95_latency_ratio", self.max_p95_latency_ratio, 1.0, math.inf)
        _in_range("min_step_seconds", self.min_step_seconds, 0.0, math.inf)
        if self.max_psi is not None:
            _in_range("max_psi", self.max_psi, 0.0, math.inf)
        if not isinstance(self.shadow_first, bool):
            raise InvalidInputError(
                f"canary plan shadow_first must be true or false, got {self.shadow_first!r}"
            )

    @property
    def stages(self) -> tuple[float, ...]:
        """The shares a canary walks through: a leading 0 (shadow) when ``shadow_first``."""
        return (0.0, *self.steps) if self.shadow_first else self.steps

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict that :meth:`from_dict` reads back."""
        return {
            "steps": list(self.steps),
            "min_requests": self.min_requests,
            "max_error_rate_delta": self.max_error_rate_delta,
            "max_p95_latency_ratio": self.max_p95_latency_ratio,
            "max_psi": self.max_psi,
            "min_prediction_samples": self.min_prediction_samples,
            "min_step_seconds": self.min_step_seconds,
            "psi_bins": self.psi_bins,
            "shadow_first": self.shadow_first,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CanaryPlan:
        """Build a plan from its dict form; missing keys take their defaults.

        Raises:
            InvalidInputError: an unknown key or a value out of range.
        """
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInputError(
                f"canary plan has unknown key(s) {', '.join(map(repr, unknown))}; "
                f"valid: {', '.join(sorted(known))}"
            )
        values = dict(data)
        if "steps" in values:
            steps = values["steps"]
            if not isinstance(steps, list | tuple) or not all(
                isinstance(s, int | float) and not isinstance(s, bool) for s in steps
            ):
                raise InvalidInputError(f"canary steps must be a list of numbers, got {steps!r}")
            values["steps"] = tuple(steps)
        return cls(**values)


def _at_least(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidInputError(f"canary plan {name} must be an integer >= {low}, got {value!r}")


def _in_range(name: str, value: Any, low: float, high: float) -> None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or math.isnan(value) or not low <= value <= high:
        raise InvalidInputError(
            f"canary plan {name} must be a number in [{low:g}, {high:g}], got {value!r}"
        )


@dataclass(frozen=True)
class CanaryState:
    """Where a canary stands: its step, since when, and whether it is still running.

    Attributes:
        step_index: the index in ``plan.stages`` of the current step.
        share: the canary's current traffic share in percent (0 in the shadow
            stage and after a rollback).
        step_started_at: when the current step began (its window's start).
        status: ``running``, ``complete`` or ``rolled_back``.
    """

    step_index: int
    share: float
    step_started_at: datetime
    status: CanaryStatus = "running"

    @classmethod
    def start(cls, plan: CanaryPlan, now: datetime) -> CanaryState:
        """Return the state of a canary starting its first step at ``now``."""
        return cls(step_index=0, share=plan.stages[0], step_started_at=now)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "step_index": self.step_index,
            "share": self.share,
            "step_started_at": self.step_started_at.isoformat(),
            "status": self.status,
        }
