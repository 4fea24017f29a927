from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.cli._helpers import run

from steward.serving._predlog import (
    FeedbackRecord,
    PredictionLog,
    PredictionLogSettings,
    PredictionRecord,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _fill(home: Path, n: int = 12, *, seal: bool = True) -> None:
    log = PredictionLog.from_settings(PredictionLogSettings(home=home), worker_id="cli")
    try:
        for i in range(n):
            log.append(
                PredictionRecord(
                    request_id=f"r{i:03d}",
                    ts=T0 + timedelta(minutes=i),
                    deployment="fraud" if i % 2 else "credit",
                    revision=1,
                    variant="champion",
                    model_version="fraud/7",
                    inputs={"amount": float(i), "note": "x" * 100},
                    outputs={"score": i / 100},
                    latency_ms=1.5,
                )
            )
        log.append(FeedbackRecord(request_id="r001", ts=T0 + timedelta(days=1), label=1))
        if seal:
            log.rotate()
    finally:
        log.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STEWARD_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_logs_query_json_joins_feedback(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(home)
    code, out, _ = run(
        [
            "logs",
            "query",
            "SELECT p.request_id, f.label_value "
            "FROM predictions p JOIN feedback f USING (request_id)",
            "--json",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0
    assert json.loads(out) == [{"request_id": "r001", "label_value": 1.0}]


def test_logs_query_table_and_limit(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(home)
    code, out, err = run(
        ["logs", "query", "SELECT request_id, inputs FROM predictions ORDER BY 1", "--limit", "3"],
        capsys,
        monkeypatch,
    )
    assert code == 0
    assert "r000" in out and "r002" in out and "r003" not in out
    assert "first 3 rows" in err
    assert "x" * 100 not in out  # long JSON cells are cut in tables


def test_logs_query_bad_sql_exits_2_naming_the_views(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(["logs", "query", "SELECT nope FROM predictions"], capsys, monkeypatch)
    assert code == 2
    assert "nope" in err and "predictions(" in err


def test_logs_query_on_an_empty_home(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(
        ["logs", "query", "SELECT count(*) AS n FROM predictions", "--json"], capsys, monkeypatch
    )
    assert code == 0 and json.loads(out) == [{"n": 0}]


def test_logs_compact_then_verify(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(home)
    code, out, _ = run(["logs", "compact", "--json"], capsys, monkeypatch)
    assert code == 0
    facts = json.loads(out)
    assert (facts["segments"], facts["records"], facts["parts"]) == (1, 13, 3)
    assert facts["problems"] == []
    code, out, _ = run(["logs", "compact"], capsys, monkeypatch)
    assert code == 0 and "compacted 0 segments" in out
    code, out, _ = run(["logs", "verify"], capsys, monkeypatch)
    assert code == 0 and "prediction log OK" in out and "3 Parquet parts" in out
    code, out, _ = run(
        ["logs", "query", "SELECT count(*) AS n FROM predictions", "--json"], capsys, monkeypatch
    )
    assert json.loads(out) == [{"n": 12}]


def test_logs_verify_names_a_corrupt_segment(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(home)
    (segment,) = (home / "prediction-log").glob("*.seg")
    data = bytearray(segment.read_bytes())
    data[200] ^= 0xFF
    segment.write_bytes(bytes(data))
    code, _, err = run(["logs", "verify"], capsys, monkeypatch)
    assert code == 1
    assert segment.name in err.replace("\n", "")
    code, out, _ = run(["logs", "verify", "--json"], capsys, monkeypatch)
    assert code == 1 and json.loads(out)["ok"] is False
    code, _, err = run(["logs", "compact"], capsys, monkeypatch)
    assert code == 1 and "corrupt" in err
    assert segment.exists()


def test_logs_tail_filters_by_deployment(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(home, seal=False)
    code, out, _ = run(["logs", "tail", "-d", "fraud", "-n", "2", "--json"], capsys, monkeypatch)
    assert code == 0
    assert [r["request_id"] for r in json.loads(out)] == ["r011", "r009"]
    code, out, _ = run(["logs", "tail"], capsys, monkeypatch)
    assert code == 0 and "r011" in out and "newest 12 predictions" in out


def test_logs_help_lists_the_commands(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(["logs", "--help"], capsys, monkeypatch)
    assert code == 0
    for command in ("query", "compact", "verify", "tail"):
        assert command in out
