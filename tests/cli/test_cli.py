"""The command line, as a user and a script meet it: output, --json, exit codes, errors."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from tests.cli._helpers import run


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("STEWARD_HOME", "STEWARD_DATABASE_URL", "STEWARD_ARTIFACT_URI", "STEWARD_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STEWARD_USER", "tester")
    monkeypatch.chdir(tmp_path)


def test_cli_version_json(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(["version", "--json"], capsys, monkeypatch)
    assert code == 0
    assert json.loads(out)["steward"]


def test_cli_init_then_verify_and_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    code, out, _ = run(["init", "--home", str(home), "--json"], capsys, monkeypatch)
    assert code == 0
    facts = json.loads(out)
    assert facts["initialized"] is True
    assert (home / "steward.db").is_file()
    code, out, _ = run(["init", "--home", str(home), "--json"], capsys, monkeypatch)
    assert json.loads(out)["initialized"] is False

    code, out, _ = run(["audit", "verify", "--home", str(home), "--json"], capsys, monkeypatch)
    assert code == 0
    assert json.loads(out)["ok"] is True

    code, out, _ = run(
        ["audit", "log", "--home", str(home), "--json", "--actor", "tester"], capsys, monkeypatch
    )
    events = json.loads(out)
    assert [e["action"] for e in events] == ["home.initialize"]

    code, out, _ = run(["db", "current", "--home", str(home), "--json"], capsys, monkeypatch)
    assert json.loads(out)["up_to_date"] is True


def test_cli_verify_fails_on_tampering_naming_the_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    run(["init", "--home", str(home)], capsys, monkeypatch)
    code, out, _ = run(["audit", "head", "--home", str(home), "--json"], capsys, monkeypatch)
    anchor = json.loads(out)["head"]
    with sqlite3.connect(home / "steward.db") as conn:
        conn.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 1")
    code, _, err = run(["audit", "verify", "--home", str(home)], capsys, monkeypatch)
    assert code == 1
    assert "BROKEN at event 1" in err
    code, out, _ = run(
        ["audit", "verify", "--home", str(home), "--anchor", anchor, "--json"], capsys, monkeypatch
    )
    assert code == 1
    assert json.loads(out)["first_bad_seq"] == 1


def test_cli_export_writes_jsonl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    run(["init", "--home", str(home)], capsys, monkeypatch)
    target = tmp_path / "audit.jsonl"
    code, _, err = run(
        ["audit", "export", "--home", str(home), "-o", str(target)], capsys, monkeypatch
    )
    assert code == 0
    assert "wrote 1 events" in err
    line = json.loads(target.read_text().splitlines()[0])
    assert line["actor"] == "tester"


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (
            ["init"],
            {"STEWARD_DATABASE_URL": "mongodb://x"},
            2,
            "STEWARD_DATABASE_URL has unsupported scheme 'mongodb'",
        ),
        (["init"], {"STEWARD_ARTIFACT_URI": "gopher://x/y"}, 2, "STEWARD_ARTIFACT_URI"),
        (
            ["init"],
            {"STEWARD_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:1/x"},
            7,
            "cannot connect",
        ),
        (["audit", "log", "--since", "yesterday"], {}, 2, "--since 'yesterday' is not an ISO date"),
        (
            ["audit", "export", "--format", "xml"],
            {},
            2,
            "--format 'xml' is not supported; valid: jsonl",
        ),
        (["audit", "verify", "--anchor", "nope"], {}, 2, "SEQ:HASH"),
    ],
)
def test_cli_user_errors_are_one_line_with_exit_code(
    args: list[str],
    env: dict[str, str],
    code: int,
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    got, _, err = run(args, capsys, monkeypatch)
    assert got == code
    assert message in err
    assert "Traceback" not in err


def test_cli_unwritable_home_names_the_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(["init", "--home", str(blocker / "home")], capsys, monkeypatch)
    assert code == 2
    assert "STEWARD_HOME" in err


def test_cli_usage_error_exit_code(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(["audit", "log", "--limit", "0"], capsys, monkeypatch)
    assert code == 2
    assert "--limit" in err


def test_cli_demo_json_reports_audit_steps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(["demo", "--home", str(tmp_path / "demo"), "--json"], capsys, monkeypatch)
    assert code == 0
    steps = {s["step"]: s for s in json.loads(out)["steps"]}
    assert steps["audit.verify"]["ok"] is True
    assert steps["audit.tamper_demo"]["detected"] is True
    assert steps["audit.tamper_demo"]["first_bad_seq"] == 2
    assert steps["registry.register"]["ref"] == "card-fraud:1"
    assert steps["registry.register"]["run_id"] == steps["tracking.compare"]["best_run"]
    assert steps["registry.compile"]["status"] == "verified"
    assert steps["registry.promote"]["onnx_matches_native"] is True
    assert {"run", "dataset"} <= {n["kind"] for n in steps["registry.lineage"]["nodes"]}
    card = steps["registry.card"]
    assert card["completeness"] == 1.0
    assert "<h1>Model card: card-fraud:1</h1>" in Path(card["html"]).read_text(encoding="utf-8")
    assert steps["governance.request"]["status"] == "checks_failed"
    failed = {c["kind"]: c for c in steps["governance.request"]["checks"] if not c["passed"]}
    assert {"card_completeness", "fairness", "prohibited_attributes"} <= set(failed)
    assert failed["fairness"]["observed"] < 0.8
    approved = steps["governance.approve"]
    assert approved["ref"] == "card-fraud:3"
    assert approved["status"] == "executed"
    assert "separation of duties" in approved["refusal"]
    assert {d["approver"] for d in approved["decisions"]} == {"maya", "colin"}
    assert approved["policy_version"] == 1
    fairness = next(c for c in approved["checks"] if c["kind"] == "fairness")
    assert fairness["passed"] is True
    assert fairness["observed"] >= 0.8
    report = steps["governance.report"]
    assert report["ref"] == "card-fraud:3"
    markdown = Path(report["markdown"]).read_text(encoding="utf-8")
    assert Path(report["html"]).read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    for text in ("reviewed by maya", "reviewed by colin", fairness["description"]):
        assert text in markdown
    deployed = steps["serving.deploy"]
    assert deployed["latest"]["spec"]["variants"][0]["model"] == "card-fraud:1"
    retrained = steps["serving.retrain"]
    assert retrained["ref"] == "card-fraud:4" and "onnx" in retrained["compilations"]
    canary = steps["serving.canary"]
    assert (canary["baseline"], canary["canary"]) == ("champion", "retrained")
    assert canary["plan"]["shadow_first"] is True
    decisions = canary["decisions"]
    assert decisions and decisions[0]["share"] == 0.0  # the shadow stage came first
    for decision in decisions:
        assert decision["source"] == "prediction log"
        assert decision["metrics"]["canary_requests"] >= 100
        assert [c["name"] for c in decision["checks"]] == [
            "error_rate_delta",
            "p95_latency_ratio",
            "prediction_psi",
        ]
    ending = {"complete": "complete", "rollback": "rolled_back"}
    assert canary["state"]["status"] == ending[decisions[-1]["kind"]]
    rows = {r["variant"]: r for r in steps["serving.log_query"]["rows"]}
    assert rows["retrained (shadow)"]["requests"] == 200
    assert rows["champion"]["requests"] >= 400
    assert 0 < rows["champion"]["mean_score"] < 1 and 0 < rows["champion"]["fraud_rate"] < 1
    actions = {e["action"] for e in steps["audit.log"]["events"]}
    assert {"canary.start", "deployment.canary", f"canary.{decisions[-1]['kind']}"} <= actions
