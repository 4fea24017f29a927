"""``steward policy apply|show|history``, ``steward promote`` and ``steward approvals``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from tests.cli._helpers import run

from steward.sdk import connect

POLICY = """\
policy: cli
gates:
  high:
    production:
      checks: ["holdout auc >= 0.8"]
      approvals: [{role: admin, count: 1}]
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("STEWARD_HOME", str(home))
    monkeypatch.setenv("STEWARD_USER", "dana")
    x = pd.DataFrame(np.random.default_rng(0).normal(size=(100, 2)), columns=["a", "b"])
    model = LogisticRegression().fit(x, (x["a"] > 0).astype(int))
    with connect(home=home, capture_environment=False) as st:
        for auc in (0.9, 0.7):
            with st.start_run("credit") as r:
                r.log_metrics({"holdout.auc": auc})
                r.register_model(model, name="credit", sample_input=x.head(10))
        st.registry.update_model("credit", risk_tier="high")
    (tmp_path / "policy.yaml").write_text(POLICY)
    return home


def test_policy_apply_show_history(home: Path, capsys, monkeypatch) -> None:
    policy = str(home.parent / "policy.yaml")
    code, out, _ = run(["policy", "show"], capsys, monkeypatch)
    assert code == 0 and "no policy applied yet" in out
    code, out, _ = run(["policy", "apply", policy], capsys, monkeypatch)
    assert code == 0 and "in force as version 1" in out
    code, out, _ = run(["policy", "apply", policy, "--json"], capsys, monkeypatch)
    assert json.loads(out)["changed"] is False
    code, out, _ = run(["policy", "show"], capsys, monkeypatch)
    assert "holdout auc >= 0.8" in out
    code, out, _ = run(["policy", "history", "--json"], capsys, monkeypatch)
    assert [v["version"] for v in json.loads(out)] == [1]


def test_promote_approve_flow(home: Path, capsys, monkeypatch) -> None:
    run(["policy", "apply", str(home.parent / "policy.yaml")], capsys, monkeypatch)
    code, out, _ = run(
        ["promote", "credit:1", "--to", "production", "--dry-run"], capsys, monkeypatch
    )
    assert code == 0 and "checks pass" in out and "dana may not approve" in out
    code, out, _ = run(
        [
            "promote",
            "credit:1",
            "--to",
            "production",
            "-r",
            "better",
            "--alias",
            "champion",
            "--json",
        ],
        capsys,
        monkeypatch,
    )
    request = json.loads(out)
    assert request["status"] == "pending" and request["approvals_missing"] == {"admin": 1}
    code, out, _ = run(["approvals", "list", "--json"], capsys, monkeypatch)
    assert [r["id"] for r in json.loads(out)] == [request["id"]]
    code, out, _ = run(["approvals", "show", request["id"]], capsys, monkeypatch)
    assert "waiting for 1 more from admin" in out
    code, _, err = run(["approvals", "approve", request["id"]], capsys, monkeypatch)
    assert code == 5 and "separation of duties" in err
    monkeypatch.setenv("STEWARD_USER", "root")
    code, out, _ = run(["approvals", "approve", request["id"], "-m", "ok"], capsys, monkeypatch)
    assert code == 0 and "executed" in out
    code, out, _ = run(["models", "versions", "credit", "--json"], capsys, monkeypatch)
    assert "champion" in out


def test_failed_checks_exit_4_and_direct_moves_are_refused(home: Path, capsys, monkeypatch) -> None:
    run(["policy", "apply", str(home.parent / "policy.yaml")], capsys, monkeypatch)
    code, out, _ = run(
        ["promote", "credit:2", "--to", "production", "-r", "x"], capsys, monkeypatch
    )
    assert code == 4 and "FAIL" in out and "checks_failed" in out
    code, _, err = run(["models", "stage", "credit:1", "production"], capsys, monkeypatch)
    assert code == 5 and "steward promote credit:1 --to production" in err


