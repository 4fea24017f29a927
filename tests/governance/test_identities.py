"""Users, service accounts and role bindings: created, listed, disabled, granted, revoked."""

from __future__ import annotations

import pytest
from tests.governance._support import acting_as

from steward.core import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from steward.governance import GovernanceSettings, IdentityService
from steward.store import Store


def _actions(store: Store) -> list[str]:
    return [e.action for e in store.audit.list_events(newest_first=False)]


def test_create_user_and_service_account_with_roles(
    identities: IdentityService, store: Store
) -> None:
    alice = identities.create_user(
        "alice", email="alice@example.com", roles=["data-scientist", "viewer"]
    )
    ci = identities.create_service_account("ci-deployer", description="CI", roles=["ml-engineer"])
    assert alice.kind == "user" and alice.email == "alice@example.com"
    assert alice.global_roles == {"data-scientist", "viewer"}
    assert alice.created_by == "root"
    assert ci.kind == "service" and ci.global_roles == {"ml-engineer"}
    listed = identities.list_identities()
    assert [i.name for i in listed] == ["alice", "ci-deployer"]
    assert [i.name for i in identities.list_identities(kind="service")] == ["ci-deployer"]
    assert identities.get_identity("alice").as_dict()["bindings"] == [
        {"role": "data-scientist", "resource": "*"},
        {"role": "viewer", "resource": "*"},
    ]
    events = [e for e in store.audit.list_events(newest_first=False) if e.action.startswith("p")]
    assert events[0].details == {
        "kind": "user",
        "email": "alice@example.com",
        "roles": ["data-scientist", "viewer"],
    }
    assert store.audit.verify().ok


def test_create_refuses_duplicates_and_bad_input(identities: IdentityService) -> None:
    identities.create_user("alice")
    with pytest.raises(ConflictError, match="'alice' already exists"):
        identities.create_service_account("alice")
    for bad in ["", " alice", "al ice", "a" * 201, "-x", "ali\x00ce", "名前"]:
        with pytest.raises(InvalidInputError, match="principal name"):
            identities.create_user(bad)
    with pytest.raises(InvalidInputError, match="e-mail"):
        identities.create_user("bob", email="not-an-email")
    with pytest.raises(InvalidInputError, match="unknown role 'boss'"):
        identities.create_user("bob", roles=["boss"])
    assert identities.find_identity("bob") is None  # nothing half-created


def test_grant_and_revoke_roles_globally_and_per_resource(
    identities: IdentityService, store: Store
) -> None:
    identities.create_user("bob", roles=["viewer"])
    binding = identities.grant_role("bob", "data-scientist", resource="model:fraud")
    assert binding.resource == "model:fraud" and not binding.is_global
    identities.grant_role("bob", "model-risk", resource="team:risk")
    with pytest.raises(ConflictError, match="already holds the role 'data-scientist' on model"):
        identities.grant_role("bob", "data-scientist", resource="model:fraud")
    assert [(b.role, b.resource) for b in identities.list_bindings(principal="bob")] == [
        ("data-scientist", "model:fraud"),
        ("model-risk", "team:risk"),
        ("viewer", "*"),
    ]
    assert [b.principal for b in identities.list_bindings(resource="model:fraud")] == ["bob"]
    assert [b.role for b in identities.list_bindings(role="viewer")] == ["viewer"]

    identities.revoke_role("bob", "data-scientist", resource="model:fraud")
    with pytest.raises(NotFoundError, match=r"does not hold the role 'data-scientist' on model"):
        identities.revoke_role("bob", "data-scientist", resource="model:fraud")
    with pytest.raises(NotFoundError, match="no user or service account 'carol'"):
        identities.grant_role("carol", "viewer")
    with pytest.raises(InvalidInputError, match="unknown role"):
        identities.grant_role("bob", "superuser")
    with pytest.raises(InvalidInputError, match="TYPE:NAME"):
        identities.grant_role("bob", "viewer", resource="fraud")
    grants = [
        e.details for e in store.audit.list_events(newest_first=False) if e.action == "role.grant"
    ]
    assert grants == [
        {"role": "data-scientist", "resource": "model:fraud"},
        {"role": "model-risk", "resource": "team:risk"},
    ]
    assert _actions(store).count("role.revoke") == 1


def test_disable_and_enable(identities: IdentityService, store: Store) -> None:
    identities.create_user("bob")
    assert identities.disable("bob").disabled
    assert identities.disable("bob").disabled  # already disabled: no change, no event
    assert not identities.enable("bob").disabled
    assert _actions(store).count("principal.disable") == 1
    assert _actions(store).count("principal.enable") == 1
    assert [i.name for i in identities.list_identities(include_disabled=False)] == ["bob"]
    with pytest.raises(NotFoundError):
        identities.disable("nobody")


def test_changes_need_admin_and_denials_are_audited(
    identities: IdentityService, store: Store
) -> None:
    identities.create_user("bob", roles=["ml-engineer"])
    bob = IdentityService(acting_as(store, "bob"), settings=GovernanceSettings(user="root"))
    for attempt in (
        lambda: bob.create_user("mallory", roles=["admin"]),
        lambda: bob.grant_role("bob", "admin"),
        lambda: bob.revoke_role("bob", "ml-engineer"),
        lambda: bob.disable("bob"),
        lambda: bob.list_identities(),
    ):
        with pytest.raises(PermissionDeniedError, match="'bob' lacks the scope"):
            attempt()
    assert bob.get_identity("bob").name == "bob"  # one's own record is readable
    assert identities.find_identity("mallory") is None
    assert identities.get_identity("bob").global_roles == {"ml-engineer"}
    denied = [e for e in store.audit.list_events(newest_first=False) if e.action == "access.denied"]
    assert [(e.actor, e.details["scope"]) for e in denied] == [
        ("bob", "admin"),
        ("bob", "admin"),
        ("bob", "admin"),
        ("bob", "admin"),
        ("bob", "audit:read"),
    ]
    assert store.audit.verify().ok


def test_last_administrator_cannot_be_removed_by_an_authenticated_caller(
    identities: IdentityService, store: Store
) -> None:
    identities.create_user("alice", roles=["admin"])
    alice = IdentityService(acting_as(store, "alice"), settings=GovernanceSettings(user="root"))
    with pytest.raises(ConflictError, match="no enabled administrator"):
        alice.revoke_role("alice", "admin")
    with pytest.raises(ConflictError, match="no enabled administrator"):
        alice.disable("alice")
    alice.create_user("bob", roles=["admin"])
    alice.revoke_role("alice", "admin")  # bob remains
    # The local operator (embedded mode) is always an administrator and may do it.
    identities.revoke_role("bob", "admin")
    assert identities.list_bindings(role="admin") == []
