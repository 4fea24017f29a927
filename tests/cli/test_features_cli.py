"""``steward features apply|list|show``."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from tests.cli._helpers import run
from tests.features._data import T0, TS, write_parquet

FEATURES_PY = """
from datetime import timedelta
from steward.features import Entity, Feature, FeatureService, FeatureView, FileSource

customer = Entity("customer", ["customer_id"])
profiles = FileSource("profiles", "data/profiles.parquet", "ts")
customer_profile = FeatureView(
    "customer_profile",
    customer,
    profiles,
    [Feature("score", "{dtype}"), Feature("email", "string", pii=True)],
    ttl=timedelta(days=30),
    owner="risk",
    description="Scores per customer.",
)
fraud = FeatureService("fraud", ["customer_profile:score"])
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("STEWARD_HOME", "STEWARD_DATABASE_URL", "STEWARD_FEATURE_REPO"):
        monkeypatch.delenv(name, raising=False)
    repo = tmp_path / "repo"
    schema = pa.schema(
        [("customer_id", pa.int64()), ("ts", TS), ("score", pa.float64()), ("email", pa.string())]
    )
    write_parquet(
        repo / "data" / "profiles.parquet",
        [{"customer_id": 1, "ts": T0, "score": 0.5, "email": "a@example.com"}],
        schema,
    )
    (repo / "features.py").write_text(FEATURES_PY.replace("{dtype}", "float64"))
    return repo


def test_cli_features_apply_list_show(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = str(tmp_path / "home")
    code, out, err = run(
        ["features", "apply", str(repo / "features.py"), "--home", home], capsys, monkeypatch
    )
    assert code == 0, err
    assert "+ view customer_profile" in out
    assert "recorded definitions version 1" in out

    code, out, _ = run(
        ["features", "apply", str(repo / "features.py"), "--home", home], capsys, monkeypatch
    )
    assert "no changes; definitions version 1 is current" in out

    code, out, _ = run(["features", "list", "--home", home, "--json"], capsys, monkeypatch)
    listed = json.loads(out)
    assert listed["version"] == 1
    assert listed["views"][0]["name"] == "customer_profile"
    assert listed["views"][0]["pii"] == ["email"]
    assert listed["views"][0]["ttl"] == "30d"

    code, out, _ = run(["features", "list", "--home", home], capsys, monkeypatch)
    assert "1 feature views (definitions version 1)" in out
    assert "profiles" in out

    code, out, _ = run(
        ["features", "show", "customer_profile", "--home", home], capsys, monkeypatch
    )
    assert code == 0
    assert "Scores per customer." in out
    assert "features:read:pii" in out

    code, out, _ = run(
        ["features", "show", "customer_profile", "--home", home, "--json"], capsys, monkeypatch
    )
    shown = json.loads(out)
    assert shown["definition"]["features"][0]["dtype"] == "float64"
    assert shown["source"]["path"] == str(repo / "data" / "profiles.parquet")


def test_cli_features_apply_dry_run_shows_breaking_changes(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = str(tmp_path / "home")
    monkeypatch.setenv("STEWARD_FEATURE_REPO", str(repo / "features.py"))
    assert run(["features", "apply", "--home", home], capsys, monkeypatch)[0] == 0
    (repo / "features.py").write_text(FEATURES_PY.replace("{dtype}", "float32"))
    code, out, _ = run(
        ["features", "apply", "--dry-run", "--home", home, "--json"], capsys, monkeypatch
    )
    plan = json.loads(out)
    assert code == 0
    assert plan["dry_run"] and plan["breaking"] and plan["version"] is None
    assert "feature 'score' dtype float64 -> float32 (breaking)" in plan["changes"][0]["details"]
    code, out, _ = run(["features", "apply", "--dry-run", "--home", home], capsys, monkeypatch)
    assert "(breaking)" in out and "dry run: nothing recorded" in out
    code, out, _ = run(["features", "list", "--home", home, "--json"], capsys, monkeypatch)
    assert json.loads(out)["version"] == 1


def test_cli_features_errors_are_one_line_with_exit_codes(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = str(tmp_path / "home")
    code, _, err = run(
        ["features", "apply", str(tmp_path / "nope.py"), "--home", home], capsys, monkeypatch
    )
    assert code == 2
    assert "no feature definitions at" in err
    run(["features", "apply", str(repo), "--home", home], capsys, monkeypatch)
    code, _, err = run(["features", "show", "customer_profil", "--home", home], capsys, monkeypatch)
    assert code == 3
    assert "did you mean 'customer_profile'" in err
