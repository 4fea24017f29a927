"""The access seam: the store asks its authorizer, audits denials, binds principals."""

from __future__ import annotations

from pathlib import Path

import pytest

from steward.core import PermissionDeniedError, Principal, ScopeAuthorizer, scope_covers
from steward.store import Store, StoreSettings


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store.open(StoreSettings(home=tmp_path, user="alice"))
    opened.initialize()
    yield opened
    opened.close()


@pytest.mark.parametrize(
    ("granted", "wanted", "covers"),
    [
        ("admin", "models:promote", True),
        ("models:read", "models:read", True),
        ("models:read", "models:write", False),
        ("predict:*", "predict:fraud-api", True),
        ("predict:*", "predictor", False),
        ("features:read", "features:read:pii", False),
        ("features:*", "features:read:pii", True),
    ],
)
def test_scope_covers(granted: str, wanted: str, covers: bool) -> None:
    assert scope_covers(granted, wanted) is covers


def test_local_principal_may_do_anything(store: Store) -> None:
    assert store.principal.kind == "local"
    assert store.principal.name == "alice"
    store.authorize("models:promote", resource="model:fraud")  # no error
    assert [e.action for e in store.audit.list_events(newest_first=False)] == ["home.initialize"]


def test_denial_names_scope_and_is_audited(store: Store) -> None:
    bob = store.as_principal(Principal.of("bob", scopes=["models:read"]))
    bob.authorize("models:read")
    with pytest.raises(
        PermissionDeniedError, match=r"'bob' lacks the scope 'models:write' on model:fraud"
    ):
        bob.authorize("models:write", resource="model:fraud")
    denied = [e for e in store.audit.list_events(newest_first=False) if e.action == "access.denied"]
    assert len(denied) == 1
    assert denied[0].actor == "bob"
    assert denied[0].details == {"scope": "models:write", "resource": "model:fraud", "kind": "user"}
    assert store.audit.verify().ok


def test_as_principal_leaves_the_original_untouched(store: Store) -> None:
    bob = store.as_principal(Principal.of("bob"))
    assert store.actor == "alice"
    assert bob.actor == "bob"
    assert bob.database is store.database
    with bob.unit_of_work() as uow:
        uow.audit("thing.touch", "thing", "t1")
    assert store.audit.list_events(newest_first=False)[-1].actor == "bob"


class _DenyAll:
    def check(self, principal: Principal, scope: str, *, resource: str | None = None) -> None:
        raise PermissionDeniedError(f"no {scope} for anyone")


def test_custom_authorizer_is_consulted(store: Store) -> None:
    strict = store.with_authorizer(_DenyAll())
    with pytest.raises(PermissionDeniedError, match="no audit:read for anyone"):
        strict.authorize("audit:read")
    store.authorize("audit:read")  # the original keeps its authorizer
    assert isinstance(store.authorizer, ScopeAuthorizer)
