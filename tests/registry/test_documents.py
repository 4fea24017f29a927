"""Lineage, model cards, ONNX compilation and MLflow import through the service."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestCentroid
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from tests.registry import _mlflow_dirs
from tests.registry.conftest import Trained, fraud_frame

from steward.core import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from steward.registry import (
    EDITABLE_SECTIONS,
    REQUIRED_SECTIONS,
    LineageNode,
    RegistryService,
    UnsupportedModelError,
    compile_to_onnx,
)
from steward.sdk import Steward
from steward.tracking import TrackingService

# -- lineage ----------------------------------------------------------------------


def test_lineage_walks_run_datasets_environment_code_and_parents(client: Steward) -> None:
    tracking = TrackingService(client.store, capture_environment=True)
    registry = RegistryService(client.store, tracking)
    frame, label = fraud_frame(100)
    numeric = frame[["amount", "hour"]]
    with tracking.start_run("fraud", name="search") as parent:
        pass
    with tracking.start_run("fraud", name="trial", parent=parent.id) as run:
        train = run.log_dataset(numeric, name="tx", role="train")
        model = HistGradientBoostingClassifier(max_iter=5).fit(numeric, label)
    registry.register(model, name="fraud", run_id=run.id)
    graph = registry.lineage("fraud:1")
    assert graph.root == "model_version:fraud:1"
    relations = {(e.source, e.relation, e.target) for e in graph.edges}
    assert ("model_version:fraud:1", "trained_by", f"run:{run.id}") in relations
    assert (f"run:{run.id}", "used_dataset", f"dataset:{train.digest}") in relations
    assert (f"run:{run.id}", "child_of", f"run:{parent.id}") in relations
    [environment] = graph.find("environment")
    recorded = tracking.get_environment(environment.id)
    if recorded.get("git_commit"):
        [code] = graph.find("code")
        assert code.attributes["commit"] == recorded["git_commit"]
    dataset_edge = next(e for e in graph.edges if e.relation == "used_dataset")
    assert dataset_edge.attributes == {"role": "train"}
    exported = graph.as_dict()
    assert exported["format"] == "steward.lineage/1"
    assert {n["kind"] for n in exported["nodes"]} >= {"model_version", "run", "dataset"}
    assert [v.ref for v in registry.used_by_dataset(train.digest)] == ["fraud:1"]
    assert registry.used_by_dataset("sha256:" + "0" * 64) == []


def test_lineage_graph_is_open_for_later_contexts(
    registry: RegistryService, trained: Trained
) -> None:
    registry.register(trained.model, name="fraud", run_id=trained.run_id)
    graph = registry.lineage("fraud")
    deployment = graph.add_node(LineageNode("deployment", "fraud-api", "fraud-api"))
    graph.add_edge(deployment, graph.root, "serves")
    assert [n.label for _, n in graph.children(deployment)] == ["fraud:1 (sklearn, registered)"]
    with pytest.raises(NotFoundError, match="is not in the graph"):
        graph.add_edge("deployment:missing", graph.root, "serves")


# -- cards ------------------------------------------------------------------------


def test_card_edits_are_revisions_with_a_completeness_score(
    client: Steward, registry: RegistryService, trained: Trained
) -> None:
    registry.register(
        trained.model, name="fraud", run_id=trained.run_id, sample_input=trained.frame
    )
    first = registry.card("fraud:1")
    assert first.revision == 1
    assert set(first.missing) == {
        "intended_use",
        "out_of_scope_use",
        "risk_tier",
        "limitations",
        "ethical_considerations",
    }
    assert first.completeness == pytest.approx(1 - 5 / len(REQUIRED_SECTIONS), abs=1e-3)
    registry.update_model("fraud", risk_tier="high", intended_use="Flag card payments for review.")
    edited = registry.update_card(
        "fraud:1",
        {
            "out_of_scope_use": "Credit decisions.",
            "limitations": "Trained on <two> months; <script>alert(1)</script>",
            "ethical_considerations": "Reviewed for disparate impact by gender.",
        },
    )
    assert edited.revision == 2
    assert edited.missing == [] and edited.completeness == 1.0
    assert edited.section("intended_use") == "Flag card payments for review."  # from the model
    assert registry.card("fraud:1", revision=1).missing == first.missing  # kept as it was
    assert [c.revision for c in registry.card_history("fraud:1")] == [1, 2]
    cleared = registry.update_card("fraud:1", {"limitations": ""})
    assert cleared.missing == ["limitations"]
    assert cleared.section("out_of_scope_use") == "Credit decisions."  # earlier edits kept
    html = edited.to_html()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;two&gt;" in html
    markdown = edited.to_markdown()
    assert markdown.startswith("# Model card: fraud:1")
    for heading in ("## Training data", "## Evaluation", "## Signature", "## Lineage"):
        assert heading in markdown
    assert "| auc | 0.91 |" in markdown
    updates = [
        e for e in client.store.audit.list_events(limit=None) if e.action == "model.card.update"
    ]
    assert len(updates) == 2


def test_card_refuses_generated_and_unknown_sections(
    registry: RegistryService, trained: Trained
) -> None:
    registry.register(trained.model, name="fraud")
    with pytest.raises(InvalidInputError, match="'evaluation' is generated from the records"):
        registry.update_card("fraud:1", {"evaluation": "great"})
    with pytest.raises(
        InvalidInputError, match="editable sections: " + ", ".join(EDITABLE_SECTIONS)
    ):
        registry.update_card("fraud:1", {"colour": "blue"})
    with pytest.raises(InvalidInputError, match="limit is 100000"):
        registry.update_card("fraud:1", {"limitations": "x" * 100_001})
    with pytest.raises(NotFoundError, match="no card revision 9; revisions 1 to 1"):
        registry.card("fraud:1", revision=9)


# -- compilation ------------------------------------------------------------------


def test_register_compiles_to_onnx_and_load_prefers_it(
    client: Steward, registry: RegistryService, trained: Trained
) -> None:
    version = registry.register(
        trained.model, name="fraud", sample_input=trained.frame[:100], compile="onnx"
    )
    compiled = version.compilations["onnx"]
    assert compiled.verified and compiled.report["passed"] is True
    onnx = registry.load("fraud:1", prefer="onnx")
    native = registry.load("fraud:1")
    assert (onnx.artifact, onnx.flavor, native.artifact) == ("onnx", "onnx", "native")
    np.testing.assert_array_equal(onnx.predict(trained.frame), native.predict(trained.frame))
    np.testing.assert_allclose(
        onnx.predict_proba(trained.frame[:20]), native.predict_proba(trained.frame[:20]), atol=1e-5
    )
    with pytest.raises(InvalidInputError, match="'minute'"):
        onnx.predict(pd.DataFrame({"amount": [1.0], "hour": [2], "minute": [3]}))
    kinds = {n.kind for n in registry.lineage("fraud:1").nodes.values()}
    assert "compiled" in kinds
    assert [
        e.action for e in client.store.audit.list_events(limit=None) if e.action.endswith("compile")
    ]


def test_column_transformer_pipeline_serves_from_onnx_with_one_input_per_column(
    client: Steward,
) -> None:
    frame, label = fraud_frame(300)
    pipeline = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), ["amount", "hour"]),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["country"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(frame, label)
    with client.start_run("fraud") as run:
        run.log_dataset(frame, name="tx", role="train")
        version = run.register_model(
            pipeline, name="fraud", sample_input=frame[:60], compile="onnx"
        )
    assert version.signature is not None and version.signature.input_format == "dataframe"
    assert version.signature.inputs[2].categories == ("DE", "FR", "NL")
    onnx = client.registry.load("fraud", prefer="onnx")
    assert onnx.artifact == "onnx"
    np.testing.assert_array_equal(onnx.predict(frame), pipeline.predict(frame))
    record = [{"amount": 30.0, "hour": 9, "country": "FR"}]
    np.testing.assert_allclose(
        onnx.predict_proba(record), pipeline.predict_proba(pd.DataFrame(record)), atol=1e-5
    )
    strict = client.registry.load("fraud", prefer="onnx", check_ranges=True)
    with pytest.raises(InvalidInputError, match="unknown categories 'IT'"):
        strict.predict([{"amount": 30.0, "hour": 9, "country": "IT"}])


def test_compile_failing_parity_is_not_marked_compiled(
    registry: RegistryService, trained: Trained
) -> None:
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(
        trained.frame.to_numpy(), trained.label
    )
    registry.register(model, name="fraud", sample_input=trained.frame[:60])
    report = registry.compile("fraud:1", atol=0.0)  # float32 trees cannot be exact
    assert not report.passed and report.artifact_digest is None
    assert "parity failed" in report.summary()
    assert report.parity.worst_rows
    version = registry.get_version("fraud:1")
    assert not version.compilations["onnx"].verified
    assert registry.load("fraud:1", prefer="onnx").artifact == "native"  # falls back
    assert registry.compile("fraud:1", sample=trained.frame[100:150]).passed
    assert registry.get_version("fraud:1").compilations["onnx"].verified


def test_compile_refuses_what_it_cannot_do(registry: RegistryService, trained: Trained) -> None:
    centroid = NearestCentroid().fit(trained.frame.to_numpy(), trained.label)
    with pytest.raises(UnsupportedModelError, match="NearestCentroid"):
        registry.register(centroid, name="centroid", sample_input=trained.frame, compile="onnx")
    with pytest.raises(NotFoundError):
        registry.get_model("centroid")  # nothing registered when compilation cannot start
    registry.register(trained.model, name="fraud")
    with pytest.raises(InvalidInputError, match="no stored input example"):
        registry.compile("fraud:1")
    registry.archive("fraud:1", reason="old")
    with pytest.raises(ConflictError, match="cannot be compiled"):
        registry.compile("fraud:1", sample=trained.frame)
    with pytest.raises(InvalidInputError, match="atol must be a number >= 0"):
        registry.compile("fraud:1", atol=-1)


# -- MLflow import ----------------------------------------------------------------


def test_import_mlflow_skops_model_keeps_its_run_in_lineage(
    registry: RegistryService, tmp_path: Path
) -> None:
    frame, label = fraud_frame(150)
    numeric = frame[["amount", "hour"]].astype({"hour": "float64"})
    model = make_pipeline(StandardScaler(), HistGradientBoostingClassifier(max_iter=5))
    model.fit(numeric, label)
    folder = _mlflow_dirs.save_sklearn(tmp_path / "mlflow-model", model, example=numeric[:5])
    version = registry.import_mlflow(folder, name="fraud")
    assert version.flavor == "sklearn" and version.run_id is None
    assert version.source["kind"] == "mlflow"
    assert version.source["run_id"] == _mlflow_dirs.RUN_ID
    assert version.signature is not None and version.signature.names == ["amount", "hour"]
    loaded = registry.load("fraud:1")
    np.testing.assert_array_equal(loaded.predict(numeric), model.predict(numeric))
    [external] = registry.lineage("fraud:1").find("external_run")
    assert external.id == f"mlflow:{_mlflow_dirs.RUN_ID}"


def test_import_mlflow_pickle_needs_unsafe(registry: RegistryService, tmp_path: Path) -> None:
    frame, label = fraud_frame(80)
    numeric = frame[["amount"]]
    model = HistGradientBoostingClassifier(max_iter=3).fit(numeric, label)
    folder = _mlflow_dirs.save_sklearn(tmp_path / "m", model, serialization_format="pickle")
    with pytest.raises(PermissionDeniedError, match="--unsafe"):
        registry.import_mlflow(folder, name="fraud")
    version = registry.import_mlflow(folder, name="fraud", unsafe=True)
    assert version.flavor == "sklearn" and not version.unsafe  # re-saved with skops
    with pytest.raises(NotFoundError):
        registry.import_mlflow(tmp_path / "missing", name="fraud")


def test_import_mlflow_onnx_and_register_an_onnx_graph(
    registry: RegistryService, tmp_path: Path
) -> None:
    features = np.random.default_rng(0).random((100, 4))
    model = LogisticRegression().fit(features, (features[:, 0] > 0.5).astype(int))
    graph = compile_to_onnx(model, features[:20]).onnx_bytes
    assert graph is not None
    folder = _mlflow_dirs.save_onnx(
        tmp_path / "m", onnx.load_from_string(graph), example=features[:5]
    )
    imported = registry.import_mlflow(folder, name="imported")
    assert imported.flavor == "onnx"
    assert imported.signature is not None and imported.signature.names == ["x0", "x1", "x2", "x3"]
    np.testing.assert_array_equal(
        registry.load("imported").predict(features), model.predict(features)
    )
    direct = registry.register(onnx.load_from_string(graph), name="direct", sample_input=features)
    assert direct.flavor == "onnx"
    np.testing.assert_allclose(
        registry.load("direct").predict_proba(features[:5]),
        model.predict_proba(features[:5]),
        atol=1e-5,
    )
