"""The access matrix: every role against every scope, globally and per resource, and the cache."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from tests.governance._support import acting_as

from steward.core import PermissionDeniedError
from steward.governance import (
    GovernanceAuthorizer,
    GovernanceSettings,
    IdentityService,
    authenticated_store,
)
from steward.governance._tables import principals, role_bindings
from steward.store import Store

SCOPES = [
    "models:read",
    "models:write",
    "models:promote",
    "deployments:write",
    "predict:fraud-api",
    "feedback:fraud-api",
    "features:read",
    "features:read:pii",
    "audit:read",
    "admin",
]
APPROVER = {"models:read", "features:read", "audit:read"}
MATRIX = {
    "viewer": {"models:read", "features:read"},
    "data-scientist": {"models:read", "models:write", "features:read"},
    "ml-engineer": {
        "models:read",
        "models:write",
        "models:promote",
        "deployments:write",
        "predict:fraud-api",
        "feedback:fraud-api",
        "features:read",
    },
    "approver": APPROVER,
    "model-risk": APPROVER,
    "compliance": APPROVER,
    "legal": APPROVER,
    "admin": set(SCOPES),
}


def _allowed(store: Store, scope: str, resource: str | None = None) -> bool:
    try:
        store.authorize(scope, resource=resource)
    except PermissionDeniedError:
        return False
    return True


@pytest.mark.parametrize("role", sorted(MATRIX))
def test_access_matrix_global_binding(role: str, identities: IdentityService, store: Store) -> None:
    identities.create_user("u", roles=[role])
    caller = acting_as(store, "u")
    granted = {s for s in SCOPES if _allowed(caller, s, resource="model:fraud")}
    assert granted == MATRIX[role]
    assert {s for s in SCOPES if _allowed(caller, s)} == MATRIX[role]  # no resource: same


@pytest.mark.parametrize("role", ["viewer", "data-scientist", "ml-engineer", "model-risk"])
def test_access_matrix_per_resource_binding(
    role: str, identities: IdentityService, store: Store
) -> None:
    identities.create_user("u")
    identities.grant_role("u", role, resource="model:fraud")
    caller = acting_as(store, "u")
    assert {s for s in SCOPES if _allowed(caller, s, resource="model:fraud")} == MATRIX[role]
    assert {s for s in SCOPES if _allowed(caller, s, resource="model:churn")} == set()
    assert {s for s in SCOPES if _allowed(caller, s)} == set()


def test_team_binding_applies_to_the_team_s_models(
    identities: IdentityService, store: Store
) -> None:
    identities.create_user("rita")
    identities.grant_role("rita", "data-scientist", resource="team:risk")
    teams = {"model:fraud": {"risk"}, "model:churn": {"growth"}}
    rita = acting_as(store, "rita", resource_teams=lambda r: teams.get(r, set()))
    assert _allowed(rita, "models:write", resource="model:fraud")
    assert _allowed(rita, "models:write", resource="team:risk")
    assert not _allowed(rita, "models:write", resource="model:churn")
    # Without a resolver, a team binding covers only the team itself.
    plain = acting_as(store, "rita")
    assert not _allowed(plain, "models:write", resource="model:fraud")


def test_per_resource_grant_is_capped_by_the_token(
    identities: IdentityService, store: Store
) -> None:
    identities.create_user("bob", roles=["viewer"])
    identities.grant_role("bob", "ml-engineer", resource="model:fraud")
    read_only = acting_as(store, "bob", scopes=["models:read"])
    assert _allowed(read_only, "models:read", resource="model:fraud")
    with pytest.raises(PermissionDeniedError, match="token in use carries only models:read"):
        read_only.authorize("models:write", resource="model:fraud")
    full = acting_as(store, "bob", scopes=["models:*"])
    assert _allowed(full, "models:promote", resource="model:fraud")
    assert not _allowed(full, "models:promote", resource="model:churn")


def test_denial_names_scope_resource_and_roles_and_is_audited(
    identities: IdentityService, store: Store
) -> None:
    identities.create_user("vic", roles=["viewer"])
    vic = acting_as(store, "vic")
    with pytest.raises(
        PermissionDeniedError,
        match=r"'vic' lacks the scope 'models:promote' on model:fraud; an administrator can "
        r"grant a role that carries it \(ml-engineer\): steward roles grant ROLE --to vic "
        r"--on model:fraud",
    ):
        vic.authorize("models:promote", resource="model:fraud")
    denied = store.audit.list_events(action="access.denied")
    assert len(denied) == 1
    assert denied[0].actor == "vic"
    assert denied[0].details == {
        "scope": "models:promote",
        "resource": "model:fraud",
        "kind": "user",
    }
    assert store.audit.verify().ok


def test_grants_made_in_this_process_apply_at_once(
    identities: IdentityService, store: Store
) -> None:
    identities.create_user("bob")
    bob = acting_as(store, "bob")
    assert not _allowed(bob, "models:write", resource="model:fraud")
    identities.grant_role("bob", "data-scientist", resource="model:fraud")
    assert _allowed(bob, "models:write", resource="model:fraud")
    identities.revoke_role("bob", "data-scientist", resource="model:fraud")
    assert not _allowed(bob, "models:write", resource="model:fraud")
    identities.grant_role("bob", "data-scientist", resource="model:fraud")
    identities.disable("bob")  # a disabled identity's bindings stop counting
    assert not _allowed(bob, "models:write", resource="model:fraud")


def test_changes_from_elsewhere_apply_after_the_cache_ttl(
    identities: IdentityService, store: Store
) -> None:
    identities.create_user("bob")
    cached = GovernanceSettings(user="root", auth_cache_seconds=300)
    bob = acting_as(store, "bob", settings=cached)
    assert not _allowed(bob, "models:write", resource="model:fraud")
    # Another process grants the role straight in the database: this one's cache holds.
    with store.database.write() as conn:
        bob_id = conn.execute(sa.select(principals.c.id).where(principals.c.name == "bob")).scalar()
        conn.execute(
            role_bindings.insert(),
            {
                "id": "f" * 32,
                "principal_id": bob_id,
                "role": "data-scientist",
                "resource": "model:fraud",
                "created_at": store.clock.now(),
                "created_by": "elsewhere",
            },
        )
    assert not _allowed(bob, "models:write", resource="model:fraud")
    fresh = bob.with_authorizer(
        GovernanceAuthorizer(store, settings=GovernanceSettings(user="root", auth_cache_seconds=0))
    )
    assert _allowed(fresh, "models:write", resource="model:fraud")


def test_local_identity_may_do_everything(store: Store, settings: GovernanceSettings) -> None:
    local = authenticated_store(store, None, settings=settings)
    assert local.principal.kind == "local" and local.principal.name == "root"
    assert all(_allowed(local, s, resource="model:fraud") for s in SCOPES)


def test_roles_for_reports_global_and_resource_roles(
    identities: IdentityService, store: Store
) -> None:
    identities.create_user("ann", roles=["viewer"])
    identities.grant_role("ann", "model-risk", resource="model:fraud")
    ann = acting_as(store, "ann")
    authorizer = GovernanceAuthorizer(store, settings=GovernanceSettings(user="root"))
    assert authorizer.roles_for(ann.principal) == {"viewer"}
    assert authorizer.roles_for(ann.principal, "model:fraud") == {"viewer", "model-risk"}
