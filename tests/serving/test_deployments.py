"""Deployments: revisions, alias resolution, rollback, production rules, access, audit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.serving._deploy_support import Home, open_home

from steward.core import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    Principal,
    ScopeAuthorizer,
)
from steward.serving import DeploymentService, RoutingSpec, Variant


@pytest.fixture
def home(database_url: str, tmp_path: Path) -> Iterator[Home]:
    h = open_home(tmp_path / "home", database_url)
    yield h
    h.store.close()


def test_deploy_create_resolves_alias_to_a_concrete_version(home: Home) -> None:
    dep = home.deployments.create("fraud-api", [Variant("champion", "fraud@champion")])
    assert dep.revision == 1
    assert dep.latest.spec.variants[0].model == "fraud:1"
    assert dep.latest.requested == {"champion": "fraud@champion"}
    assert dep.latest.spec.salt == "fraud-api"
    # Moving the alias later does not change what revision 1 serves.
    home.registry.set_alias("fraud:2", "champion")
    assert home.deployments.get("fraud-api").latest.spec.variants[0].model == "fraud:1"


def test_deploy_update_appends_revisions_and_rollback_copies(home: Home) -> None:
    home.deployments.create("fraud-api", [Variant("champion", "fraud:1")])
    home.deployments.update(
        "fraud-api",
        [Variant("champion", "fraud:1", weight=90), Variant("next", "fraud:2", weight=10)],
        reason="canary",
    )
    home.deployments.update("fraud-api", settings={"timeout_ms": 50})
    dep = home.deployments.rollback("fraud-api", 1, reason="bad canary")
    assert dep.revision == 4
    assert dep.latest.rollback_of == 1
    assert [v.model for v in dep.latest.spec.variants] == ["fraud:1"]
    assert dep.latest.settings.timeout_ms == 1000.0
    history = home.deployments.history("fraud-api")
    assert [r.revision for r in history] == [1, 2, 3, 4]
    assert history[2].settings.timeout_ms == 50
    assert [v.name for v in history[2].spec.variants] == ["champion", "next"]
    events = home.store.audit.list_events(object_id="fraud-api", newest_first=False)
    actions = [e.action for e in events]
    assert actions == [
        "deployment.create",
        "deployment.update",
        "deployment.update",
        "deployment.rollback",
    ]


def test_deploy_production_refuses_versions_outside_production(home: Home) -> None:
    with pytest.raises(ConflictError, match="fraud:2, which is in stage staging"):
        home.deployments.create("prod-api", [Variant("a", "fraud:2")], production=True)
    dep = home.deployments.create("prod-api", [Variant("a", "fraud@champion")], production=True)
    assert dep.production
    with pytest.raises(ConflictError, match="production"):
        home.deployments.update("prod-api", [Variant("a", "fraud:1"), Variant("b", "fraud:2")])
    assert home.deployments.get("prod-api").revision == 1


def test_deploy_refuses_archived_versions_even_on_rollback(home: Home) -> None:
    home.deployments.create("fraud-api", [Variant("a", "fraud:2")])
    home.deployments.update("fraud-api", [Variant("a", "fraud:1")])
    home.registry.archive("fraud:2", reason="leaky feature")
    with pytest.raises(ConflictError, match="archived"):
        home.deployments.rollback("fraud-api", 1)
    with pytest.raises(ConflictError, match="archived"):
        home.deployments.create("other", [Variant("a", "fraud:2")])
    assert home.deployments.get("fraud-api").revision == 2


def test_deploy_bad_input_is_refused_with_a_clear_message(home: Home) -> None:
    deployments = home.deployments
    with pytest.raises(InvalidInputError, match="deployment name"):
        deployments.create("../etc", [Variant("a", "fraud:1")])
    with pytest.raises(NotFoundError):
        deployments.create("x", [Variant("a", "nosuch:1")])
    with pytest.raises(InvalidInputError, match="unknown deployment setting"):
        deployments.create("x", [Variant("a", "fraud:1")], settings={"turbo": True})
    with pytest.raises(InvalidInputError, match="timeout_ms"):
        deployments.create("x", [Variant("a", "fraud:1")], settings={"timeout_ms": -1})
    with pytest.raises(InvalidInputError, match="fallback kind"):
        deployments.create("x", [Variant("a", "fraud:1")], settings={"fallback": {"kind": "?"}})
    deployments.create("x", {"variants": [{"name": "a", "model": "fraud:1"}]})
    with pytest.raises(ConflictError, match="already exists"):
        deployments.create("x", [Variant("a", "fraud:1")])
    with pytest.raises(NotFoundError, match="revisions are 1 to 1"):
        deployments.rollback("x", 7)
    with pytest.raises(NotFoundError, match="deployments: x"):
        deployments.get("nope")
    assert [d.name for d in deployments.list_deployments()] == ["x"]
    assert deployments.latest_revisions() == {"x": 1}


def test_deploy_variant_timeouts_and_bandit_policy_are_checked(home: Home) -> None:
    deployments = home.deployments
    two = [Variant("a", "fraud:1"), Variant("b", "fraud:2")]
    dep = deployments.create("x", two, settings={"variant_timeout_ms": {"b": 250, "a": None}})
    assert dep.latest.settings.timeout_s("a") is None
    assert dep.latest.settings.timeout_s("b") == 0.25
    with pytest.raises(InvalidInputError, match=r"names variant\(s\) 'c'.*variants: a, b"):
        deployments.update("x", settings={"variant_timeout_ms": {"c": 100}})
    with pytest.raises(InvalidInputError, match=r"names variant\(s\) 'b'"):
        deployments.update("x", [Variant("a", "fraud:1")])  # b's timeout would dangle
    with pytest.raises(InvalidInputError, match=r"variant_timeout_ms\['a'\] is -5"):
        deployments.update("x", settings={"variant_timeout_ms": {"a": -5}})
    with pytest.raises(InvalidInputError, match="must map variant names"):
        deployments.update("x", settings={"variant_timeout_ms": [100]})
    with pytest.raises(InvalidInputError, match="bandit_policy 'ucb' is not valid; valid: thom"):
        deployments.update("x", settings={"bandit_policy": "ucb"})
    with pytest.raises(InvalidInputError, match=r"bandit_epsilon is 1\.5"):
        deployments.update("x", settings={"bandit_epsilon": 1.5})
    dep = deployments.update("x", settings={"bandit_policy": "epsilon_greedy"})
    assert dep.revision == 2
    assert dep.latest.settings.bandit_policy == "epsilon_greedy"
    assert dep.latest.settings.variant_timeout_ms == {"b": 250, "a": None}


def test_deploy_changes_need_the_deployments_write_scope(home: Home) -> None:
    reader = home.store.as_principal(
        Principal(name="ana", kind="user", scopes=frozenset({"models:read"}))
    ).with_authorizer(ScopeAuthorizer())
    service = DeploymentService(reader, home.registry)
    with pytest.raises(PermissionDeniedError, match="deployments:write"):
        service.create("fraud-api", RoutingSpec(variants=(Variant("a", "fraud:1"),)))
    denied = home.store.audit.list_events(action="access.denied")
    assert denied and denied[0].details["resource"] == "deployment:fraud-api"
    assert home.deployments.find("fraud-api") is None
