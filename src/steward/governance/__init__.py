"""Governance: identities, roles, scopes, API tokens, identity-provider JWTs, the authorizer."""

from steward.governance._authn import MAX_CREDENTIAL_CHARS, authenticate, authenticated_store
from steward.governance._authorizer import GovernanceAuthorizer, ResourceTeams
from steward.governance._errors import (
    AuthenticationError,
    GovernanceError,
    TokenExpiredError,
    TokenRevokedError,
)
from steward.governance._identities import IdentityService
from steward.governance._jwt import JwtVerifier
from steward.governance._models import (
    AuthenticatedPrincipal,
    AuthMethod,
    Identity,
    RoleBinding,
    TokenInfo,
)
from steward.governance._scopes import BUILTIN_ROLES, RESOURCE_TYPES, SCOPES, Role, RoleCatalog
from steward.governance._settings import GovernanceSettings, parse_duration
from steward.governance._tokens import TokenService, parse_scopes

__all__ = [
    "BUILTIN_ROLES",
    "MAX_CREDENTIAL_CHARS",
    "RESOURCE_TYPES",
    "SCOPES",
    "AuthMethod",
    "AuthenticatedPrincipal",
    "AuthenticationError",
    "GovernanceAuthorizer",
    "GovernanceError",
    "GovernanceSettings",
    "Identity",
    "IdentityService",
    "JwtVerifier",
    "ResourceTeams",
    "Role",
    "RoleBinding",
    "RoleCatalog",
    "TokenExpiredError",
    "TokenInfo",
    "TokenRevokedError",
    "TokenService",
    "authenticate",
    "authenticated_store",
    "parse_duration",
    "parse_scopes",
]
