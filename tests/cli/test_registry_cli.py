"""The registry commands: models, lineage and import mlflow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from tests.cli._helpers import run
from tests.registry import _mlflow_dirs

from steward.sdk import connect


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("STEWARD_HOME", "STEWARD_DATABASE_URL", "STEWARD_ARTIFACT_URI"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"amount": rng.lognormal(3, 1, 200), "hour": rng.integers(0, 24, 200)})
    label = (frame["amount"] > 25).to_numpy().astype(int)
    with connect(home=home, capture_environment=False) as st:
        for _ in range(2):
            with st.start_run("fraud") as r:
                r.log_dataset(frame, name="tx", role="train")
                model = HistGradientBoostingClassifier(max_iter=10, random_state=0)
                model.fit(frame.to_numpy(), label)
                r.log_metric("holdout_auc", 0.9)
                r.register_model(model, name="fraud", sample_input=frame[:40])
    return home


def _run(home: Path, capsys: pytest.CaptureFixture[str], mp: pytest.MonkeyPatch, *args: str):  # type: ignore[no-untyped-def]
    return run([*args, "--home", str(home)], capsys, mp)


def test_cli_models_list_show_versions(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = _run(home, capsys, monkeypatch, "models", "list", "--json")
    assert code == 0 and [m["name"] for m in json.loads(out)] == ["fraud"]
    code, out, _ = _run(home, capsys, monkeypatch, "models", "show", "fraud")
    assert code == 0 and "versions" in out and "registered" in out
    code, out, _ = _run(home, capsys, monkeypatch, "models", "versions", "fraud", "--json")
    assert [v["version"] for v in json.loads(out)] == [2, 1]
    code, out, _ = _run(home, capsys, monkeypatch, "models", "version", "fraud:1")
    assert code == 0 and "signature (ndarray)" in out


def test_cli_models_unknown_model_is_one_line_with_options(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = _run(home, capsys, monkeypatch, "models", "show", "fruad")
    assert code == 3
    assert "did you mean 'fraud'?" in err and "Traceback" not in err
    code, _, err = _run(home, capsys, monkeypatch, "models", "version", "fraud:9")
    assert code == 3 and "versions: 1, 2" in err


def test_cli_alias_stage_archive(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = _run(home, capsys, monkeypatch, "models", "alias", "fraud:1", "champion")
    assert code == 0 and "fraud@champion → version 1" in out
    code, out, _ = _run(
        home,
        capsys,
        monkeypatch,
        "models",
        "stage",
        "fraud:2",
        "production",
        "-r",
        "better",
        "--alias",
        "champion",
        "--json",
    )
    assert code == 0 and json.loads(out)["stage"] == "production"
    code, _, err = _run(home, capsys, monkeypatch, "models", "archive", "fraud:1")
    assert code == 2 and "--reason" in err
    code, out, _ = _run(
        home, capsys, monkeypatch, "models", "archive", "fraud:2", "-r", "leak", "--successor", "1"
    )
    assert code == 0 and "succeeded by version 1" in out
    code, _, err = _run(
        home, capsys, monkeypatch, "models", "stage", "fraud:2", "production", "-r", "x"
    )
    assert code == 4 and "archived" in err
    code, out, _ = _run(home, capsys, monkeypatch, "models", "show", "fraud", "--json")
    assert json.loads(out)["aliases"] == {"champion": 1}
    code, out, _ = _run(
        home, capsys, monkeypatch, "models", "alias", "fraud", "champion", "--delete"
    )
    assert code == 0 and "removed" in out


def test_cli_card_edit_and_html(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    notes = tmp_path / "limits.md"
    notes.write_text("Only <card> payments.\n\nNot for loans.", encoding="utf-8")
    page = tmp_path / "card.html"
    code, out, _ = _run(
        home,
        capsys,
        monkeypatch,
        "models",
        "card",
        "fraud:1",
        "--set",
        f"limitations=@{notes}",
        "--set",
        "intended_use=Flag payments.",
        "--html",
        str(page),
    )
    assert code == 0 and "card revision 2" in out and str(page) in out
    html = page.read_text(encoding="utf-8")
    assert "Only &lt;card&gt; payments." in html and "<p>Not for loans.</p>" in html
    code, out, _ = _run(home, capsys, monkeypatch, "models", "card", "fraud:1", "--json")
    card = json.loads(out)
    assert card["revision"] == 2 and "limitations" not in card["missing"]
    code, out, _ = _run(home, capsys, monkeypatch, "models", "card", "fraud:1")
    assert "# Model card: fraud:1" in out
    code, _, err = _run(home, capsys, monkeypatch, "models", "card", "fraud:1", "--set", "nokey")
    assert code == 2 and "SECTION=TEXT" in err
    code, _, err = _run(
        home, capsys, monkeypatch, "models", "card", "fraud:1", "--set", "x=@nope.md"
    )
    assert code == 3 and "does not exist" in err


def test_cli_compile_reports_parity_and_exit_code(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = _run(home, capsys, monkeypatch, "models", "compile", "fraud:1")
    assert code == 0 and "compiled to ONNX" in out
    code, out, _ = _run(
        home, capsys, monkeypatch, "models", "compile", "fraud:2", "--atol", "0", "--json"
    )
    report = json.loads(out)
    assert code == 1 and report["passed"] is False and report["parity"]["worst_rows"]
    sample = tmp_path / "sample.csv"
    pd.DataFrame({"amount": [10.0, 50.0], "hour": [3, 12]}).to_csv(sample, index=False)
    code, out, _ = _run(
        home, capsys, monkeypatch, "models", "compile", "fraud:2", "--sample", str(sample)
    )
    assert code == 0 and "parity passed on 2 rows" in out
    code, _, err = _run(
        home, capsys, monkeypatch, "models", "compile", "fraud:2", "--sample", "x.parquet"
    )
    assert code == 3 and "sample file" in err


def test_cli_lineage_tree_and_json(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = _run(home, capsys, monkeypatch, "lineage", "show", "fraud:1")
    assert code == 0 and "trained_by" in out and "used_dataset(role=train)" in out
    code, out, _ = _run(home, capsys, monkeypatch, "models", "lineage", "fraud:1", "--json")
    graph = json.loads(out)
    assert graph["root"] == "model_version:fraud:1"
    digest = next(n["id"] for n in graph["nodes"] if n["kind"] == "dataset")
    code, out, _ = _run(home, capsys, monkeypatch, "lineage", "dataset", digest, "--json")
    assert sorted(v["ref"] for v in json.loads(out)) == ["fraud:1", "fraud:2"]


def test_cli_import_mlflow(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = pd.DataFrame({"a": np.linspace(0, 1, 50), "b": np.linspace(1, 0, 50)})
    model = HistGradientBoostingClassifier(max_iter=3).fit(frame, (frame["a"] > 0.5).astype(int))
    folder = _mlflow_dirs.save_sklearn(tmp_path / "m", model, serialization_format="pickle")
    code, _, err = _run(home, capsys, monkeypatch, "import", "mlflow", str(folder), "--name", "imp")
    assert code == 5 and "--unsafe" in err
    code, out, _ = _run(
        home, capsys, monkeypatch, "import", "mlflow", str(folder), "--name", "imp", "--unsafe"
    )
    assert code == 0 and "as imp:1" in out and _mlflow_dirs.RUN_ID in out
