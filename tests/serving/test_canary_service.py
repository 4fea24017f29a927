"""Canaries of deployments: start, decisions from the prediction log, revisions, abort, audit."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from tests.serving._deploy_support import Home, open_home, record

from steward.core import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    Principal,
    ScopeAuthorizer,
)
from steward.serving import (
    CanaryPlan,
    CanaryService,
    DeploymentService,
    PredictionArchive,
    PredictionLog,
    PredictionLogSettings,
    PredictionRecord,
    Variant,
)
from steward.serving._windows import WindowStats

PLAN = CanaryPlan(
    steps=(50, 100),
    min_requests=40,
    min_prediction_samples=200,
    psi_bins=5,
    min_step_seconds=0,
    shadow_first=True,
)


class Traffic:
    """Writes what a gateway would log for a deployment, request by request."""

    def __init__(self, path: Path) -> None:
        settings = PredictionLogSettings(home=path)  # type: ignore[call-arg]
        self.log = PredictionLog.from_settings(settings, worker_id="test-gateway")
        self.archive = PredictionArchive.from_settings(settings)
        self.rng = random.Random(3)
        self.count = 0

    def send(
        self,
        variant: str,
        n: int,
        *,
        shadow: bool = False,
        error: bool = False,
        shift: float = 0.0,
        latency: float = 4.0,
        test: bool = False,
    ) -> None:
        for _ in range(n):
            self.count += 1
            p = min(max(self.rng.betavariate(2, 5) + shift, 0.0), 1.0)
            outputs = (
                None if error else [{"label": int(p > 0.5), "probabilities": {"0": 1 - p, "1": p}}]
            )
            self.log.append(
                PredictionRecord(
                    request_id=f"r{self.count}",
                    ts=datetime.now(UTC),
                    deployment="fraud-api",
                    revision=1,
                    variant=variant,
                    model_version="fraud:x",
                    inputs=record(),
                    outputs=outputs,
                    latency_ms=latency * self.rng.uniform(0.8, 1.2),
                    shadow=shadow,
                    test=test,
                    error="RuntimeError: model exploded" if error else None,
                ),
                durable=False,
            )
        self.log.flush()


@pytest.fixture
def home(database_url: str, tmp_path: Path) -> Iterator[Home]:
    h = open_home(tmp_path / "home", database_url)
    h.deployments.create("fraud-api", [Variant("champion", "fraud@champion")])
    yield h
    h.store.close()


@pytest.fixture
def traffic(home: Home) -> Iterator[Traffic]:
    t = Traffic(home.path)
    yield t
    t.log.close()


@pytest.fixture
def canaries(home: Home, traffic: Traffic) -> CanaryService:
    return CanaryService(home.deployments, archive=traffic.archive)


def _spec(home: Home) -> list[tuple[str, str, str, float]]:
    latest = home.deployments.get("fraud-api").latest
    return [(v.name, v.model, v.role, v.weight) for v in latest.spec.variants]


def test_canary_healthy_candidate_goes_from_shadow_to_complete(
    home: Home, traffic: Traffic, canaries: CanaryService
) -> None:
    started = canaries.start("fraud-api", "fraud:2", plan=PLAN, reason="try v2")
    assert started.state.share == 0.0 and started.baseline == "champion"
    assert _spec(home) == [
        ("champion", "fraud:1", "primary", 1.0),
        ("canary", "fraud:2", "shadow", 0.0),
    ]
    assert home.deployments.get("fraud-api").latest.requested["champion"] == "fraud@champion"

    traffic.send("champion", 300)
    traffic.send("canary", 300, shadow=True)
    first = canaries.evaluate_now("fraud-api")
    assert (first.kind, first.share, first.next_share) == ("promote_step", 0.0, 50.0)
    assert first.metrics is not None and first.metrics.canary_requests == 300
    dep = home.deployments.get("fraud-api")
    assert dep.latest.spec.strategy == "canary"
    assert _spec(home) == [
        ("champion", "fraud:1", "primary", 50.0),
        ("canary", "fraud:2", "primary", 50.0),
    ]

    traffic.send("champion", 250)
    traffic.send("canary", 250)
    done = canaries.evaluate_now("fraud-api")
    assert done.kind == "complete" and done.next_share == 100.0
    dep = home.deployments.get("fraud-api")
    assert (dep.revision, dep.latest.spec.strategy) == (4, "weighted")
    assert _spec(home) == [("canary", "fraud:2", "primary", 1.0)]

    report = canaries.status("fraud-api")
    assert report.canary.state.status == "complete"
    assert [d.kind for d in report.decisions] == ["promote_step", "complete"]
    assert report.decisions[1].details["metrics"]["canary_requests"] == 250
    assert report.decisions[1].details["source"] == "prediction log"
    events = home.store.audit.list_events(limit=None, newest_first=False)
    actions = [e.action for e in events if e.object_type in ("canary", "deployment")]
    assert actions[1:] == [
        "canary.start",
        "deployment.canary",
        "canary.promote_step",
        "deployment.canary",
        "canary.complete",
        "deployment.canary",
    ]
    promote = next(e for e in events if e.action == "canary.promote_step")
    names = [c["name"] for c in promote.details["checks"]]
    assert names == ["error_rate_delta", "p95_latency_ratio", "prediction_psi"]
    assert all(c["passed"] for c in promote.details["checks"])
    assert promote.details["metrics"]["baseline_p95_ms"] > 0
    assert home.store.audit.verify().ok


def test_canary_failing_candidate_rolls_back_before_the_minimum(
    home: Home, traffic: Traffic, canaries: CanaryService
) -> None:
    canaries.start("fraud-api", "fraud:2", plan=PLAN)
    traffic.send("champion", 30)
    traffic.send("canary", 5, shadow=True, error=True)
    decision = canaries.evaluate_now("fraud-api")
    assert decision.kind == "rollback"
    assert decision.metrics is not None and decision.metrics.canary_errors == 5
    assert "5 errors in 5 requests" in decision.reasons[0]
    assert _spec(home) == [("champion", "fraud:1", "primary", 1.0)]
    assert canaries.status("fraud-api").canary.state.status == "rolled_back"
    with pytest.raises(NotFoundError, match="rolled_back"):
        canaries.evaluate_now("fraud-api")


def test_canary_drifting_predictions_roll_back_on_psi(
    home: Home, traffic: Traffic, canaries: CanaryService
) -> None:
    canaries.start("fraud-api", "fraud:2", plan=PLAN)
    traffic.send("champion", 300)
    traffic.send("canary", 300, shadow=True, shift=0.4)
    decision = canaries.evaluate_now("fraud-api")
    assert decision.kind == "rollback"
    psi = next(c for c in decision.checks if c.name == "prediction_psi")
    assert psi.passed is False and psi.value is not None and psi.value > 0.2
    assert _spec(home) == [("champion", "fraud:1", "primary", 1.0)]


def test_canary_holds_without_enough_traffic_and_ignores_test_requests(
    home: Home, traffic: Traffic, canaries: CanaryService
) -> None:
    canaries.start("fraud-api", "fraud:2", plan=PLAN)
    traffic.send("champion", 60)
    traffic.send("canary", 10, shadow=True)
    traffic.send("canary", 60, test=True, error=True)  # overrides: never counted
    preview = canaries.evaluate_now("fraud-api", apply=False)
    assert preview.kind == "hold"
    assert preview.metrics is not None and preview.metrics.canary_requests == 10
    assert any("10 of the 40 requests" in r for r in preview.reasons)
    assert canaries.evaluate_now("fraud-api").kind == "hold"
    assert canaries.status("fraud-api").decisions == []
    assert home.deployments.get("fraud-api").revision == 2


def test_canary_without_shadow_starts_at_the_first_share(
    home: Home, canaries: CanaryService
) -> None:
    plan = CanaryPlan(steps=(10, 50, 100), min_step_seconds=0)
    record = canaries.start("fraud-api", "fraud:2", plan=plan, variant="v2")
    assert record.state.share == 10.0
    assert _spec(home) == [
        ("champion", "fraud:1", "primary", 90.0),
        ("v2", "fraud:2", "primary", 10.0),
    ]
    assert home.deployments.get("fraud-api").latest.spec.canary == "v2"


def test_canary_abort_restores_the_baseline_and_is_audited(
    home: Home, canaries: CanaryService
) -> None:
    canaries.start("fraud-api", "fraud:2", plan=PLAN)
    with pytest.raises(InvalidInputError, match="reason"):
        canaries.abort("fraud-api", reason=" ")
    decision = canaries.abort("fraud-api", reason="wrong candidate")
    assert decision.kind == "rollback"
    assert "wrong candidate" in decision.reasons[0]
    assert _spec(home) == [("champion", "fraud:1", "primary", 1.0)]
    event = home.store.audit.list_events(action="canary.rollback")[0]
    assert event.details["source"] == "abort"
    with pytest.raises(NotFoundError, match="no running canary"):
        canaries.abort("fraud-api", reason="again")


def test_canary_start_refusals_name_the_problem(home: Home, canaries: CanaryService) -> None:
    with pytest.raises(InvalidInputError, match="already serves"):
        canaries.start("fraud-api", "fraud@champion")
    with pytest.raises(NotFoundError):
        canaries.start("fraud-api", "fraud:9")
    with pytest.raises(InvalidInputError, match="already has a variant named 'champion'"):
        canaries.start("fraud-api", "fraud:2", variant="champion")
    with pytest.raises(NotFoundError, match="no deployment named 'nope'"):
        canaries.start("nope", "fraud:2")
    home.deployments.create(
        "ab", [Variant("a", "fraud:1", weight=1), Variant("b", "fraud:2", weight=1)]
    )
    with pytest.raises(ConflictError, match="2 primary variants"):
        canaries.start("ab", "fraud:2")
    home.deployments.create("prod", [Variant("a", "fraud:1")], production=True)
    with pytest.raises(ConflictError, match="production"):
        canaries.start("prod", "fraud:2")
    canaries.start("fraud-api", "fraud:2", plan=PLAN)
    with pytest.raises(ConflictError, match="already runs canary"):
        canaries.start("fraud-api", "fraud:2", plan=PLAN, variant="other")
    # Nothing of the refused starts is left behind.
    assert home.deployments.get("prod").revision == 1
    assert home.deployments.get("fraud-api").revision == 2


def test_canary_changes_need_the_deployments_write_scope(home: Home, traffic: Traffic) -> None:
    reader = home.store.as_principal(
        Principal(name="ana", kind="user", scopes=frozenset({"models:read"}))
    ).with_authorizer(ScopeAuthorizer())
    canaries = CanaryService(DeploymentService(reader, home.registry), archive=traffic.archive)
    with pytest.raises(PermissionDeniedError, match="deployments:write"):
        canaries.start("fraud-api", "fraud:2")
    CanaryService(home.deployments).start("fraud-api", "fraud:2", plan=PLAN)
    with pytest.raises(PermissionDeniedError):
        canaries.abort("fraud-api", reason="not mine")
    with pytest.raises(PermissionDeniedError):
        canaries.evaluate_now("fraud-api")
    assert canaries.evaluate_now("fraud-api", apply=False).kind == "hold"  # reading is allowed
    assert canaries.status("fraud-api").canary.state.status == "running"


def test_canary_stops_without_a_revision_when_the_deployment_was_changed_by_hand(
    home: Home, traffic: Traffic, canaries: CanaryService
) -> None:
    canaries.start("fraud-api", "fraud:2", plan=PLAN)
    home.deployments.update("fraud-api", [Variant("other", "fraud:2")], reason="by hand")
    traffic.send("champion", 60)
    traffic.send("canary", 60, shadow=True)
    decision = canaries.evaluate_now("fraud-api")
    assert decision.kind == "rollback"
    assert "not made by the canary" in decision.reasons[0]
    dep = home.deployments.get("fraud-api")
    assert dep.revision == 3 and _spec(home) == [("other", "fraud:2", "primary", 1.0)]


def test_canary_two_deciders_on_one_step_apply_once(home: Home, canaries: CanaryService) -> None:
    canaries.start("fraud-api", "fraud:2", plan=PLAN)
    stale = canaries.get_running("fraud-api")
    canary, baseline = _healthy_windows()
    now = datetime.now(UTC)
    first = canaries.decide(stale, canary, baseline, now=now, source="worker a")
    assert first.kind == "promote_step"
    with pytest.raises(ConflictError, match="not running at step 0"):
        canaries.decide(stale, canary, baseline, now=now, source="worker b")
    assert home.deployments.get("fraud-api").revision == 3
    assert len(canaries.status("fraud-api").decisions) == 1


def _healthy_windows() -> tuple[WindowStats, WindowStats]:
    canary, baseline = WindowStats(rng=random.Random(0)), WindowStats(rng=random.Random(1))
    rng = random.Random(2)
    for _ in range(250):
        canary.record(4.0, prediction=rng.random())
        baseline.record(4.0, prediction=rng.random())
    return canary, baseline


def test_canary_refuses_a_candidate_that_reads_other_inputs(
    home: Home, canaries: CanaryService
) -> None:
    x = np.random.default_rng(0).normal(size=(40, 2))
    narrow = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    home.registry.register(narrow, name="fraud", sample_input=x[:10], signature=None)
    with pytest.raises(InvalidInputError, match="does not take \\['x2'\\]"):
        canaries.start("fraud-api", "fraud:3")
    assert home.deployments.get("fraud-api").revision == 1


def test_canary_per_variant_settings_follow_their_variant(
    home: Home, canaries: CanaryService
) -> None:
    home.deployments.update("fraud-api", settings={"variant_timeout_ms": {"champion": 500}})
    plan = CanaryPlan(steps=(50, 100), min_requests=40, min_step_seconds=0)
    canaries.start("fraud-api", "fraud:2", plan=plan)
    assert home.deployments.get("fraud-api").latest.settings.variant_timeout_ms == {"champion": 500}
    record = canaries.get_running("fraud-api")
    decision = canaries.decide(record, *_healthy_windows(), now=datetime.now(UTC), source="test")
    assert decision.kind == "complete"
    latest = home.deployments.get("fraud-api").latest
    assert [v.name for v in latest.spec.variants] == ["canary"]
    assert latest.settings.variant_timeout_ms == {}
