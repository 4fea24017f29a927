"""Governance: identities and access, policies by risk tier, promotion approvals."""

from steward.governance._approvals import ApprovalTally, tally_approvals
from steward.governance._checks import (
    CheckResult,
    DriftEvidence,
    Evidence,
    FairnessEvidence,
    run_checks,
)
from steward.governance._policy import (
    ApprovalRule,
    FreezeWindow,
    Gate,
    Policy,
    PolicyError,
    PolicyProblem,
    parse_policy,
    read_policy,
)

__all__ = [
    "ApprovalRule",
    "ApprovalTally",
    "CheckResult",
    "DriftEvidence",
    "Evidence",
    "FairnessEvidence",
    "FreezeWindow",
    "Gate",
    "Policy",
    "PolicyError",
    "PolicyProblem",
    "parse_policy",
    "read_policy",
    "run_checks",
    "tally_approvals",
]
