"""Counting sign-offs: which approval rules are met, by whom, under separation of duties.

Each rule asks for ``count`` distinct people holding a role. One person fills at
most one slot across all rules (four eyes means four eyes: a person holding both
``model-risk`` and ``compliance`` does not satisfy both), so slots are assigned
by bipartite matching, which finds an assignment whenever one exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from steward.governance._policy import ApprovalRule

__all__ = ["ApprovalTally", "tally_approvals"]


@dataclass(frozen=True)
class ApprovalTally:
    """Which rules are met, which slots are open, and who was not counted and why."""

    satisfied: bool
    assigned: Mapping[str, tuple[str, ...]]  # role -> approvers counted for it
    missing: Mapping[str, int]  # role -> approvals still needed
    ignored: Mapping[str, str]  # approver -> why they do not count

    def describe_missing(self) -> str:
        """E.g. ``1 more approval from model-risk, 2 more from compliance``."""
        parts = [f"{n} more from {role}" for role, n in self.missing.items() if n > 0]
        return ", ".join(parts) or "none"


def tally_approvals(
    rules: Sequence[ApprovalRule],
    approvers: Mapping[str, Iterable[str]],
    *,
    excluded: Mapping[str, str] | None = None,
) -> ApprovalTally:
    """Match approvers to the slots of ``rules``.

    Args:
        rules: the gate's approval rules.
        approvers: each approver's name → the roles they held when approving.
        excluded: people who may not approve this version → why (separation of
            duties: its registrant, its run's author).
    """
    excluded = excluded or {}
    ignored: dict[str, str] = {}
    eligible: dict[str, set[str]] = {}
    wanted = {rule.role for rule in rules}
    for name, roles in approvers.items():
        if name in excluded:
            ignored[name] = excluded[name]
            continue
        useful = set(roles) & wanted
        if not useful:
            ignored[name] = f"holds none of the required roles ({', '.join(sorted(wanted))})"
            continue
        eligible[name] = useful
    slots = [(rule.role, i) for rule in rules for i in range(rule.count)]
    match: dict[tuple[str, int], str] = {}

    def place(person: str, seen: set[tuple[str, int]]) -> bool:
        for slot in slots:
            if slot[0] in eligible[person] and slot not in seen:
                seen.add(slot)
                holder = match.get(slot)
                if holder is None or place(holder, seen):
                    match[slot] = person
                    return True
        return False

    for person in sorted(eligible):
        place(person, set())
    assigned: dict[str, list[str]] = {rule.role: [] for rule in rules}
    for (role, _), person in sorted(match.items()):
        assigned[role].append(person)
    counted = set(match.values())
    for person in eligible:
        if person not in counted:
            ignored[person] = "the slots for their roles are already filled"
    missing = {rule.role: 0 for rule in rules}
    for rule in rules:
        missing[rule.role] += rule.count
    for role, people in assigned.items():
        missing[role] -= len(people)
    return ApprovalTally(
        satisfied=all(n <= 0 for n in missing.values()),
        assigned={role: tuple(sorted(people)) for role, people in assigned.items()},
        missing={role: max(n, 0) for role, n in missing.items()},
        ignored=ignored,
    )
