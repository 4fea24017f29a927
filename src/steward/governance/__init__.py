"""Governance: identities, tokens, policies, promotions, retention, holds, inventory, reports."""

from steward.governance._approvals import ApprovalTally, tally_approvals
from steward.governance._authn import MAX_CREDENTIAL_CHARS, authenticate, authenticated_store
from steward.governance._authorizer import GovernanceAuthorizer, ResourceTeams
from steward.governance._checks import (
    CheckResult,
    DriftEvidence,
    Evidence,
    FairnessEvidence,
    run_checks,
)
from steward.governance._errors import (
    AuthenticationError,
    GovernanceError,
    PromotionFrozenError,
    TokenExpiredError,
    TokenRevokedError,
)
from steward.governance._evidence import RegistryEvidence
from steward.governance._holds import HOLD_KINDS, ActiveHolds, HoldService, LegalHold
from steward.governance._identities import IdentityService
from steward.governance._inventory import InventoryRow, build_inventory, inventory_csv
from steward.governance._jwt import JwtVerifier
from steward.governance._models import (
    AuthenticatedPrincipal,
    AuthMethod,
    Identity,
    RoleBinding,
    TokenInfo,
)
from steward.governance._policy import ApprovalRule, FreezeWindow, Gate, Policy
from steward.governance._policy_parser import (
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
from steward.governance._report import VersionReport, build_report
from steward.governance._retention import RetentionService
from steward.governance._retention_guard import GovernanceRetentionGuard
from steward.governance._retention_predictions import PredictionPartition, PredictionPartitions
from steward.governance._retention_rules import (
    DEFAULT_RULES,
    LegalHoldError,
    RetentionItem,
    RetentionPlan,
    RetentionRule,
    parse_rules,
    read_rules,
)
from steward.governance._scopes import BUILTIN_ROLES, RESOURCE_TYPES, SCOPES, Role, RoleCatalog
from steward.governance._settings import GovernanceSettings, parse_duration
from steward.governance._tokens import TokenService, parse_scopes

__all__ = [
    "BUILTIN_ROLES",
    "DEFAULT_RULES",
    "HOLD_KINDS",
    "MAX_CREDENTIAL_CHARS",
    "RESOURCE_TYPES",
    "SCOPES",
    "ActiveHolds",
    "ApprovalRule",
    "ApprovalTally",
    "AuthMethod",
    "AuthenticatedPrincipal",
    "AuthenticationError",
    "CheckResult",
    "DriftEvidence",
    "Evidence",
    "FairnessEvidence",
    "FreezeWindow",
    "Gate",
    "GovernanceAuthorizer",
    "GovernanceError",
    "GovernanceRetentionGuard",
    "GovernanceSettings",
    "HoldService",
    "Identity",
    "IdentityService",
    "InventoryRow",
    "JwtVerifier",
    "LegalHold",
    "LegalHoldError",
    "Policy",
    "PolicyError",
    "PolicyProblem",
    "PolicyVersion",
    "PredictionPartition",
    "PredictionPartitions",
    "PromotionFrozenError",
    "PromotionGate",
    "PromotionPlan",
    "PromotionRequest",
    "PromotionService",
    "RegistryEvidence",
    "ResourceTeams",
    "RetentionItem",
    "RetentionPlan",
    "RetentionRule",
    "RetentionService",
    "Role",
    "RoleBinding",
    "RoleCatalog",
    "TokenExpiredError",
    "TokenInfo",
    "TokenRevokedError",
    "TokenService",
    "VersionReport",
    "authenticate",
    "authenticated_store",
    "build_inventory",
    "build_report",
    "inventory_csv",
    "parse_duration",
    "parse_policy",
    "parse_rules",
    "parse_scopes",
    "read_policy",
    "read_rules",
    "run_checks",
    "tally_approvals",
]
