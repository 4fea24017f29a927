"""Canary analysis: the state machine from windows to decisions, with its numbers."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steward.core import ConflictError, InvalidInputError, canonical_json
from steward.serving._canary import CanaryAnalysis, Decision
from steward.serving._canary_plan import CanaryPlan, CanaryState
from steward.serving._routing import Router
from steward.serving._routing_spec import RoutingSpec, Variant
from steward.serving._windows import WindowStats

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PLAN = CanaryPlan(
    min_requests=200,
    min_prediction_samples=100,
    min_step_seconds=60,
    max_error_rate_delta=0.02,
    max_p95_latency_ratio=1.5,
    max_psi=0.2,
)


def _window(
    n: int,
    *,
    error_rate: float = 0.0,
    latency: float = 10.0,
    shift: float = 0.0,
    seed: int = 0,
    predictions: bool = True,
) -> WindowStats:
    rng = np.random.default_rng(seed)
    window = WindowStats(rng=random.Random(seed))
    for i in range(n):
        window.record(
            float(latency * rng.uniform(0.8, 1.2)),
            error=i < round(n * error_rate),
            prediction=float(rng.beta(2 + shift, 5)) if predictions else None,
        )
    return window


def _after(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _start(plan: CanaryPlan = PLAN) -> CanaryState:
    return CanaryState.start(plan, T0)


def _evaluate(canary: WindowStats, baseline: WindowStats, seconds: float = 120) -> Decision:
    return CanaryAnalysis(PLAN).evaluate(_start(), canary, baseline, _after(seconds))


def test_canary_promotes_a_healthy_step() -> None:
    decision = _evaluate(_window(300, seed=1), _window(3_000, seed=2))
    assert decision.kind == "promote_step"
    assert (decision.step_index, decision.share, decision.next_share) == (0, 5.0, 10.0)
    assert decision.state == CanaryState(1, 10.0, _after(120))
    assert decision.resets_window
    assert [c.name for c in decision.checks] == [
        "error_rate_delta",
        "p95_latency_ratio",
        "prediction_psi",
    ]
    assert all(c.passed for c in decision.checks)
    assert decision.metrics is not None
    assert decision.metrics.canary_requests == 300
    assert decision.metrics.baseline_requests == 3_000
    assert "moving to 10 %" in decision.reasons[0]


def test_canary_holds_until_enough_requests() -> None:
    decision = _evaluate(_window(150, seed=1), _window(3_000, seed=2))
    assert decision.kind == "hold"
    assert decision.state == _start()
    assert decision.reasons == ("the canary has 150 of the 200 requests a step needs",)
    assert not decision.resets_window


def test_canary_holds_until_minimum_step_duration() -> None:
    decision = _evaluate(_window(300, seed=1), _window(3_000, seed=2), seconds=59)
    assert decision.kind == "hold"
    assert "has run 59 s of the 60 s minimum" in decision.reasons[0]
    assert all(c.passed for c in decision.checks)


def test_canary_holds_without_prediction_samples() -> None:
    canary = _window(300, seed=1, predictions=False)
    decision = _evaluate(canary, _window(3_000, seed=2))
    assert decision.kind == "hold"
    assert "0 of the 100 prediction samples" in decision.reasons[0]


def test_canary_psi_check_can_be_turned_off() -> None:
    plan = CanaryPlan(min_requests=200, min_step_seconds=0, max_psi=None)
    canary = _window(300, seed=1, predictions=False)
    baseline = _window(300, seed=2, predictions=False)
    decision = CanaryAnalysis(plan).evaluate(CanaryState.start(plan, T0), canary, baseline, T0)
    assert decision.kind == "promote_step"
    assert decision.checks[2].passed is None
    assert canonical_json(decision.to_dict())  # no infinity in the audit record


def test_canary_rolls_back_on_error_rate() -> None:
    decision = _evaluate(_window(400, error_rate=0.05, seed=1), _window(3_000, seed=2))
    assert decision.kind == "rollback"
    assert decision.next_share == 0.0
    assert decision.state.status == "rolled_back"
    failed = [c for c in decision.checks if c.passed is False]
    assert [c.name for c in failed] == ["error_rate_delta"]
    assert failed[0].value == pytest.approx(0.05)
    assert "error rate 5.00% on the canary vs 0.00% on the baseline" in decision.reasons[0]


def test_canary_rolls_back_on_errors_while_prediction_samples_are_short() -> None:
    # Every call of the canary failed: it has no predictions, and needs none to fail.
    canary = _window(300, error_rate=1.0, seed=1, predictions=False)
    decision = _evaluate(canary, _window(3_000, seed=2))
    assert decision.kind == "rollback"
    assert [(c.name, c.passed) for c in decision.checks] == [
        ("error_rate_delta", False),
        ("p95_latency_ratio", True),
        ("prediction_psi", None),
    ]
    assert "0 of the 100 prediction samples" in decision.checks[2].detail


def test_canary_rolls_back_early_when_failure_is_certain() -> None:
    # 10 errors in 20 requests: even 180 successes to come leave 5 % > 2 % allowed.
    decision = _evaluate(_window(20, error_rate=0.5, seed=1), _window(3_000, seed=2))
    assert decision.kind == "rollback"
    assert decision.checks[0].name == "error_rate_delta"
    assert "already has 10 errors in 20 requests" in decision.reasons[0]


def test_canary_waits_when_early_errors_could_still_pass() -> None:
    decision = _evaluate(_window(20, error_rate=0.1, seed=1), _window(3_000, seed=2))
    assert decision.kind == "hold"


def test_canary_rolls_back_on_latency() -> None:
    decision = _evaluate(_window(300, latency=30, seed=1), _window(3_000, latency=10, seed=2))
    assert decision.kind == "rollback"
    latency = decision.checks[1]
    assert latency.passed is False
    assert latency.value == pytest.approx(3.0, rel=0.1)
    assert "beyond the allowed 1.5x" in latency.detail


def test_canary_rolls_back_on_prediction_drift() -> None:
    decision = _evaluate(_window(1_000, shift=4.0, seed=1), _window(3_000, seed=2))
    assert decision.kind == "rollback"
    psi = decision.checks[2]
    assert psi.passed is False and psi.value is not None and psi.value > 0.2
    assert decision.reasons == (psi.detail,)


def test_canary_label_predictions_compared_by_psi() -> None:
    canary, baseline = WindowStats(rng=random.Random(0)), WindowStats(rng=random.Random(1))
    for i in range(400):
        canary.record(5.0, prediction="fraud" if i % 2 else "ok")
        baseline.record(5.0, prediction="fraud" if i % 10 == 0 else "ok")
    decision = _evaluate(canary, baseline)
    assert decision.kind == "rollback"
    assert decision.checks[2].passed is False


def test_canary_mixed_prediction_kinds_fail_clearly() -> None:
    canary, baseline = _window(300, seed=1), WindowStats()
    for _ in range(300):
        baseline.record(10.0, prediction="ok")
    decision = _evaluate(canary, baseline)
    assert decision.kind == "rollback"
    assert "mix numbers and labels" in decision.reasons[0]


def test_canary_completes_after_last_step_below_100() -> None:
    state = CanaryState(3, 50.0, T0)
    decision = CanaryAnalysis(PLAN).evaluate(
        state, _window(300, seed=1), _window(300, seed=2), _after(61)
    )
    assert decision.kind == "complete"
    assert decision.next_share == 100.0
    assert decision.state == CanaryState(4, 100.0, _after(61), "complete")


def test_canary_walks_every_step_to_completion() -> None:
    analysis = CanaryAnalysis(PLAN)
    state = _start()
    now = T0
    shares = [state.share]
    for step in range(10):
        now += timedelta(minutes=5)
        decision = analysis.evaluate(
            state, _window(300, seed=step), _window(300, seed=100 + step), now
        )
        state = decision.state
        shares.append(state.share)
        if state.status != "running":
            break
    assert shares == [5.0, 10.0, 25.0, 50.0, 100.0]
    assert state.status == "complete"
    with pytest.raises(ConflictError, match="the canary is complete"):
        analysis.evaluate(state, _window(300), _window(300), now)


def test_canary_abort_rolls_back_with_the_reason() -> None:
    analysis = CanaryAnalysis(PLAN)
    decision = analysis.abort(_start(), "circuit breaker of 'cand' opened", _after(5))
    assert decision.kind == "rollback" and decision.metrics is None
    assert decision.reasons == ("circuit breaker of 'cand' opened",)
    with pytest.raises(ConflictError, match="rolled back"):
        analysis.abort(decision.state, "again", _after(6))


def test_canary_decision_to_dict_is_auditable() -> None:
    decision = _evaluate(_window(300, latency=30, seed=1), _window(3_000, seed=2))
    data = json.loads(canonical_json(decision.to_dict()))
    assert data["kind"] == "rollback"
    assert data["metrics"]["canary_requests"] == 300
    assert data["metrics"]["canary_p95_ms"] > data["metrics"]["baseline_p95_ms"]
    assert {c["name"] for c in data["checks"]} == {
        "error_rate_delta",
        "p95_latency_ratio",
        "prediction_psi",
    }
    assert data["state"]["status"] == "rolled_back"


def test_canary_zero_baseline_latency_counts_as_unbounded_ratio() -> None:
    canary, baseline = WindowStats(), WindowStats()
    for _ in range(300):
        canary.record(1.0, prediction=0.5)
        baseline.record(0.0, prediction=0.5)
    decision = _evaluate(canary, baseline)
    assert decision.kind == "rollback"
    assert decision.to_dict()["checks"][1]["value"] is None  # inf is not JSON


def test_canary_rejects_a_state_outside_the_plan() -> None:
    with pytest.raises(InvalidInputError, match="step index 4 is outside"):
        CanaryAnalysis(PLAN).evaluate(CanaryState(4, 100.0, T0), WindowStats(), WindowStats(), T0)


@given(
    canary_n=st.integers(0, 400),
    baseline_n=st.integers(0, 400),
    errors=st.floats(0, 1),
    seconds=st.floats(0, 1_000),
    step=st.integers(0, 3),
)
@settings(max_examples=60, deadline=None)
def test_canary_decision_is_always_consistent(
    canary_n: int, baseline_n: int, errors: float, seconds: float, step: int
) -> None:
    plan = CanaryPlan(min_requests=100, min_step_seconds=300, max_psi=None)
    state = CanaryState(step, plan.steps[step], T0)
    canary = _window(canary_n, error_rate=errors, seed=1, predictions=False)
    baseline = _window(baseline_n, seed=2, predictions=False)
    decision = CanaryAnalysis(plan).evaluate(state, canary, baseline, _after(seconds))
    assert decision.reasons
    canonical_json(decision.to_dict())
    if decision.kind == "hold":
        assert decision.state == state
    elif decision.kind == "rollback":
        assert decision.state.share == 0 and decision.state.status == "rolled_back"
    else:
        assert seconds >= 300 and canary_n >= 100 and baseline_n >= 100
        assert decision.state.share == plan.steps[step + 1]
        assert decision.state.status == ("complete" if step == 3 else "running")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": (5, 50)}, "ending at 100"),
        ({"steps": (100,)}, "at least two shares"),
        ({"steps": (10, 5, 100)}, "strictly increasing"),
        ({"steps": (0, 50, 100)}, "strictly increasing"),
        ({"min_requests": 0}, "min_requests must be an integer >= 1"),
        ({"min_requests": True}, "min_requests"),
        ({"max_error_rate_delta": -0.1}, "max_error_rate_delta"),
        ({"max_p95_latency_ratio": 0.5}, "max_p95_latency_ratio"),
        ({"max_psi": float("nan")}, "max_psi"),
        ({"min_step_seconds": -1}, "min_step_seconds"),
        ({"psi_bins": 1}, "psi_bins"),
    ],
)
def test_canary_plan_rejects_bad_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        CanaryPlan(**kwargs)  # type: ignore[arg-type]


def test_canary_plan_round_trips_and_rejects_unknown_keys() -> None:
    plan = CanaryPlan(steps=(1, 20, 100), max_psi=None, min_requests=50)
    assert CanaryPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    assert CanaryPlan.from_dict({}) == CanaryPlan()
    with pytest.raises(InvalidInputError, match=r"unknown key\(s\) 'stpes'"):
        CanaryPlan.from_dict({"stpes": [5, 100]})
    with pytest.raises(InvalidInputError, match="list of numbers"):
        CanaryPlan.from_dict({"steps": "5,100"})


def _drive_canary(error_rate: float, seed: int) -> tuple[list[float], list[str]]:
    """Route simulated traffic through a Router whose canary share follows the analysis."""
    spec = RoutingSpec(
        variants=(Variant("stable", "fraud/7"), Variant("cand", "fraud/8", weight=0)),
        strategy="canary",
        canary="cand",
    )
    plan = CanaryPlan(min_requests=100, min_step_seconds=60, max_error_rate_delta=0.02)
    router = Router(spec, rng=random.Random(seed))
    analysis = CanaryAnalysis(plan)
    world = np.random.default_rng(seed)
    state = CanaryState.start(plan, T0)
    router.set_canary_share(state.share / 100)
    windows = {"stable": WindowStats(), "cand": WindowStats()}
    shares, kinds = [router.canary_share or 0.0], []
    now = T0
    for _ in range(200):
        for _ in range(500):
            name = router.route().variant.name
            failed = name == "cand" and world.random() < error_rate
            windows[name].record(
                float(world.uniform(4, 6)), error=failed, prediction=float(world.beta(2, 5))
            )
        now += timedelta(seconds=30)
        decision = analysis.evaluate(state, windows["cand"], windows["stable"], now)
        kinds.append(decision.kind)
        state = decision.state
        router.set_canary_share(decision.next_share / 100)
        shares.append(router.canary_share or 0.0)
        if decision.resets_window:
            windows = {"stable": WindowStats(), "cand": WindowStats()}
        if state.status != "running":
            break
    return shares, kinds


def test_canary_with_router_healthy_candidate_takes_all_traffic() -> None:
    shares, kinds = _drive_canary(error_rate=0.0, seed=3)
    assert kinds[-1] == "complete"
    assert sorted(set(shares)) == pytest.approx([0.05, 0.10, 0.25, 0.50, 1.0])
    assert "rollback" not in kinds


def test_canary_with_router_failing_candidate_is_rolled_back() -> None:
    shares, kinds = _drive_canary(error_rate=0.2, seed=4)
    assert kinds[-1] == "rollback"
    assert shares[-1] == 0.0
    assert max(shares) <= 0.10  # caught at an early step
