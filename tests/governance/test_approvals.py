"""Approval tallies: distinct people per slot, separation of duties, best assignment."""

from __future__ import annotations

from steward.governance import ApprovalRule, tally_approvals

MR, CO = ApprovalRule(role="model-risk", count=1), ApprovalRule(role="compliance", count=2)


def test_no_rules_is_satisfied() -> None:
    assert tally_approvals([], {}).satisfied


def test_counts_distinct_people() -> None:
    tally = tally_approvals([MR, CO], {"ann": ["model-risk"], "bo": ["compliance"]})
    assert not tally.satisfied
    assert tally.missing == {"model-risk": 0, "compliance": 1}
    assert tally.describe_missing() == "1 more from compliance"
    tally = tally_approvals(
        [MR, CO], {"ann": ["model-risk"], "bo": ["compliance"], "cy": ["compliance"]}
    )
    assert tally.satisfied
    assert tally.assigned == {"model-risk": ("ann",), "compliance": ("bo", "cy")}


def test_one_person_fills_one_slot_only() -> None:
    tally = tally_approvals(
        [MR, ApprovalRule(role="compliance")], {"ann": ["model-risk", "compliance"]}
    )
    assert not tally.satisfied
    assert sum(tally.missing.values()) == 1


def test_matching_finds_the_assignment_greedy_would_miss() -> None:
    # ann could fill either; bo only model-risk. Greedy by name gives ann model-risk
    # and leaves compliance open; matching moves ann to compliance.
    rules = [MR, ApprovalRule(role="compliance")]
    tally = tally_approvals(rules, {"ann": ["model-risk", "compliance"], "bo": ["model-risk"]})
    assert tally.satisfied
    assert tally.assigned == {"model-risk": ("bo",), "compliance": ("ann",)}


def test_separation_of_duties_and_irrelevant_roles() -> None:
    tally = tally_approvals(
        [MR],
        {"ann": ["model-risk"], "dan": ["viewer"], "eve": ["model-risk"]},
        excluded={"ann": "registered this version"},
    )
    assert tally.satisfied
    assert tally.assigned == {"model-risk": ("eve",)}
    assert tally.ignored["ann"] == "registered this version"
    assert "holds none of the required roles" in tally.ignored["dan"]


def test_surplus_approver_is_reported() -> None:
    tally = tally_approvals([MR], {"ann": ["model-risk"], "bo": ["model-risk"]})
    assert tally.satisfied
    assert list(tally.ignored.values()) == ["the slots for their roles are already filled"]
