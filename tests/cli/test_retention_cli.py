"""``steward retention``, ``steward holds`` and ``steward governance`` from the shell."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from tests.cli._helpers import run

from steward.sdk import connect
from steward.serving._predlog import (
    PredictionArchive,
    PredictionLog,
    PredictionLogSettings,
    PredictionRecord,
)

OLD = datetime(2024, 1, 10, 12, 0, tzinfo=UTC)  # far past the default 400 days


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("STEWARD_HOME", str(home))
    monkeypatch.setenv("STEWARD_USER", "dana")
    x = pd.DataFrame(np.random.default_rng(0).normal(size=(50, 2)), columns=["a", "b"])
    model = LogisticRegression().fit(x, (x["a"] > 0).astype(int))
    with connect(home=home, capture_environment=False) as st:
        with st.start_run("fraud", name="model") as r:
            r.register_model(model, name="fraud", sample_input=x.head(5))
        with st.start_run("fraud", name="scratch") as r:
            scratch = r.id
        st.tracking.set_run_archived(scratch, True)
    (tmp_path / "scratch_id").write_text(scratch)
    return home


def _predictions(home: Path) -> None:
    log = PredictionLog.from_settings(PredictionLogSettings(home=home), worker_id="t")
    try:
        for i, deployment in enumerate(["fraud-api", "credit-api"] * 2):
            log.append(
                PredictionRecord(
                    request_id=f"r{i}",
                    ts=OLD + timedelta(days=i // 2),
                    deployment=deployment,
                    revision=1,
                    variant="champion",
                    model_version="fraud/1",
                    inputs={"amount": 1.0},
                    outputs={"score": 0.1},
                    latency_ms=1.0,
                )
            )
        log.rotate()
    finally:
        log.close()
    PredictionArchive.from_settings(PredictionLogSettings(home=home)).compact()


def test_plan_apply_with_holds(home: Path, capsys, monkeypatch) -> None:
    scratch = (home.parent / "scratch_id").read_text()
    _predictions(home)
    code, out, _ = run(
        [
            "holds", "place", "predictions", "fraud-api", "--start", "2024-01-10",
            "--end", "2024-01-10", "--reason", "case 9", "--json",
        ],
        capsys, monkeypatch,
    )  # fmt: skip
    assert code == 0, out
    hold_id = json.loads(out)["id"]

    rules = ["--rule", "runs: archived for 0d", "--rule", "predictions: older than 400d"]
    code, out, _ = run(["retention", "plan", *rules, "--json"], capsys, monkeypatch)
    assert code == 0, out
    plan = json.loads(out)
    runs = {i["id"]: i for i in plan["items"] if i["kind"] == "run"}
    assert runs[scratch]["action"] == "delete"
    kept = [p for p in plan["predictions"] if p["action"] == "keep"]
    assert [(p["deployment"], p["date"]) for p in kept] == [("fraud-api", "2024-01-10")]
    assert kept[0]["hold"] == hold_id

    code, out, _ = run(["retention", "apply", *rules, "--json"], capsys, monkeypatch)
    assert code == 0, out
    assert json.loads(out)["deleted"]["runs"] == 1
    parts = PredictionArchive.from_settings(PredictionLogSettings(home=home)).store.parts()
    assert {(p.deployment, p.day.isoformat()) for p in parts} == {("fraud-api", "2024-01-10")}

    code, out, _ = run(["audit", "log", "--json"], capsys, monkeypatch)
    actions = [e["action"] for e in json.loads(out)]
    assert "retention.predictions" in actions and "retention.apply" in actions

    code, out, _ = run(["holds", "release", hold_id, "--reason", "closed"], capsys, monkeypatch)
    assert code == 0 and "released" in out
    code, out, _ = run(["holds", "list", "--json"], capsys, monkeypatch)
    assert json.loads(out) == []


def test_delete_run_under_hold_exits_with_conflict(home: Path, capsys, monkeypatch) -> None:
    scratch = (home.parent / "scratch_id").read_text()
    run(["holds", "place", "runs", "--start", "2000-01-01", "--reason", "lit"], capsys, monkeypatch)
    code, _, err = run(
        ["retention", "delete-run", scratch, "--reason", "cleanup"], capsys, monkeypatch
    )
    assert code == 4
    assert "legal hold" in err or "held by" in err


def test_bad_input_is_named(home: Path, capsys, monkeypatch) -> None:
    code, _, err = run(["retention", "plan", "--rule", "runs: gone for 9d"], capsys, monkeypatch)
    assert code == 2 and "archived or finished" in err
    code, _, err = run(
        ["holds", "place", "runs", "--start", "yesterday", "--reason", "x"], capsys, monkeypatch
    )
    assert code == 2 and "--start 'yesterday'" in err
    code, _, err = run(["governance", "inventory", "--format", "xml"], capsys, monkeypatch)
    assert code == 2 and "table, csv or json" in err


def test_inventory_and_report(home: Path, capsys, monkeypatch, tmp_path: Path) -> None:
    code, out, _ = run(["governance", "inventory", "--json"], capsys, monkeypatch)
    assert code == 0
    assert json.loads(out)[0]["violations"] == ["no risk tier"]
    code, out, _ = run(["governance", "inventory", "--format", "csv"], capsys, monkeypatch)
    assert out.splitlines()[0].startswith("name,owners,team,risk_tier")
    target = tmp_path / "report.html"
    code, out, _ = run(
        ["governance", "report", "fraud:1", "--html", "-o", str(target)], capsys, monkeypatch
    )
    assert code == 0 and target.read_text().startswith("<!DOCTYPE html>")
    code, out, _ = run(["governance", "report", "fraud:1"], capsys, monkeypatch)
    assert out.startswith("# Governance report: fraud:1")
