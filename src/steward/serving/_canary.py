"""Progressive canary analysis: a pure state machine from window statistics to decisions.

A :class:`CanaryPlan` moves a canary variant through traffic steps (by default
5 → 10 → 25 → 50 → 100 %, optionally after a shadow stage at 0 %).  At each
step, :meth:`CanaryAnalysis.evaluate` compares the canary's window of traffic
with the baseline's and returns a :class:`Decision`:

- ``hold``: not enough data yet (too few requests or prediction samples on
  either side; errors and latency are judged once the requests are there, even
  while prediction samples are short) or the step has not run its minimum duration;
- ``rollback``: a check failed: error-rate delta, p95 latency ratio, or the
  PSI of the canary's predictions against the baseline's (``steward.quality``);
  or the canary's errors already make the error-rate check fail whatever the
  remaining requests of the step do;
- ``promote_step``: every check passed for long enough; move to the next step;
- ``complete``: the checks passed at the last step below 100 %: the canary
  takes all traffic.

In the shadow stage the canary's window holds its mirrored calls; the checks are
the same.

No I/O, no clock of its own: the caller passes the windows and the time, so
the same inputs always give the same decision.  Every decision carries its
numbers, checks and reasons, for the audit chain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from steward.core import ConflictError, InvalidInputError
from steward.quality import DriftDetector
from steward.serving._canary_plan import CanaryPlan, CanaryState
from steward.serving._windows import Sample, WindowStats

__all__ = [
    "CanaryAnalysis",
    "CanaryMetrics",
    "Check",
    "Decision",
    "DecisionKind",
    "share_text",
]

DecisionKind = Literal["promote_step", "hold", "rollback", "complete"]


@dataclass(frozen=True)
class Check:
    """One criterion of a canary step.

    Attributes:
        name: ``error_rate_delta``, ``p95_latency_ratio`` or ``prediction_psi``.
        value: the measured value; None when it could not be measured.
        limit: the largest value allowed.
        passed: True or False; None when not evaluated (``detail`` says why).
        detail: a sentence with the numbers, for people and the audit chain.
    """

    name: str
    value: float | None
    limit: float
    passed: bool | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "name": self.name,
            "value": _finite(self.value),
            "limit": _finite(self.limit),
            "passed": self.passed,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class CanaryMetrics:
    """The numbers a decision was made on (None where a side had no data)."""

    canary_requests: int
    baseline_requests: int
    canary_errors: int
    baseline_errors: int
    canary_error_rate: float | None
    baseline_error_rate: float | None
    canary_p95_ms: float | None
    baseline_p95_ms: float | None
    canary_samples: int
    baseline_samples: int
    step_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {name: _finite(getattr(self, name)) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class Decision:
    """What the analysis decided for one step, with everything it was based on.

    Attributes:
        kind: ``promote_step``, ``hold``, ``rollback`` or ``complete``.
        decided_at: the time passed to the analysis.
        step_index: the step that was analysed.
        share: the canary's share (percent) during that step.
        next_share: the canary's share (percent) after the decision (0 on rollback);
            the router takes a fraction: ``router.set_canary_share(next_share / 100)``.
        state: the canary's state after the decision.
        metrics: the measured numbers.
        checks: each criterion with its value, limit and verdict.
        reasons: sentences saying why, in order of importance.
    """

    kind: DecisionKind
    decided_at: datetime
    step_index: int
    share: float
    next_share: float
    state: CanaryState
    metrics: CanaryMetrics | None
    checks: tuple[Check, ...] = ()
    reasons: tuple[str, ...] = ()

    @property
    def resets_window(self) -> bool:
        """True when the caller must start fresh windows (a new step began)."""
        return self.kind == "promote_step"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict: what the audit chain records."""
        return {
            "kind": self.kind,
            "decided_at": self.decided_at.isoformat(),
            "step_index": self.step_index,
            "share": self.share,
            "next_share": self.next_share,
            "state": self.state.to_dict(),
            "metrics": None if self.metrics is None else self.metrics.to_dict(),
            "checks": [c.to_dict() for c in self.checks],
            "reasons": list(self.reasons),
        }


def share_text(share: float) -> str:
    """Say where a canary stands: ``in shadow`` at 0 %, else ``at 25 %``."""
    return "in shadow" if share == 0 else f"at {share:g} %"


