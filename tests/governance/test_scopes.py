"""Scopes, resources, roles and settings: the vocabulary, validated."""

from __future__ import annotations

from datetime import timedelta

import pytest

from steward.core import ConfigurationError, InvalidInputError, load_settings
from steward.governance import GovernanceSettings, RoleCatalog, parse_duration, parse_scopes
from steward.governance._scopes import cap_scopes, check_resource, check_scope


@pytest.mark.parametrize(
    "scope",
    [
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
        "models:*",
        "predict:*",
        "feedback:*",
        "features:*",
    ],
)
def test_scope_known_ones_pass(scope: str) -> None:
    assert check_scope(scope) == scope


@pytest.mark.parametrize(
    "scope",
    [
        "",
        "*",
        ":*",
        "models",
        "models:delete",
        "root",
        "predict:",
        "predict:a b",
        "feedback:",
        "feedback:a/b",
        "x:*",
    ],
)
def test_scope_unknown_ones_refused_naming_the_valid(scope: str) -> None:
    with pytest.raises(InvalidInputError, match=r"unknown scope .*valid: models:read"):
        check_scope(scope)


def test_parse_scopes_splits_sorts_and_dedupes() -> None:
    assert parse_scopes("models:read, predict:fraud-api models:read") == (
        "models:read",
        "predict:fraud-api",
    )
    with pytest.raises(InvalidInputError, match="at least one scope"):
        parse_scopes(" , ")


@pytest.mark.parametrize(
    ("resource", "normal"),
    [
        (None, "*"),
        ("*", "*"),
        ("model:fraud", "model:fraud"),
        ("team:risk", "team:risk"),
        ("deployment:fraud-api", "deployment:fraud-api"),
        ("feature_view:customer_stats", "feature_view:customer_stats"),
    ],
)
def test_resource_normalised(resource: str | None, normal: str) -> None:
    assert check_resource(resource) == normal


@pytest.mark.parametrize("resource", ["fraud", "model:", "dataset:x", "model:a b", "model:../x"])
def test_resource_malformed_refused(resource: str) -> None:
    with pytest.raises(InvalidInputError, match="TYPE:NAME"):
        check_resource(resource)


def test_cap_scopes_keeps_what_both_grant() -> None:
    assert cap_scopes({"admin"}, {"models:read"}) == {"models:read"}
    assert cap_scopes({"models:read"}, {"admin"}) == {"models:read"}
    assert cap_scopes({"models:*"}, {"models:read", "audit:read"}) == {"models:read"}
    assert cap_scopes({"predict:fraud-api"}, {"predict:*"}) == {"predict:fraud-api"}
    assert cap_scopes({"features:read:pii"}, {"features:read"}) == frozenset()


def test_catalog_builtin_approver_and_custom_roles() -> None:
    catalog = RoleCatalog(
        approver_roles=["model-risk", "ethics"], custom_roles={"pii-reader": ["features:read:pii"]}
    )
    names = [r.name for r in catalog.roles]
    assert names[:5] == ["viewer", "data-scientist", "ml-engineer", "approver", "admin"]
    assert {"model-risk", "ethics", "pii-reader"} <= set(names)
    assert catalog.is_approver("ethics") and catalog.is_approver("approver")
    assert not catalog.is_approver("ml-engineer")
    assert catalog.scopes_of(["pii-reader", "viewer", "gone"]) == {
        "features:read:pii",
        "models:read",
        "features:read",
    }
    assert catalog.carrying("models:promote") == ["ml-engineer"]
    with pytest.raises(InvalidInputError, match=r"unknown role 'boss'; valid: viewer"):
        catalog.get("boss")


@pytest.mark.parametrize(
    ("approvers", "custom", "match"),
    [
        (["admin"], {}, "clashes with the built-in"),
        (["Model Risk"], {}, "malformed"),
        ([], {"viewer": ["models:read"]}, "clashes with an existing"),
        ([], {"x": ["models:delete"]}, "unknown scope"),
    ],
)
def test_catalog_bad_configuration_refused(
    approvers: list[str], custom: dict[str, list[str]], match: str
) -> None:
    with pytest.raises(InvalidInputError, match=match):
        RoleCatalog(approver_roles=approvers, custom_roles=custom)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        ("2w", timedelta(weeks=2)),
        (3600, timedelta(hours=1)),
    ],
)
def test_parse_duration(text: str | int, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "30", "d", "-1d", "0d", "1y", "1.5d", "30 days"])
def test_parse_duration_refuses_nonsense(text: str) -> None:
    with pytest.raises(InvalidInputError, match="duration"):
        parse_duration(text)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_AUTH", "required")
    monkeypatch.setenv("STEWARD_JWT_ALGORITHMS", "RS256, ES256")
    monkeypatch.setenv("STEWARD_APPROVER_ROLES", "model-risk,ethics")
    monkeypatch.setenv("STEWARD_CUSTOM_ROLES", '{"pii-reader": ["features:read:pii"]}')
    monkeypatch.setenv("STEWARD_TOKEN_DEFAULT_EXPIRY", "7d")
    settings = load_settings(GovernanceSettings)
    assert settings.auth == "required"
    assert settings.jwt_algorithms == ["RS256", "ES256"]
    assert settings.approver_roles == ["model-risk", "ethics"]
    assert settings.token_default_expiry == timedelta(days=7)
    assert "pii-reader" in {r.name for r in settings.role_catalog().roles}


@pytest.mark.parametrize(
    ("env", "value", "match"),
    [
        ("STEWARD_JWT_ALGORITHMS", "none", "never 'none'"),
        ("STEWARD_JWT_ALGORITHMS", "RS256,HS256", "HS"),
        ("STEWARD_AUTH", "off", "STEWARD_AUTH"),
        ("STEWARD_TOKEN_DEFAULT_EXPIRY", "forever", "duration"),
        ("STEWARD_TOKEN_DEFAULT_EXPIRY", "400d", "longer than token_max_expiry"),
        ("STEWARD_APPROVER_ROLES", "admin", "clashes"),
        ("STEWARD_JWT_JWKS_FILE", "jwks.json", "STEWARD_JWT_ISSUER and STEWARD_JWT_AUDIENCE"),
        ("STEWARD_JWT_LEEWAY", "3600", "STEWARD_JWT_LEEWAY"),
    ],
)
def test_settings_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, match: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigurationError, match=match):
        load_settings(GovernanceSettings)


def test_settings_one_key_source_only() -> None:
    with pytest.raises(ConfigurationError, match="only one of"):
        load_settings(
            GovernanceSettings,
            jwt_issuer="https://idp",
            jwt_audience="steward",
            jwt_jwks_file="a.json",
            jwt_public_key_file="b.pem",
        )
