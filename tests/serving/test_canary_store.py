"""Canaries on the metadata database: start, decisions with their audit events, conflicts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from steward.core import ConflictError, FrozenClock, InvalidInputError, NotFoundError
from steward.serving._canary import CanaryAnalysis
from steward.serving._canary_plan import CanaryPlan, CanaryState
from steward.serving._canary_store import (
    find_running_canary,
    get_canary,
    list_canary_decisions,
    record_decision,
    start_canary,
)
from steward.serving._windows import WindowStats
from steward.store import AuditLog, Database, unit_of_work

PLAN = CanaryPlan(min_requests=10, min_step_seconds=60, max_psi=None)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 3, 1, tzinfo=UTC))


def _windows(latency: float = 5.0) -> tuple[WindowStats, WindowStats]:
    canary, baseline = WindowStats(), WindowStats()
    for _ in range(20):
        canary.record(latency)
        baseline.record(5.0)
    return canary, baseline


def _start(database: Database, clock: FrozenClock, deployment: str = "fraud") -> str:
    with unit_of_work(database, actor="alice", clock=clock) as uow:
        return start_canary(
            uow, deployment=deployment, baseline="champion", canary="challenger", plan=PLAN
        ).id


def test_canary_store_start_decide_and_audit(database: Database, clock: FrozenClock) -> None:
    canary_id = _start(database, clock)
    analysis = CanaryAnalysis(PLAN)
    with database.read() as conn:
        record = get_canary(conn, canary_id)
        assert find_running_canary(conn, "fraud") == record
    assert record.state.share == 5.0 and record.created_by == "alice"
    assert record.plan == PLAN

    clock.advance(seconds=61)
    decision = analysis.evaluate(record.state, *_windows(), clock.now())
    with unit_of_work(database, actor="steward-worker", clock=clock) as uow:
        record = record_decision(uow, canary_id, decision)
    assert record.state.share == 10.0 and record.state.step_index == 1

    clock.advance(seconds=10)
    decision = analysis.evaluate(record.state, *_windows(latency=50.0), clock.now())
    with unit_of_work(database, actor="steward-worker", clock=clock) as uow:
        record = record_decision(uow, canary_id, decision)
    assert record.state.status == "rolled_back" and record.state.share == 0.0

    with database.read() as conn:
        decisions = list_canary_decisions(conn, canary_id)
        assert find_running_canary(conn, "fraud") is None
    assert [d.kind for d in decisions] == ["promote_step", "rollback"]
    assert decisions[1].details["metrics"]["canary_p95_ms"] > 40
    assert decisions[1].details["checks"][1]["passed"] is False

    events = AuditLog(database).list_events(
        object_type="canary", object_id=canary_id, newest_first=False
    )
    assert [e.action for e in events] == ["canary.start", "canary.promote_step", "canary.rollback"]
    assert events[0].actor == "alice"
    assert events[2].details["metrics"]["canary_requests"] == 20
    assert "p95 latency" in events[2].details["reasons"][0]
    assert AuditLog(database).verify().ok


def test_canary_store_holds_are_audited_too(database: Database, clock: FrozenClock) -> None:
    canary_id = _start(database, clock)
    with database.read() as conn:
        state = get_canary(conn, canary_id).state
    decision = CanaryAnalysis(PLAN).evaluate(state, WindowStats(), WindowStats(), clock.now())
    with unit_of_work(database, actor="w", clock=clock) as uow:
        record_decision(uow, canary_id, decision)
    events = AuditLog(database).list_events(
        object_type="canary", object_id=canary_id, newest_first=False
    )
    assert events[-1].action == "canary.hold"
    assert "0 of the 10 requests" in events[-1].details["reasons"][0]


def test_canary_store_second_decision_on_same_step_conflicts(
    database: Database, clock: FrozenClock
) -> None:
    canary_id = _start(database, clock)
    with database.read() as conn:
        state = get_canary(conn, canary_id).state
    clock.advance(seconds=61)
    # Two workers analyse the same step; the first one wins.
    first = CanaryAnalysis(PLAN).evaluate(state, *_windows(), clock.now())
    second = CanaryAnalysis(PLAN).evaluate(state, *_windows(), clock.now())
    with unit_of_work(database, actor="w1", clock=clock) as uow:
        record_decision(uow, canary_id, first)
    with pytest.raises(ConflictError, match=r"running at step 1.*not running at step 0"):
        with unit_of_work(database, actor="w2", clock=clock) as uow:
            record_decision(uow, canary_id, second)
    with database.read() as conn:
        assert len(list_canary_decisions(conn, canary_id)) == 1
        assert get_canary(conn, canary_id).state.step_index == 1


def test_canary_store_one_running_canary_per_deployment(
    database: Database, clock: FrozenClock
) -> None:
    _start(database, clock)
    with pytest.raises(ConflictError, match="already runs canary"):
        _start(database, clock)
    _start(database, clock, deployment="churn")


def test_canary_store_rejects_bad_input(database: Database, clock: FrozenClock) -> None:
    with unit_of_work(database, actor="a", clock=clock) as uow:
        with pytest.raises(InvalidInputError, match="both 'x'"):
            start_canary(uow, deployment="d", baseline="x", canary="x", plan=PLAN)
        with pytest.raises(InvalidInputError, match="deployment name must be 1-200"):
            start_canary(uow, deployment="", baseline="x", canary="y", plan=PLAN)
    with database.read() as conn:
        with pytest.raises(NotFoundError, match="no canary has id 'nope'"):
            get_canary(conn, "nope")
        with pytest.raises(NotFoundError):
            list_canary_decisions(conn, "nope")
    decision = CanaryAnalysis(PLAN).abort(CanaryState.start(PLAN, clock.now()), "x", clock.now())
    with pytest.raises(NotFoundError, match="no canary has id 'nope'"):
        with unit_of_work(database, actor="a", clock=clock) as uow:
            record_decision(uow, "nope", decision)
