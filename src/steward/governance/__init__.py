"""Governance: identities and access, policies by risk tier, promotion approvals."""

from steward.governance._approvals import ApprovalTally, tally_approvals
from steward.governance._checks import (
    CheckResult,
    DriftEvidence,
    Evidence,
    FairnessEvidence,
    run_checks,
)
from steward.governance._evidence import RegistryEvidence
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
from steward.governance._promotions import (
    PolicyVersion,
    PromotionGate,
    PromotionPlan,
    PromotionRequest,
    PromotionService,
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
    "PolicyVersion",
    "PromotionGate",
    "PromotionPlan",
    "PromotionRequest",
    "PromotionService",
    "RegistryEvidence",
    "parse_policy",
    "read_policy",
    "run_checks",
    "tally_approvals",
]
