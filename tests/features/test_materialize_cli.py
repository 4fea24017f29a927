"""``steward features materialize | get | status | profile``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cli._helpers import run
from tests.features.online._views import PROFILE_SCHEMA, at, profile, write_rows

FEATURES_PY = """
from datetime import timedelta
from steward.features import Entity, Feature, FeatureView, FileSource

customer = Entity("customer", ["customer_id"])
profile = FeatureView(
    "profile",
    customer,
    FileSource("profiles", "data", "ts", "created"),
    [Feature("score", "float64"), Feature("segment", "string")],
    ttl=timedelta(days=30),
    freshness_sla=timedelta(hours=1),
)
"""


@pytest.fixture
def home(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> str:
    for name in ("STEWARD_HOME", "STEWARD_DATABASE_URL", "STEWARD_ONLINE_STORE_URL"):
        monkeypatch.delenv(name, raising=False)
    repo = tmp_path / "repo"
    write_rows(
        repo / "data",
        "part-0",
        [profile(1, at(1), 10.0), profile(1, at(2), 20.0), profile(2, at(1), 5.0)],
        PROFILE_SCHEMA,
    )
    (repo / "features.py").write_text(FEATURES_PY)
    home = str(tmp_path / "home")
    code, _, err = run(
        ["features", "apply", str(repo / "features.py"), "--home", home], capsys, monkeypatch
    )
    assert code == 0, err
    return home


def test_cli_materialize_get_status(
    home: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(["features", "status", "--home", home, "--json"], capsys, monkeypatch)
    assert code == 0, err
    (view,) = json.loads(out)["views"]
    assert view["freshness"] == "never" and view["watermark"] is None

    end = at(10).isoformat()
    code, out, err = run(
        ["features", "materialize", "--end", end, "--home", home, "--json"], capsys, monkeypatch
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["rows_written"] == 2 and report["views"][0]["watermark"] == end

    code, out, _ = run(
        ["features", "materialize", "--end", "2025-03-01T22:00:00", "--home", home],
        capsys,
        monkeypatch,
    )
    assert code == 0
    assert "materialized 0 rows" in out and "profile" in out

    code, out, err = run(
        [
            "features",
            "get",
            "-f",
            "profile:score,profile:segment",
            "-e",
            "customer_id=1",
            "-e",
            "customer_id=3",
            "--home",
            home,
            "--json",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    first, missing = json.loads(out)["rows"]
    assert first["entity"] == {"customer_id": "1"}
    assert first["features"]["score"]["value"] == 20.0
    assert first["features"]["score"]["event_timestamp"] == at(2).isoformat()
    assert first["features"]["segment"]["status"] in ("present", "outside_ttl")
    assert missing["features"]["score"] == {
        "value": None,
        "event_timestamp": None,
        "status": "not_found",
    }

    code, out, _ = run(
        ["features", "get", "-f", "profile:score", "-e", "customer_id=2", "--home", home],
        capsys,
        monkeypatch,
    )
    assert code == 0 and "customer_id=2" in out and "5.0" in out

    code, out, _ = run(["features", "status", "--home", home], capsys, monkeypatch)
    assert code == 0
    assert "profile" in out and "stale" in out  # the data is from 2025; the SLA is one hour

    code, out, _ = run(
        [
            "features",
            "materialize",
            "--incremental",
            "--end",
            at(30).isoformat(),
            "--home",
            home,
            "--json",
        ],
        capsys,
        monkeypatch,
    )
    assert json.loads(out)["views"][0]["start"] == at(10).isoformat()
    assert json.loads(out)["views"][0]["watermark"] == at(30).isoformat()


def test_cli_profile_shows_the_stored_profile(
    home: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(["features", "profile", "profile", "--home", home], capsys, monkeypatch)
    assert code == 3 and "no materialization profile yet" in err
    args = ["features", "materialize", "--end", at(10).isoformat(), "--home", home]
    code, _, err = run(args, capsys, monkeypatch)
    assert code == 0, err
    code, out, err = run(
        ["features", "profile", "profile", "--home", home, "--json"], capsys, monkeypatch
    )
    assert code == 0, err
    stored = json.loads(out)
    assert stored["view"] == "profile" and stored["end"] == at(10).isoformat()
    assert stored["rows_read"] == 3 and stored["rows_written"] == 2
    assert stored["profiled_rows"] == 2 and stored["skipped"] == {}
    score, segment = stored["columns"]
    assert score["name"] == "score" and score["kind"] == "numeric"
    assert score["min"] == 5.0 and score["max"] == 20.0 and score["missing"] == 0
    assert segment["name"] == "segment" and sorted(segment["top"]) == [["s20", 1], ["s5", 1]]
    code, out, _ = run(["features", "profile", "profile", "--home", home], capsys, monkeypatch)
    assert code == 0 and "Profile of 2 rows" in out and "score" in out and "s20" in out
    code, out, _ = run(["features", "status", "--home", home], capsys, monkeypatch)
    assert code == 0 and "2 rows" in out
    code, _, err = run(["features", "profile", "profil", "--home", home], capsys, monkeypatch)
    assert code == 3 and "did you mean 'profile'" in err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["materialize", "--end", "yesterday"], 2, "not an ISO 8601 time"),
        (["materialize", "--incremental", "--start", "2025-01-01"], 2, "drop start"),
        (["materialize", "--view", "profil"], 3, "did you mean 'profile'"),
        (["get", "-f", "profile:score"], 2, "at least one --entity"),
        (["get", "-f", "profile:score", "-e", "customer_id"], 2, "KEY=VALUE"),
        (["get", "-f", "profile:scor", "-e", "customer_id=1"], 3, "profile:score"),
        (["get", "-f", "profile:score", "-e", "client=1"], 2, "lacks join key 'customer_id'"),
    ],
)
def test_cli_online_errors_name_the_problem(
    home: str,
    args: list[str],
    code: int,
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    got, _, err = run(["features", *args, "--home", home], capsys, monkeypatch)
    assert got == code, err
    assert message in err
