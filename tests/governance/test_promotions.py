"""Promotion requests end to end: checks with evidence, sign-offs, atomic execution."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.governance._support import train_scored

from steward.core import (
    ConflictError,
    FrozenClock,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    Principal,
)
from steward.governance import PolicyError, PromotionFrozenError, PromotionService
from steward.governance._promotion_tables import promotion_requests
from steward.registry import Stage
from steward.sdk import Steward, connect

POLICY = """\
policy: credit
request_ttl: 2d
gates:
  high:
    staging:
      checks: ["holdout auc >= 0.70"]
    production:
      checks:
        - "holdout auc >= 0.80"
        - {check: beats_champion, metric: auc, dataset: holdout, margin: 0.01}
        - {check: prohibited_attributes, attributes: [race]}
      approvals:
        - {role: model-risk, count: 1}
        - {role: compliance, count: 1}
freeze_windows:
  - {name: year-end, start: 2026-12-20, end: 2027-01-04}
emergency:
  approvals: [{role: admin, count: 1}]
"""

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


def _train(st: Steward, auc: float, columns: tuple[str, ...] = ("amount", "age")) -> str:
    return train_scored(st, "credit", auc, columns=columns)


def _as(st: Steward, name: str, *roles: str) -> PromotionService:
    """The promotion service acting as another person (what an adapter does per caller)."""
    store = st.store.as_principal(Principal.of(name, roles=roles, scopes=["models:read"]))
    return PromotionService(store, st.registry)


@pytest.fixture
def governed(st: Steward) -> Steward:
    st.promotions.apply_policy("policy.yaml", text=POLICY)
    _train(st, 0.5)  # version 1 exists so that the model can get a tier
    st.registry.update_model("credit", risk_tier="high")
    return st


def test_without_a_policy_stage_moves_are_free(st: Steward) -> None:
    ref = _train(st, 0.9)
    moved = st.registry.transition(ref, "production", reason="first model")
    assert moved.stage is Stage.PRODUCTION
    assert st.promotions.current_policy().version == 0


def test_full_promotion_with_two_approvers(governed: Steward) -> None:
    ref = _train(governed, 0.9)
    request = governed.promotions.request(
        ref, "production", reason="better auc", aliases=["champion"]
    )
    assert request.status == "pending"
    assert [c["passed"] for c in request.checks] == [True, True, True]
    assert request.checks[0]["observed"] == pytest.approx(0.9)
    assert request.tally.missing == {"model-risk": 1, "compliance": 1}
    assert request.policy_version == 1
    assert governed.registry.get_version(ref).stage is Stage.REGISTERED

    after_one = _as(governed, "mia", "model-risk").approve(request.id, comment="ok")
    assert after_one.status == "pending"
    assert after_one.tally.missing == {"model-risk": 0, "compliance": 1}
    done = _as(governed, "carl", "compliance").approve(request.id, comment="fine")
    assert done.status == "executed"
    version = governed.registry.get_version(ref)
    assert version.stage is Stage.PRODUCTION
    assert "champion" in version.aliases
    actions = [e.action for e in governed.store.audit.list_events(newest_first=False)]
    for action in ("policy.apply", "promotion.request", "promotion.approve", "promotion.execute"):
        assert action in actions
    assert governed.store.audit.verify().ok


def test_direct_moves_are_refused_once_a_policy_applies(governed: Steward) -> None:
    ref = _train(governed, 0.9)
    with pytest.raises(PermissionDeniedError, match="needs an approved promotion request"):
        governed.registry.transition(ref, "production", reason="skip the queue")
    assert governed.registry.get_version(ref).stage is Stage.REGISTERED
    governed.registry.transition(ref, "archived", reason="not needed")  # leaving service is free


def test_separation_of_duties_and_roles(governed: Steward) -> None:
    ref = _train(governed, 0.9)
    request = governed.promotions.request(ref, "production", reason="r")
    dana = _as(governed, "dana", "model-risk", "compliance")  # she registered it
    with pytest.raises(PermissionDeniedError, match="separation of duties"):
        dana.approve(request.id)
    with pytest.raises(PermissionDeniedError, match="holds none of the roles"):
        _as(governed, "vic", "viewer").approve(request.id)
    mia = _as(governed, "mia", "model-risk")
    mia.approve(request.id)
    with pytest.raises(ConflictError, match="already decided"):
        mia.approve(request.id)
    # One person with both roles fills one slot only.
    both = _as(governed, "bo", "model-risk").approve(request.id)
    assert both.status == "pending"
    assert both.tally.missing == {"model-risk": 0, "compliance": 1}


def test_failed_checks_end_the_request_with_evidence(governed: Steward) -> None:
    ref = _train(governed, 0.75)
    request = governed.promotions.request(ref, "production", reason="try")
    assert request.status == "checks_failed"
    failed = [c for c in request.checks if not c["passed"]]
    assert failed[0]["description"] == "holdout auc >= 0.8"
    assert failed[0]["observed"] == pytest.approx(0.75)
    assert "holdout auc >= 0.8" in (request.outcome or "")
    with pytest.raises(ConflictError, match="checks_failed"):
        _as(governed, "mia", "model-risk").approve(request.id)


def test_prohibited_attribute_blocks(governed: Steward) -> None:
    ref = _train(governed, 0.95, columns=("amount", "race"))
    plan = governed.promotions.plan(ref, "production")
    assert any("prohibited attribute(s) among the inputs: race" in r for r in plan.blocked_by)


def test_dry_run_stores_nothing(governed: Steward) -> None:
    ref = _train(governed, 0.85)
    plan = governed.promotions.plan(ref, "staging")
    assert plan.blocked_by == []
    assert plan.approvals == ()
    assert governed.promotions.list_requests() == []


def test_gate_without_approvals_executes_at_once(governed: Steward) -> None:
    ref = _train(governed, 0.85)
    request = governed.promotions.request(ref, "staging", reason="qa")
    assert request.status == "executed"
    assert governed.registry.get_version(ref).stage is Stage.STAGING


def test_champion_must_be_beaten(governed: Steward) -> None:
    first = _train(governed, 0.9)
    request = governed.promotions.request(first, "production", reason="r", aliases=["champion"])
    _as(governed, "mia", "model-risk").approve(request.id)
    _as(governed, "carl", "compliance").approve(request.id)
    second = _train(governed, 0.905)  # not by the 0.01 margin
    blocked = governed.promotions.request(second, "production", reason="r")
    assert blocked.status == "checks_failed"
    assert "candidate 0.905 vs @champion 0.9" in blocked.checks[1]["detail"]


def test_freeze_window_and_emergency(governed: Steward, clock: FrozenClock) -> None:
    ref = _train(governed, 0.9)
    clock.advance(days=50)  # 2026-12-22: year-end freeze
    with pytest.raises(ConflictError, match="frozen"):
        governed.promotions.request(ref, "production", reason="r")
    request = governed.promotions.request(ref, "production", reason="outage", emergency=True)
    assert request.tally.missing == {"model-risk": 1, "compliance": 1, "admin": 1}
    _as(governed, "mia", "model-risk").approve(request.id)
    _as(governed, "carl", "compliance").approve(request.id)
    assert governed.promotions.get(request.id).status == "pending"
    done = _as(governed, "root", "admin").approve(request.id)
    assert done.status == "executed"


def test_stale_requests_expire(governed: Steward, clock: FrozenClock) -> None:
    ref = _train(governed, 0.9)
    request = governed.promotions.request(ref, "production", reason="r")
    clock.advance(days=3)
    with pytest.raises(ConflictError, match="expired"):
        _as(governed, "mia", "model-risk").approve(request.id)
    assert governed.promotions.get(request.id).status == "expired"
    again = governed.promotions.request(ref, "production", reason="second try")
    assert again.status == "pending"


def test_reject_closes_and_duplicate_requests_are_refused(governed: Steward) -> None:
    ref = _train(governed, 0.9)
    request = governed.promotions.request(ref, "production", reason="r")
    with pytest.raises(ConflictError, match="already open"):
        governed.promotions.request(ref, "production", reason="again")
    with pytest.raises(InvalidInputError, match="needs a comment"):
        _as(governed, "carl", "compliance").reject(request.id, comment=" ")
    rejected = _as(governed, "carl", "compliance").reject(request.id, comment="bias review")
    assert rejected.status == "rejected"
    assert "bias review" in (rejected.outcome or "")


def test_bad_requests(governed: Steward) -> None:
    ref = _train(governed, 0.9)
    with pytest.raises(InvalidInputError, match="needs a reason"):
        governed.promotions.request(ref, "production", reason="")
    with pytest.raises(InvalidInputError, match="staging or production"):
        governed.promotions.request(ref, "archived", reason="r")
    with pytest.raises(NotFoundError):
        governed.promotions.request("credit:99", "production", reason="r")
    with pytest.raises(NotFoundError, match="does not exist"):
        governed.promotions.approve("nope")
    viewer = governed.store.as_principal(Principal.of("vic", scopes=["models:read"]))
    with pytest.raises(PermissionDeniedError, match="models:promote"):
        PromotionService(viewer, governed.registry).request(ref, "production", reason="r")


def test_policies_are_versioned(governed: Steward) -> None:
    same = governed.promotions.apply_policy("policy.yaml", text=POLICY)
    assert same.version == 1
    changed = governed.promotions.apply_policy(
        "policy.yaml", text=POLICY.replace(">= 0.80", ">= 0.82")
    )
    assert changed.version == 2
    assert [p.version for p in governed.promotions.policy_history()] == [2, 1]
    with pytest.raises(PolicyError):
        governed.promotions.apply_policy("policy.yaml", text="policy: [")
    assert governed.promotions.current_policy().version == 2
    viewer = governed.store.as_principal(Principal.of("vic", scopes=["models:read"]))
    with pytest.raises(PermissionDeniedError, match="admin"):
        PromotionService(viewer, governed.registry).apply_policy("p.yaml", text=POLICY)


def test_approvers_from_tokens_and_per_model_role_bindings(
    governed: Steward, tmp_path: Path, database_url: str, clock: FrozenClock
) -> None:
    governed.identities.create_user("mia", roles=["viewer"])
    governed.identities.grant_role("mia", "model-risk", resource="model:credit")
    governed.identities.create_user("carl", roles=["compliance"])
    governed.identities.create_user("otto", roles=["viewer"])
    governed.identities.grant_role("otto", "model-risk", resource="model:other")
    secrets = {
        name: governed.tokens.create_token(name, name="t", scopes="models:read")[1]
        for name in ("mia", "carl", "otto")
    }
    ref = _train(governed, 0.9)
    request = governed.promotions.request(ref, "production", reason="tokens")

    def as_token(name: str) -> Steward:
        return connect(
            home=tmp_path / "home",
            database_url=database_url,
            clock=clock,
            capture_environment=False,
            token=secrets[name],
        )

    with as_token("otto") as otto, pytest.raises(PermissionDeniedError, match="holds none"):
        otto.promotions.approve(request.id)  # his binding is on another model
    with as_token("mia") as mia:
        assert mia.promotions.approve(request.id).tally.missing["model-risk"] == 0
    with as_token("carl") as carl:
        assert carl.promotions.approve(request.id).status == "executed"


def test_refused_decisions_are_audited(governed: Steward) -> None:
    ref = _train(governed, 0.9)
    request = governed.promotions.request(ref, "production", reason="r")
    with pytest.raises(PermissionDeniedError):
        _as(governed, "dana", "model-risk").approve(request.id)
    refused = [
        e
        for e in governed.store.audit.list_events(action="promotion.approve.refused")
        if e.object_id == request.id
    ]
    assert len(refused) == 1
    assert refused[0].actor == "dana"
    assert "separation of duties" in refused[0].details["error"]
    assert governed.promotions.get(request.id).decisions == ()


def _refusals(st: Steward, action: str, object_id: str) -> list[dict[str, object]]:
    return [
        e.details for e in st.store.audit.list_events(action=action) if e.object_id == object_id
    ]


def test_approval_inside_a_freeze_does_not_execute(st: Steward, clock: FrozenClock) -> None:
    st.promotions.apply_policy(
        "policy.yaml", text=POLICY.replace("request_ttl: 2d", "request_ttl: 30d")
    )
    _train(st, 0.5)
    st.registry.update_model("credit", risk_tier="high")
    ref = _train(st, 0.9)
    clock.advance(days=46)  # 2026-12-18: the request is opened before the year-end freeze
    request = st.promotions.request(ref, "production", reason="r", aliases=["champion"])
    _as(st, "mia", "model-risk").approve(request.id)
    clock.advance(days=3)  # 2026-12-21: inside it
    with pytest.raises(PromotionFrozenError, match=rf"request {request.id} .* frozen \(year-end"):
        _as(st, "carl", "compliance").approve(request.id, comment="fine")
    held = st.promotions.get(request.id)
    assert (held.status, held.tally.satisfied) == ("pending", True)
    assert [d["approver"] for d in held.decisions] == ["mia", "carl"]
    assert st.registry.get_version(ref).stage is Stage.REGISTERED
    assert "champion" not in st.registry.get_model("credit").aliases
    refused = _refusals(st, "promotion.execute.refused", request.id)
    assert len(refused) == 1 and "year-end" in str(refused[0]["error"])
    with pytest.raises(PromotionFrozenError):
        st.promotions.execute(request.id)
    assert len(_refusals(st, "promotion.execute.refused", request.id)) == 2
    clock.advance(days=15)  # 2027-01-05: the freeze is over
    assert st.promotions.execute(request.id).status == "executed"
    assert st.registry.get_version(ref).stage is Stage.PRODUCTION


def test_emergency_request_opened_before_a_freeze_needs_the_emergency_approval(
    st: Steward, clock: FrozenClock
) -> None:
    st.promotions.apply_policy(
        "policy.yaml", text=POLICY.replace("request_ttl: 2d", "request_ttl: 30d")
    )
    _train(st, 0.5)
    st.registry.update_model("credit", risk_tier="high")
    ref = _train(st, 0.9)
    clock.advance(days=46)
    request = st.promotions.request(ref, "production", reason="outage", emergency=True)
    assert request.tally.missing == {"model-risk": 1, "compliance": 1}
    _as(st, "mia", "model-risk").approve(request.id)
    clock.advance(days=3)
    escalated = _as(st, "carl", "compliance").approve(request.id)
    assert escalated.status == "pending"
    assert escalated.tally.missing == {"model-risk": 0, "compliance": 0, "admin": 1}
    assert escalated.freeze_window is not None and "year-end" in escalated.freeze_window
    assert len(_refusals(st, "promotion.escalate", request.id)) == 1
    assert _as(st, "root", "admin").approve(request.id).status == "executed"


def test_the_gate_refuses_an_approved_request_during_a_freeze(
    governed: Steward, clock: FrozenClock
) -> None:
    ref = _train(governed, 0.9)
    request = governed.promotions.request(ref, "production", reason="r")
    with governed.store.unit_of_work() as uow:  # approved, as if just before the freeze began
        uow.conn.execute(
            promotion_requests.update()
            .where(promotion_requests.c.id == request.id)
            .values(status="approved", expires_at=START + timedelta(days=90))
        )
    clock.advance(days=50)
    with pytest.raises(PromotionFrozenError, match="frozen"):
        governed.registry.transition(ref, "production", reason="direct")
    assert governed.registry.get_version(ref).stage is Stage.REGISTERED


def test_a_request_refused_by_a_freeze_is_audited(governed: Steward, clock: FrozenClock) -> None:
    ref = _train(governed, 0.9)
    clock.advance(days=50)
    with pytest.raises(PromotionFrozenError, match="frozen"):
        governed.promotions.request(ref, "production", reason="r")
    refused = _refusals(governed, "promotion.request.refused", ref)
    assert len(refused) == 1 and refused[0]["to"] == "production"
    assert governed.promotions.list_requests() == []
