"""``steward deployments create|update|rollback|show|list|history`` and ``steward gateway``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.cli._helpers import run
from tests.serving._deploy_support import open_home

import steward.cli._gateway as gateway_cli


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    open_home(path).store.close()
    monkeypatch.setenv("STEWARD_HOME", str(path))
    return path


def test_deployments_cli_create_update_rollback_history(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(
        ["deployments", "create", "fraud-api", "--model", "fraud@champion", "--json"],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    created = json.loads(out)
    assert created["revision"] == 1
    assert created["latest"]["spec"]["variants"][0] == {
        "name": "champion",
        "model": "fraud:1",
        "role": "primary",
        "weight": 1.0,
    }
    code, out, err = run(
        [
            "deployments", "update", "fraud-api",
            "--model", "fraud@champion", "--model", "next=fraud:2", "--weights", "90,10",
            "--shadow", "fraud:2", "--set", "timeout_ms=250", "--reason", "canary",
        ],
        capsys,
        monkeypatch,
    )  # fmt: skip
    assert code == 0, err
    assert "revision 2" in out and "shadow-fraud-2" in out
    code, out, err = run(["deployments", "rollback", "fraud-api", "1"], capsys, monkeypatch)
    assert code == 0, err
    assert "rolled back to revision 1" in out
    code, out, _ = run(["deployments", "history", "fraud-api", "--json"], capsys, monkeypatch)
    history = json.loads(out)
    assert [r["revision"] for r in history] == [1, 2, 3]
    assert history[1]["settings"]["timeout_ms"] == 250
    assert history[2]["rollback_of"] == 1
    code, out, _ = run(["deployments", "show", "fraud-api"], capsys, monkeypatch)
    assert code == 0 and "revision 3" in out
    code, out, _ = run(["deployments", "list", "--json"], capsys, monkeypatch)
    assert [d["name"] for d in json.loads(out)] == ["fraud-api"]


def test_deployments_cli_errors_are_one_line_with_exit_codes(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(["deployments", "show", "nope"], capsys, monkeypatch)
    assert code == 3 and "no deployment named 'nope'" in err
    code, _, err = run(
        ["deployments", "create", "p", "--model", "fraud:2", "--production"], capsys, monkeypatch
    )
    assert code == 4 and "stage staging" in err
    code, _, err = run(
        ["deployments", "create", "w", "--model", "fraud:1", "--weights", "1,2"],
        capsys,
        monkeypatch,
    )
    assert code == 2 and "--weights" in err
    code, _, err = run(["deployments", "create", "w"], capsys, monkeypatch)
    assert code == 2 and "--model" in err


def test_gateway_cli_runs_uvicorn_with_the_factory(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def fake_run(app: str, **options: Any) -> None:
        seen.update(options, app=app)

    monkeypatch.setattr(gateway_cli.uvicorn, "run", fake_run)
    # The command exports its settings for the worker processes; restore them afterwards.
    for name in ("INSECURE_LOCAL", "HOST", "PORT", "WORKERS"):
        monkeypatch.setenv(f"STEWARD_GATEWAY_{name}", "")
    code, _, err = run(
        ["gateway", "--port", "8799", "--workers", "2", "--insecure-local"], capsys, monkeypatch
    )
    assert code == 0
    assert seen["app"] == "steward.serving:create_app_from_env"
    assert seen["factory"] is True and seen["workers"] == 2 and seen["port"] == 8799
    assert "INSECURE LOCAL MODE" in err


def test_deployments_cli_canary_start_status_step_abort(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(
        ["deployments", "create", "fraud-api", "--model", "fraud@champion"], capsys, monkeypatch
    )
    assert code == 0, err
    code, out, err = run(
        [
            "deployments", "canary", "start", "fraud-api", "--candidate", "fraud:2",
            "--plan", "20,100", "--shadow-first", "--min-requests", "10", "--no-psi",
            "--reason", "try v2",
        ],
        capsys,
        monkeypatch,
    )  # fmt: skip
    assert code == 0, err
    assert "'canary' against 'champion'" in out and "shadow → 20 % → 100 %" in out
    code, out, err = run(["deployments", "canary", "status", "fraud-api"], capsys, monkeypatch)
    assert code == 0, err
    text = " ".join(out.split())  # the console wraps long lines
    assert "running in shadow" in text
    assert "the canary has 0 of the 10 requests a step needs" in text
    code, out, err = run(
        ["deployments", "canary", "step", "fraud-api", "--json"], capsys, monkeypatch
    )
    assert code == 0, err
    assert json.loads(out)["kind"] == "hold"
    code, out, err = run(
        ["deployments", "canary", "abort", "fraud-api", "--reason", "not today"],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    assert out.startswith("rollback: shadow→0%") and "not today" in " ".join(out.split())
    code, out, err = run(
        ["deployments", "canary", "status", "fraud-api", "--json"], capsys, monkeypatch
    )
    report = json.loads(out)
    assert report["state"]["status"] == "rolled_back" and report["now"] is None
    assert [d["kind"] for d in report["decisions"]] == ["rollback"]
    assert report["decisions"][0]["source"] == "abort"
    code, out, _ = run(["deployments", "history", "fraud-api", "--json"], capsys, monkeypatch)
    assert [len(r["spec"]["variants"]) for r in json.loads(out)] == [1, 2, 1]


def test_deployments_cli_canary_errors_name_the_problem(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run(["deployments", "create", "fraud-api", "--model", "fraud@champion"], capsys, monkeypatch)
    code, _, err = run(
        ["deployments", "canary", "start", "fraud-api", "--candidate", "fraud:2", "--plan", "5,x"],
        capsys,
        monkeypatch,
    )
    assert code != 0 and "--plan '5,x'" in err
    code, _, err = run(
        ["deployments", "canary", "start", "fraud-api", "--candidate", "fraud:2", "--plan", "50"],
        capsys,
        monkeypatch,
    )
    assert code != 0 and "ending at 100" in err
    code, _, err = run(["deployments", "canary", "status", "fraud-api"], capsys, monkeypatch)
    assert code != 0 and "has had no canary" in err
    code, _, err = run(
        ["deployments", "canary", "abort", "fraud-api", "--reason", "x"], capsys, monkeypatch
    )
    assert code != 0 and "no running canary" in err
