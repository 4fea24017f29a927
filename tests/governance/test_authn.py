"""The entry point: local identity, STEWARD_AUTH=required, and the SDK binding the caller."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.governance._support import token_for

from steward.core import PermissionDeniedError
from steward.governance import (
    AuthenticatedPrincipal,
    AuthenticationError,
    GovernanceAuthorizer,
    GovernanceSettings,
    IdentityService,
    authenticate,
)
from steward.sdk import connect
from steward.store import Store


def test_no_credential_is_the_local_identity_by_default(store: Store) -> None:
    for credential in (None, "", "   "):
        principal = authenticate(store, credential, GovernanceSettings(user="ops"))
        assert isinstance(principal, AuthenticatedPrincipal)
        assert (principal.name, principal.kind, principal.method) == ("ops", "local", "local")
        assert principal.allows("admin")


def test_required_mode_refuses_a_missing_token_and_says_how_to_get_one(store: Store) -> None:
    with pytest.raises(
        AuthenticationError, match=r"a token is needed \(STEWARD_AUTH=required\): set STEWARD_TOKEN"
    ):
        authenticate(store, None, GovernanceSettings(auth="required"))


def test_required_mode_accepts_a_token(store: Store, identities: IdentityService) -> None:
    identities.create_user("bob", roles=["viewer"])
    secret = token_for(store, "bob", scopes=["models:read"])
    principal = authenticate(store, secret, GovernanceSettings(auth="required"))
    assert principal.name == "bob"


def test_authentication_errors_are_permission_errors(store: Store) -> None:
    # scripts branching on PermissionDeniedError (exit code 5) catch both
    with pytest.raises(PermissionDeniedError):
        authenticate(store, "stw_bad", GovernanceSettings())


@pytest.fixture
def home(tmp_path: Path, database_url: str) -> dict[str, object]:
    return {"home": tmp_path / "sdk-home", "database_url": database_url}


def test_sdk_connect_binds_the_token_s_owner(
    home: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    with connect(**home, user="root", capture_environment=False) as admin:
        assert admin.principal.name == "root" and admin.principal.kind == "local"
        admin.identities.create_user("vic", roles=["viewer"])
        _, secret = admin.tokens.create_token("vic", name="sdk", scopes=["models:read"])

    with connect(**home, token=secret, capture_environment=False) as vic:
        assert vic.principal.name == "vic"
        assert isinstance(vic.store.authorizer, GovernanceAuthorizer)
        vic.store.authorize("models:read", resource="model:fraud")
        with pytest.raises(PermissionDeniedError, match="'vic' lacks the scope 'models:write'"):
            vic.store.authorize("models:write", resource="model:fraud")
        with pytest.raises(PermissionDeniedError, match="lacks the scope 'admin'"):
            vic.identities.create_user("mallory", roles=["admin"])
        events = vic.store.audit.list_events(action="access.denied", newest_first=False)
        assert [(e.actor, e.details["scope"]) for e in events] == [
            ("vic", "models:write"),
            ("vic", "admin"),
        ]
        assert vic.store.audit.verify().ok

    monkeypatch.setenv("STEWARD_TOKEN", secret)
    with connect(**home, capture_environment=False) as from_env:
        assert from_env.principal.name == "vic"


def test_sdk_connect_in_required_mode_without_token_fails(
    home: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEWARD_AUTH", "required")
    with pytest.raises(AuthenticationError, match="a token is needed"):
        connect(**home, capture_environment=False)
    with pytest.raises(AuthenticationError, match="unknown token"):
        connect(**home, token="stw_" + "0" * 32 + "_" + "a" * 43, capture_environment=False)
