"""``steward users|roles|tokens|whoami`` and the global --token, as a shell meets them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tests.cli._helpers import run


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("STEWARD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("STEWARD_USER", "root")
    monkeypatch.setenv("STEWARD_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


Run = pytest.CaptureFixture[str]


def _ok(args: list[str], capsys: Run, monkeypatch: pytest.MonkeyPatch) -> str:
    code, out, err = run(args, capsys, monkeypatch)
    assert code == 0, err
    return out


def _token(
    owner: str, scopes: str, capsys: Run, monkeypatch: pytest.MonkeyPatch, name: str = "t"
) -> dict[str, object]:
    out = _ok(
        ["tokens", "create", "--name", name, "--scopes", scopes, "--for", owner, "--json"],
        capsys,
        monkeypatch,
    )
    created: dict[str, object] = json.loads(out)
    return created


def test_cli_users_roles_and_tokens_flow(capsys: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    _ok(["users", "create", "alice", "--role", "admin"], capsys, monkeypatch)
    bob = json.loads(
        _ok(
            ["users", "create", "bob", "-r", "viewer", "--email", "bob@example.com", "--json"],
            capsys,
            monkeypatch,
        )
    )
    assert bob["bindings"] == [{"role": "viewer", "resource": "*"}]
    out = _ok(["users", "create", "ci", "--service", "--role", "ml-engineer"], capsys, monkeypatch)
    assert "service account ci created (ml-engineer)" in out

    created = _token("bob", "models:read,models:write", capsys, monkeypatch)
    secret = str(created["token"])
    assert secret.startswith("stw_") and created["scopes"] == ["models:read", "models:write"]

    me = json.loads(_ok(["--token", secret, "whoami", "--json"], capsys, monkeypatch))
    assert (me["name"], me["method"], me["roles"], me["scopes"]) == (
        "bob",
        "token",
        ["viewer"],
        ["models:read"],
    )
    monkeypatch.setenv("STEWARD_TOKEN", secret)
    assert "bob via token" in _ok(["whoami"], capsys, monkeypatch)

    code, _, err = run(["roles", "grant", "admin", "--to", "bob"], capsys, monkeypatch)
    assert code == 5
    assert "'bob' lacks the scope 'admin'" in err
    monkeypatch.delenv("STEWARD_TOKEN")

    out = _ok(
        ["roles", "grant", "data-scientist", "--to", "bob", "--on", "model:fraud"],
        capsys,
        monkeypatch,
    )
    assert "granted data-scientist to bob on model:fraud" in out
    bindings = json.loads(
        _ok(["roles", "bindings", "--user", "bob", "--json"], capsys, monkeypatch)
    )
    assert [(b["role"], b["resource"]) for b in bindings] == [
        ("data-scientist", "model:fraud"),
        ("viewer", "*"),
    ]
    _ok(
        ["roles", "revoke", "data-scientist", "--from", "bob", "--on", "model:fraud"],
        capsys,
        monkeypatch,
    )
    listed = json.loads(_ok(["users", "list", "--json"], capsys, monkeypatch))
    assert [u["name"] for u in listed] == ["alice", "bob", "ci"]

    tokens = json.loads(_ok(["tokens", "list", "--json"], capsys, monkeypatch))
    assert [(t["principal"], t["state"]) for t in tokens] == [("bob", "active")]
    assert "token" not in tokens[0]  # the secret is never shown again
    _ok(["tokens", "revoke", str(created["id"])], capsys, monkeypatch)
    code, _, err = run(["--token", secret, "whoami"], capsys, monkeypatch)
    assert code == 5
    assert "was revoked" in err

    log = json.loads(_ok(["audit", "log", "--json", "--limit", "100"], capsys, monkeypatch))
    actions = {e["action"] for e in log}
    assert {"principal.create", "role.grant", "role.revoke", "token.create", "token.revoke"} <= (
        actions
    )
    assert {"access.denied", "auth.refused"} <= actions
    assert json.loads(_ok(["audit", "verify", "--json"], capsys, monkeypatch))["ok"]


def test_cli_required_mode(capsys: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    _ok(["users", "create", "alice", "--role", "admin"], capsys, monkeypatch)
    secret = str(_token("alice", "admin", capsys, monkeypatch)["token"])
    monkeypatch.setenv("STEWARD_AUTH", "required")
    for args in (["runs", "list"], ["audit", "log"], ["users", "list"], ["whoami"]):
        code, _, err = run(args, capsys, monkeypatch)
        assert code == 5, args
        assert "a token is needed (STEWARD_AUTH=required)" in err
    _ok(["init"], capsys, monkeypatch)  # operator commands act on the database itself
    _ok(["db", "current"], capsys, monkeypatch)
    assert "alice" in _ok(["--token", secret, "users", "list"], capsys, monkeypatch)
    _ok(["--token", secret, "runs", "list"], capsys, monkeypatch)


def test_cli_audit_needs_audit_read(capsys: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    _ok(["users", "create", "vic", "--role", "viewer"], capsys, monkeypatch)
    _ok(["users", "create", "ann", "--role", "approver"], capsys, monkeypatch)
    vic = str(_token("vic", "models:read", capsys, monkeypatch)["token"])
    ann = str(_token("ann", "audit:read", capsys, monkeypatch)["token"])
    code, _, err = run(["--token", vic, "audit", "log"], capsys, monkeypatch)
    assert code == 5
    assert "'vic' lacks the scope 'audit:read'" in err
    assert json.loads(_ok(["--token", ann, "audit", "verify", "--json"], capsys, monkeypatch))["ok"]


def test_cli_bad_input_exit_codes(capsys: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    _ok(["users", "create", "bob"], capsys, monkeypatch)
    cases = [
        (["roles", "grant", "boss", "--to", "bob"], 2, "unknown role 'boss'"),
        (["roles", "grant", "viewer", "--to", "bob", "--on", "fraud"], 2, "TYPE:NAME"),
        (["roles", "grant", "viewer", "--to", "zed"], 3, "no user or service account 'zed'"),
        (["users", "create", "bob"], 4, "already exists"),
        (["users", "create", "bad name"], 2, "principal name"),
        (
            ["tokens", "create", "--name", "t", "--scopes", "models:delete", "--for", "bob"],
            2,
            "unknown scope",
        ),
        (
            [
                "tokens",
                "create",
                "--name",
                "t",
                "--scopes",
                "admin",
                "--for",
                "bob",
                "--expires",
                "400d",
            ],
            2,
            "at most 365 days",
        ),
        (
            [
                "tokens",
                "create",
                "--name",
                "t",
                "--scopes",
                "admin",
                "--for",
                "bob",
                "--expires",
                "soon",
            ],
            2,
            "duration 'soon'",
        ),
        (["tokens", "create", "--name", "t", "--scopes", "admin"], 3, "pass --for USER"),
        (["tokens", "revoke", "nope"], 2, "malformed"),
        (["--token", "x" * 9000, "whoami"], 5, "the limit is 8,192"),
        (["--token", "not-a-token", "whoami"], 5, "neither a steward token"),
        (["--token", "a.b.c", "whoami"], 5, "no identity provider is configured"),
    ]
    for args, expected, message in cases:
        code, _, err = run(args, capsys, monkeypatch)
        assert (code, message in err) == (expected, True), (args, err)


def test_cli_disabled_user_s_token_refused(capsys: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    _ok(["users", "create", "bob", "--role", "viewer"], capsys, monkeypatch)
    secret = str(_token("bob", "models:read", capsys, monkeypatch)["token"])
    _ok(["users", "disable", "bob"], capsys, monkeypatch)
    code, _, err = run(["--token", secret, "whoami"], capsys, monkeypatch)
    assert code == 5
    assert "disabled" in err
    _ok(["users", "enable", "bob"], capsys, monkeypatch)
    assert "bob" in _ok(["--token", secret, "whoami"], capsys, monkeypatch)


def test_cli_roles_list_and_human_output(capsys: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_APPROVER_ROLES", "model-risk,ethics")
    roles = json.loads(_ok(["roles", "list", "--json"], capsys, monkeypatch))
    by_name = {r["name"]: r for r in roles}
    assert by_name["ethics"]["approver"] is True
    assert by_name["viewer"]["scopes"] == ["features:read", "models:read"]
    assert "ml-engineer" in _ok(["roles", "list"], capsys, monkeypatch)
    _ok(["users", "create", "bob"], capsys, monkeypatch)
    code, out, err = run(
        ["tokens", "create", "--name", "t", "--scopes", "models:read", "--for", "bob"],
        capsys,
        monkeypatch,
    )
    assert code == 0
    assert out.strip().startswith("stw_") and "shown once" in err
    assert "local" in _ok(["whoami"], capsys, monkeypatch)