def _finite(value: Any) -> Any:
    # The audit chain's canonical JSON has no inf/NaN; an unbounded ratio is recorded as None.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class CanaryAnalysis:
    """Judge a canary step from the canary's and the baseline's windows.

    Example:
        >>> from datetime import UTC, datetime, timedelta
        >>> plan = CanaryPlan(min_requests=100, min_step_seconds=60, max_psi=None)
        >>> analysis = CanaryAnalysis(plan)
        >>> start = datetime(2026, 1, 1, tzinfo=UTC)
        >>> state = CanaryState.start(plan, start)
        >>> canary, baseline = WindowStats(), WindowStats()
        >>> for _ in range(100):
        ...     canary.record(5.0)
        ...     baseline.record(5.0)
        >>> decision = analysis.evaluate(state, canary, baseline, start + timedelta(seconds=61))
        >>> decision.kind, decision.next_share
        ('promote_step', 10.0)
    """

    plan: CanaryPlan = field(default_factory=CanaryPlan)

    def evaluate(
        self,
        state: CanaryState,
        canary: WindowStats,
        baseline: WindowStats,
        now: datetime,
    ) -> Decision:
        """Decide what to do with the current step.

        Args:
            state: where the canary stands.
            canary: the canary's window since ``state.step_started_at``.
            baseline: the baseline's window over the same time.
            now: the time of the decision.

        Returns:
            The decision; ``decision.state`` is the state to store.

        Raises:
            ConflictError: the canary already completed or was rolled back.
        """
        self._check_running(state)
        metrics = _metrics(canary, baseline, (now - state.step_started_at).total_seconds())
        plan = self.plan
        early = self._certain_error_failure(metrics)
        if early is not None:
            return self._decide("rollback", state, now, metrics, (early,), (early.detail,))
        waiting = self._waiting_for_requests(metrics)
        if waiting:
            return self._decide("hold", state, now, metrics, (), tuple(waiting))
        # Errors and latency are judged as soon as the requests are there: a canary
        # whose every call fails has no predictions to wait for.
        checks: tuple[Check, ...] = (self._error_check(metrics), self._latency_check(metrics))
        waiting = self._waiting_for_samples(metrics)
        if waiting:
            checks += (Check("prediction_psi", None, self.plan.max_psi or 0.0, None, waiting[0]),)
        else:
            checks += (self._psi_check(canary.predictions.values, baseline.predictions.values),)
        failed = tuple(c.detail for c in checks if c.passed is False)
        if failed:
            return self._decide("rollback", state, now, metrics, checks, failed)
        if waiting:
            return self._decide("hold", state, now, metrics, checks, tuple(waiting))
        if metrics.step_seconds < plan.min_step_seconds:
            reason = (
                f"checks pass; the step has run {metrics.step_seconds:.0f} s of the "
                f"{plan.min_step_seconds:.0f} s minimum"
            )
            return self._decide("hold", state, now, metrics, checks, (reason,))
        kind: DecisionKind = (
            "complete" if state.step_index + 2 >= len(plan.stages) else "promote_step"
        )
        target = plan.stages[state.step_index + 1]
        reason = f"every check passed {share_text(state.share)}; moving to {target:g} %"
        return self._decide(kind, state, now, metrics, checks, (reason,))

    def abort(self, state: CanaryState, reason: str, now: datetime) -> Decision:
        """Roll the canary back for a reason found outside the windows.

        For example: its circuit breaker opened, or its model failed to load.

        Raises:
            ConflictError: the canary already completed or was rolled back.
        """
        self._check_running(state)
        return self._decide("rollback", state, now, None, (), (reason,))

    # -- the parts -----------------------------------------------------------

    def _check_running(self, state: CanaryState) -> None:
        if state.status != "running":
            raise ConflictError(
                f"the canary is {state.status.replace('_', ' ')}; nothing is left to decide "
                "(start a new canary to try again)"
            )
        if not 0 <= state.step_index < len(self.plan.stages) - 1:
            raise InvalidInputError(
                f"canary step index {state.step_index} is outside the plan's stages "
                f"{list(self.plan.stages)} (the last step is completion, never analysed)"
            )

    def _certain_error_failure(self, m: CanaryMetrics) -> Check | None:
        # Before min_requests, roll back only when failure is already certain: even
        # if every remaining request of the minimum succeeds, the delta exceeds the limit.
        if m.canary_requests >= self.plan.min_requests or m.baseline_error_rate is None:
            return None
        floor_rate = m.canary_errors / self.plan.min_requests
        delta = floor_rate - m.baseline_error_rate
        if delta <= self.plan.max_error_rate_delta:
            return None
        return Check(
            "error_rate_delta",
            delta,
            self.plan.max_error_rate_delta,
            False,
            f"the canary already has {m.canary_errors} errors in {m.canary_requests} requests: "
            f"its error rate over the {self.plan.min_requests}-request minimum is at least "
            f"{floor_rate:.2%} against the baseline's {m.baseline_error_rate:.2%}, beyond the "
            f"allowed +{self.plan.max_error_rate_delta:.2%}",
        )

    def _waiting_for_requests(self, m: CanaryMetrics) -> list[str]:
        plan = self.plan
        return [
            f"the {side} has {count} of the {plan.min_requests} requests a step needs"
            for side, count in (("canary", m.canary_requests), ("baseline", m.baseline_requests))
            if count < plan.min_requests
        ]

    def _waiting_for_samples(self, m: CanaryMetrics) -> list[str]:
        plan = self.plan
        if plan.max_psi is None:
            return []
        return [
            f"the {side} has {count} of the {plan.min_prediction_samples} prediction samples "
            "the PSI check needs"
            for side, count in (("canary", m.canary_samples), ("baseline", m.baseline_samples))
            if count < plan.min_prediction_samples
        ]

    def _error_check(self, m: CanaryMetrics) -> Check:
        canary_rate, baseline_rate = m.canary_error_rate or 0.0, m.baseline_error_rate or 0.0
        delta = canary_rate - baseline_rate
        limit = self.plan.max_error_rate_delta
        passed = delta <= limit
        return Check(
            "error_rate_delta",
            delta,
            limit,
            passed,
            f"error rate {canary_rate:.2%} on the canary vs {baseline_rate:.2%} on the baseline: "
            f"delta {delta:+.2%} {'within' if passed else 'beyond'} the allowed +{limit:.2%}",
        )

    def _latency_check(self, m: CanaryMetrics) -> Check:
        canary_p95, baseline_p95 = m.canary_p95_ms or 0.0, m.baseline_p95_ms or 0.0
        ratio = canary_p95 / baseline_p95 if baseline_p95 > 0 else math.inf
        limit = self.plan.max_p95_latency_ratio
        passed = ratio <= limit
        return Check(
            "p95_latency_ratio",
            ratio,
            limit,
            passed,
            f"p95 latency {canary_p95:.2f} ms on the canary vs {baseline_p95:.2f} ms on the "
            f"baseline: {ratio:.2f}x, {'within' if passed else 'beyond'} the allowed {limit:g}x",
        )

    def _psi_check(self, canary: Sequence[Sample], baseline: Sequence[Sample]) -> Check:
        limit = self.plan.max_psi
        if limit is None:
            return Check("prediction_psi", None, math.inf, None, "the PSI check is turned off")
        numeric = [isinstance(v, float) for v in (*canary, *baseline)]
        if any(numeric) and not all(numeric):
            return Check(
                "prediction_psi",
                None,
                limit,
                False,
                "the predictions mix numbers and labels, so their distributions cannot be "
                "compared; record one kind of prediction per deployment",
            )
        detector = DriftDetector(method="psi", threshold=limit, bins=self.plan.psi_bins, n_jobs=1)
        psi = detector.fit(list(baseline)).score(list(canary))["value"].statistic
        psi = math.inf if psi is None else psi
        passed = psi <= limit
        return Check(
            "prediction_psi",
            psi,
            limit,
            passed,
            f"PSI of the canary's predictions against the baseline's is {psi:.3f}, "
            f"{'within' if passed else 'beyond'} the allowed {limit:g}",
        )

    def _decide(
        self,
        kind: DecisionKind,
        state: CanaryState,
        now: datetime,
        metrics: CanaryMetrics | None,
        checks: tuple[Check, ...],
        reasons: tuple[str, ...],
    ) -> Decision:
        steps = self.plan.stages
        if kind == "rollback":
            after = replace(state, share=0.0, status="rolled_back")
        elif kind == "complete":
            after = CanaryState(len(steps) - 1, steps[-1], now, "complete")
        elif kind == "promote_step":
            after = CanaryState(state.step_index + 1, steps[state.step_index + 1], now)
        else:
            after = state
        return Decision(
            kind=kind,
            decided_at=now,
            step_index=state.step_index,
            share=state.share,
            next_share=after.share,
            state=after,
            metrics=metrics,
            checks=checks,
            reasons=reasons,
        )


def _metrics(canary: WindowStats, baseline: WindowStats, seconds: float) -> CanaryMetrics:
    return CanaryMetrics(
        canary_requests=canary.requests,
        baseline_requests=baseline.requests,
        canary_errors=canary.errors,
        baseline_errors=baseline.errors,
        canary_error_rate=canary.error_rate,
        baseline_error_rate=baseline.error_rate,
        canary_p95_ms=canary.latency.quantile(0.95),
        baseline_p95_ms=baseline.latency.quantile(0.95),
        canary_samples=len(canary.predictions.values),
        baseline_samples=len(baseline.predictions.values),
        step_seconds=max(seconds, 0.0),
    )
