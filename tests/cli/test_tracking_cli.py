"""The tracking commands: experiments, runs (list/show/compare/reproduce/archive) and gc."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from tests.cli._helpers import run

from steward.core import FrozenClock, utc_now
from steward.governance import HoldService
from steward.sdk import connect


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("STEWARD_HOME", "STEWARD_DATABASE_URL", "STEWARD_ARTIFACT_URI"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    with connect(home=home, capture_environment=True) as st:
        for name, lr, auc in (("a", 0.1, 0.9), ("b", 0.2, 0.8)):
            with st.start_run("fraud", name=name, params={"lr": lr, "model": "hgb"}) as r:
                r.log_metric("auc", auc)
            (tmp_path / f"{name}.txt").write_text(name)
            st.tracking.log_artifact(r.id, tmp_path / f"{name}.txt")
    return home


def _ids(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    _, out, _ = run(["runs", "list", "fraud", "--home", str(home), "--json"], capsys, monkeypatch)
    return {r["name"]: r["id"] for r in json.loads(out)["runs"]}


def test_cli_runs_list_filter_and_order(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(
        [
            "runs",
            "list",
            "fraud",
            "--home",
            str(home),
            "--json",
            "-f",
            "metrics.auc > 0.85",
            "-o",
            "metrics.auc DESC",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0
    assert [r["name"] for r in json.loads(out)["runs"]] == ["a"]
    code, out, _ = run(["runs", "list", "--home", str(home)], capsys, monkeypatch)
    assert code == 0 and "2 runs" in out


def test_cli_bad_filter_is_a_one_line_error(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(
        ["runs", "list", "--home", str(home), "-f", "metrics.auc >> 1"], capsys, monkeypatch
    )
    assert code == 2
    assert "at position 13" in err
    assert "Traceback" not in err


def test_cli_runs_show_compare_reproduce(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _ids(home, capsys, monkeypatch)
    code, out, _ = run(
        ["runs", "show", ids["a"], "--home", str(home), "--json"], capsys, monkeypatch
    )
    shown = json.loads(out)
    assert shown["params"] == {"lr": 0.1, "model": "hgb"}
    assert shown["artifacts"][0]["path"] == "a.txt"
    code, out, _ = run(
        ["runs", "compare", ids["a"], ids["b"], "--home", str(home)], capsys, monkeypatch
    )
    assert code == 0 and "params.lr" in out
    code, out, _ = run(
        ["runs", "reproduce", ids["a"], "--home", str(home), "--json"], capsys, monkeypatch
    )
    recipe = json.loads(out)
    assert recipe["params"]["lr"] == 0.1
    assert recipe["environment_recorded"] is True
    code, _, err = run(["runs", "show", "nope", "--home", str(home)], capsys, monkeypatch)
    assert code == 3 and "run 'nope' does not exist" in err


def test_cli_experiments_and_gc(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(["experiments", "list", "--home", str(home), "--json"], capsys, monkeypatch)
    assert [e["name"] for e in json.loads(out)] == ["fraud"]
    code, out, _ = run(
        ["experiments", "show", "fraud", "--home", str(home), "--json"], capsys, monkeypatch
    )
    assert len(json.loads(out)["runs"]) == 2
    ids = _ids(home, capsys, monkeypatch)
    run(["runs", "archive", ids["a"], "--home", str(home)], capsys, monkeypatch)
    code, out, _ = run(
        ["gc", "--home", str(home), "--older-than", "0", "--json"], capsys, monkeypatch
    )
    report = json.loads(out)
    assert (
        report["dry_run"] is True and report["runs"] == [ids["a"]] and len(report["artifacts"]) == 1
    )
    with connect(home=home) as st:
        assert st.store.artifacts.exists(report["artifacts"][0])  # dry run deleted nothing
    code, out, _ = run(
        ["gc", "--home", str(home), "--older-than", "0", "--execute", "--json"], capsys, monkeypatch
    )
    assert json.loads(out)["dry_run"] is False
    with connect(home=home) as st:
        assert not st.store.artifacts.exists(report["artifacts"][0])
        assert st.store.audit.verify().ok
    code, _, err = run(["experiments", "archive", "nope", "--home", str(home)], capsys, monkeypatch)
    assert code == 3
    assert "experiment 'nope' does not exist; existing: 'fraud'" in err


def test_cli_gc_keeps_recently_archived_runs(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _ids(home, capsys, monkeypatch)
    ten_days_ago = utc_now() - timedelta(days=10)
    with connect(home=home, clock=FrozenClock(ten_days_ago)) as st:
        st.tracking.set_run_archived(ids["a"], True)
    with connect(home=home) as st:
        st.tracking.set_run_archived(ids["b"], True)  # archived just now
    code, out, _ = run(
        ["gc", "--home", str(home), "--older-than", "5", "--execute", "--json"],
        capsys,
        monkeypatch,
    )
    report = json.loads(out)
    assert code == 0 and report["runs"] == [ids["a"]] and len(report["artifacts"]) == 1
    with connect(home=home) as st:
        assert not st.store.artifacts.exists(report["artifacts"][0])
        [kept] = st.tracking.list_artifacts(ids["b"])
        assert st.store.artifacts.exists(kept["digest"])  # the recent run's artifact stays
    code, out, _ = run(
        ["gc", "--home", str(home), "--older-than", "0", "--json"], capsys, monkeypatch
    )
    later = json.loads(out)
    assert ids["b"] in later["runs"] and later["artifacts"] == [kept["digest"]]  # for later


def test_cli_gc_execute_spares_a_held_run_until_the_hold_is_released(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _ids(home, capsys, monkeypatch)
    with connect(home=home) as st:
        st.tracking.set_tags(ids["a"], {"subject": "cust-42"})
        for run_id in ids.values():
            st.tracking.set_run_archived(run_id, True)
        hold = HoldService(st.store).place("subject", "cust-42", reason="case 114")
        [held] = st.tracking.list_artifacts(ids["a"])
        [free] = st.tracking.list_artifacts(ids["b"])
    gc = ["gc", "--home", str(home), "--older-than", "0", "--execute"]
    code, out, _ = run([*gc, "--json"], capsys, monkeypatch)
    report = json.loads(out)
    assert code == 0 and report["artifacts"] == [free["digest"]]
    assert [(h["run"], h["hold"]) for h in report["held"]] == [(ids["a"], hold.id)]
    code, out, _ = run(gc, capsys, monkeypatch)
    assert code == 0 and f"skipped 1 run under a legal hold ({hold.id})" in out
    with connect(home=home) as st:
        assert st.store.artifacts.exists(held["digest"])
        assert not st.store.artifacts.exists(free["digest"])
        HoldService(st.store).release(hold.id, reason="case closed")
    code, out, _ = run([*gc, "--json"], capsys, monkeypatch)
    assert json.loads(out)["artifacts"] == [held["digest"]] and json.loads(out)["held"] == []
    with connect(home=home) as st:
        assert not st.store.artifacts.exists(held["digest"])
        assert st.store.audit.verify().ok