def test_bad_input(home: Path, capsys, monkeypatch) -> None:
    code, _, err = run(["promote", "credit:1", "--to", "production"], capsys, monkeypatch)
    assert code == 2 and "needs a reason" in err
    code, _, err = run(
        ["promote", "credit:1", "--to", "production", "-r", "x", "--data", "oops"],
        capsys,
        monkeypatch,
    )
    assert code == 2 and "ROLE=PATH" in err
    code, _, err = run(["approvals", "approve", "nope"], capsys, monkeypatch)
    assert code == 3


def _ok(args: list[str], capsys, monkeypatch) -> str:
    code, out, err = run(args, capsys, monkeypatch)
    assert code == 0, err
    return out


def _secret(user: str, role: str, scopes: str, capsys, monkeypatch) -> str:
    _ok(["users", "create", user, "--role", role], capsys, monkeypatch)
    out = _ok(
        ["tokens", "create", "--name", "t", "--scopes", scopes, "--for", user, "--json"],
        capsys,
        monkeypatch,
    )
    return str(json.loads(out)["token"])


def test_policy_apply_with_a_viewer_token_is_refused(home: Path, capsys, monkeypatch) -> None:
    viewer = _secret("vic", "viewer", "models:read", capsys, monkeypatch)
    policy = str(home.parent / "policy.yaml")
    code, _, err = run(["--token", viewer, "policy", "apply", policy], capsys, monkeypatch)
    assert code == 5 and "'vic' lacks the scope 'admin'" in err
    code, out, _ = run(["policy", "show"], capsys, monkeypatch)
    assert "no policy applied yet" in out


def test_approval_given_with_token_is_recorded_under_its_holder(
    home: Path, capsys, monkeypatch
) -> None:
    ada = _secret("ada", "admin", "admin", capsys, monkeypatch)
    _ok(["policy", "apply", str(home.parent / "policy.yaml")], capsys, monkeypatch)
    out = _ok(
        ["promote", "credit:1", "--to", "production", "-r", "x", "--json"], capsys, monkeypatch
    )
    request = json.loads(out)
    out = _ok(
        ["--token", ada, "approvals", "approve", request["id"], "-m", "ok"], capsys, monkeypatch
    )
    assert "executed" in out
    shown = json.loads(_ok(["approvals", "show", request["id"], "--json"], capsys, monkeypatch))
    assert [(d["approver"], d["comment"]) for d in shown["decisions"]] == [("ada", "ok")]


def test_required_auth_approvals_list_with_token(home: Path, capsys, monkeypatch) -> None:
    ada = _secret("ada", "admin", "admin", capsys, monkeypatch)
    _ok(["policy", "apply", str(home.parent / "policy.yaml")], capsys, monkeypatch)
    out = _ok(
        ["promote", "credit:1", "--to", "production", "-r", "x", "--json"], capsys, monkeypatch
    )
    request = json.loads(out)
    monkeypatch.setenv("STEWARD_AUTH", "required")
    code, _, err = run(["approvals", "list"], capsys, monkeypatch)
    assert code == 5 and "a token is needed (STEWARD_AUTH=required)" in err
    listed = json.loads(_ok(["--token", ada, "approvals", "list", "--json"], capsys, monkeypatch))
    assert [r["id"] for r in listed] == [request["id"]]


def test_approval_during_a_freeze_is_held_then_executed(home: Path, capsys, monkeypatch) -> None:
    policy = home.parent / "policy.yaml"
    policy.write_text(
        POLICY + "freeze_windows:\n  - {name: now, start: 2000-01-01, end: 2100-01-01}\n"
        "emergency:\n  approvals: [{role: admin, count: 1}]\n"
    )
    _ok(["policy", "apply", str(policy)], capsys, monkeypatch)
    code, _, err = run(
        ["promote", "credit:1", "--to", "production", "-r", "x"], capsys, monkeypatch
    )
    assert code == 4 and "is frozen (now" in err
    code, _, err = run(["approvals", "execute", "nope"], capsys, monkeypatch)
    assert code == 3 and "'nope' does not exist" in err
