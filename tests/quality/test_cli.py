from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from steward.cli.quality import app
from steward.core import InvalidInputError

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("quality-cli")
    rng = np.random.default_rng(21)
    n = 2_000
    train = pd.DataFrame(
        {
            "id": np.arange(n),
            "amount": rng.lognormal(3, 1, size=n),
            "region": rng.choice(["n", "s"], size=n),
            "sex": rng.choice(["f", "m"], size=n),
            "label": rng.integers(0, 2, size=n),
        }
    )
    train["pred"] = np.where(train.sex == "m", rng.random(n) < 0.6, rng.random(n) < 0.3).astype(int)
    late = train.assign(amount=train.amount * 3, region=rng.choice(["n", "s", "w"], size=n))
    paths = {"train": folder / "train.parquet", "late": folder / "late.csv", "folder": folder}
    pq.write_table(pa.Table.from_pandas(train, preserve_index=False), paths["train"])
    late.to_csv(paths["late"], index=False)
    return paths


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


def test_cli_profile_prints_and_saves(files: dict[str, Path]) -> None:
    profile = files["folder"] / "train.npz"
    schema = files["folder"] / "schema.json"
    code, out = invoke(
        "profile", files["train"], "--save-profile", profile, "--save-schema", schema, "--key", "id"
    )
    assert code == 0
    assert "amount" in out
    assert profile.is_file()
    assert json.loads(schema.read_text())["key"] == ["id"]
    code, out = invoke("profile", files["train"], "--json")
    document = json.loads(out)
    assert document["rows"] == 2_000
    assert [c["name"] for c in document["columns"]][:3] == ["id", "amount", "region"]


def test_cli_validate_exits_1_on_errors(files: dict[str, Path]) -> None:
    code, out = invoke("validate", files["late"], "--reference", files["train"], "--json")
    document = json.loads(out)
    assert code == 1
    assert {i["check"] for i in document["issues"]} >= {"unseen_category", "out_of_range"}
    code, _ = invoke("validate", files["train"], "--reference", files["train"])
    assert code == 0
    with pytest.raises(InvalidInputError, match="exactly one of --schema and --reference"):
        invoke("validate", files["train"])


def test_cli_drift_against_data_and_saved_profile(files: dict[str, Path]) -> None:
    html = files["folder"] / "drift.html"
    code, out = invoke("drift", files["train"], files["late"], "--json", "--html", html)
    assert code == 0
    document = json.loads(out)
    assert set(document["drifted_columns"]) == {"amount", "region"}
    assert html.read_text().count("<svg") == 2
    profile = files["folder"] / "profile.json"
    invoke("profile", files["train"], "--save-profile", profile)
    code, out = invoke(
        "drift",
        profile,
        files["late"],
        "--column-method",
        "amount=psi:0.2",
        "--column",
        "amount",
        "--column",
        "region",
        "--fail-on-drift",
    )
    assert code == 1
    assert "psi" in out


def test_cli_drift_rejects_bad_override(files: dict[str, Path]) -> None:
    with pytest.raises(InvalidInputError, match="COLUMN=METHOD"):
        invoke("drift", files["train"], files["late"], "--column-method", "amount")
    with pytest.raises(InvalidInputError, match="is not a number"):
        invoke("drift", files["train"], files["late"], "--column-method", "amount=psi:x")


def test_cli_fairness(files: dict[str, Path]) -> None:
    code, out = invoke(
        "fairness",
        files["train"],
        "--y-true",
        "label",
        "--y-pred",
        "pred",
        "--sensitive",
        "sex",
        "--json",
    )
    assert code == 0
    document = json.loads(out)
    assert document["four_fifths_violation"] is True
    code, out = invoke(
        "fairness",
        files["late"],
        "--y-true",
        "label",
        "--y-pred",
        "pred",
        "--sensitive",
        "sex",
        "--sensitive",
        "region",
        "--fail-on-violation",
    )
    assert code == 1
    assert "VIOLATED" in out
    with pytest.raises(InvalidInputError, match="cannot read columns"):
        invoke(
            "fairness", files["train"], "--y-true", "nope", "--y-pred", "pred", "--sensitive", "sex"
        )
