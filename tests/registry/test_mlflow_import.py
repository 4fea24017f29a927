"""Reading MLflow model directories (sklearn and onnx flavors) without MLflow."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from tests.registry import _mlflow_dirs as mlflow_dirs

from steward.core import InvalidInputError, NotFoundError, PermissionDeniedError
from steward.registry._mlflow import MlflowModel, read_mlflow_model


def _frame(rows: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 4)), columns=["a", "b", "c", "d"])
    return frame, (frame["a"] + frame["b"] > 0).to_numpy().astype(np.int64)


@pytest.fixture
def pipeline() -> object:
    frame, y = _frame()
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, y)


@pytest.fixture
def skops_dir(tmp_path: Path, pipeline: object) -> Path:
    frame, _ = _frame()
    return mlflow_dirs.save_sklearn(tmp_path / "model", pipeline, example=frame.head(3))


def _affine_graph(features: int = 30, outputs: int = 64) -> tuple[onnx.ModelProto, np.ndarray]:
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(features, outputs)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])],
        "affine",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, features])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, outputs])],
        initializer=[numpy_helper.from_array(weights, "W")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    return proto, weights


# -- the sklearn flavor --------------------------------------------------------------------


def test_read_skops_model_with_metadata(skops_dir: Path, pipeline: object) -> None:
    frame, _ = _frame()

    found = read_mlflow_model(skops_dir)

    assert isinstance(found, MlflowModel)
    assert found.flavor == "sklearn"
    assert found.serialization_format == "skops"
    assert found.model_file == "model.skops"
    np.testing.assert_array_equal(found.model.predict(frame), pipeline.predict(frame))  # type: ignore[attr-defined]
    assert found.run_id == mlflow_dirs.RUN_ID
    assert found.mlflow_version == mlflow_dirs.MLFLOW_VERSION
    assert found.model_uuid is not None and len(found.model_uuid) == 32
    assert found.utc_time_created == datetime(2026, 5, 4, 12, 30, 45, 123456, tzinfo=UTC)
    assert found.signature_inputs == [
        {"type": "double", "name": c, "required": True} for c in ("a", "b", "c", "d")
    ]
    assert found.signature_outputs == [
        {"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}
    ]
    assert found.input_example is not None
    pd.testing.assert_frame_equal(found.input_example, frame.head(3).reset_index(drop=True))
    assert found.raw["flavors"]["sklearn"]["pickled_model"] == "model.skops"
    assert found.path == skops_dir.resolve()


def test_read_lists_every_file_with_its_digest(skops_dir: Path) -> None:
    found = read_mlflow_model(skops_dir)

    expected = {
        p.relative_to(skops_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in skops_dir.rglob("*")
        if p.is_file()
    }
    assert found.source_files == expected
    assert {"MLmodel", "model.skops", "input_example.json", "requirements.txt"} <= set(expected)


def test_read_accepts_the_mlmodel_file_itself(skops_dir: Path) -> None:
    assert read_mlflow_model(skops_dir / "MLmodel").flavor == "sklearn"
    assert read_mlflow_model(str(skops_dir)).flavor == "sklearn"


def test_read_saved_model_has_no_run_id(tmp_path: Path, pipeline: object) -> None:
    directory = mlflow_dirs.save_sklearn(tmp_path / "m", pipeline, run_id=None)

    found = read_mlflow_model(directory)

    assert found.run_id is None
    assert found.signature_inputs is None and found.input_example is None


@pytest.mark.parametrize("fmt", ["pickle", "cloudpickle"])
def test_read_refuses_pickles_without_unsafe(tmp_path: Path, pipeline: object, fmt: str) -> None:
    directory = mlflow_dirs.save_sklearn(tmp_path / "m", pipeline, serialization_format=fmt)

    with pytest.raises(PermissionDeniedError, match="--unsafe") as refused:
        read_mlflow_model(directory)
    found = read_mlflow_model(directory, unsafe=True)

    assert f"as {fmt} (model.pkl)" in str(refused.value)
    assert found.serialization_format == fmt
    frame, _ = _frame()
    np.testing.assert_array_equal(found.model.predict(frame), pipeline.predict(frame))  # type: ignore[attr-defined]


def test_read_treats_a_model_without_serialization_format_as_pickle(
    tmp_path: Path, pipeline: object
) -> None:
    # Models written by MLflow before the field existed: MLflow's own default is pickle.
    directory = mlflow_dirs.save_sklearn(tmp_path / "m", pipeline, serialization_format="pickle")
    mlflow_dirs.edit_flavor(directory, "sklearn", serialization_format=None)

    with pytest.raises(PermissionDeniedError, match="as pickle"):
        read_mlflow_model(directory)
    assert read_mlflow_model(directory, unsafe=True).serialization_format == "pickle"


class Winsorizer(TransformerMixin, BaseEstimator):
    def fit(self, X: object, y: object = None) -> Winsorizer:
        return self

    def transform(self, X: object) -> object:
        return np.clip(X, -3, 3)


def test_read_refuses_skops_types_that_are_not_trusted(tmp_path: Path) -> None:
    frame, y = _frame()
    model = make_pipeline(Winsorizer(), LogisticRegression()).fit(frame, y)
    directory = mlflow_dirs.save_sklearn(tmp_path / "m", model)
    name = f"{Winsorizer.__module__}.Winsorizer"

    with pytest.raises(PermissionDeniedError, match="Winsorizer"):
        read_mlflow_model(directory)
    with pytest.raises(PermissionDeniedError, match="Winsorizer"):
        read_mlflow_model(directory, unsafe=True)  # unsafe is about pickles, not skops types
    trusted = read_mlflow_model(directory, trusted_types=[name])

    assert trusted.model.predict(frame).shape == (len(frame),)  # type: ignore[attr-defined]


def test_read_refuses_a_skops_file_that_calls_os_functions(tmp_path: Path) -> None:
    frame, y = _frame()
    model = make_pipeline(FunctionTransformer(os.system), LogisticRegression())
    model.steps[1][1].fit(frame, y)
    directory = mlflow_dirs.save_sklearn(tmp_path / "m", model)

    with pytest.raises(PermissionDeniedError, match="system"):
        read_mlflow_model(directory)


# -- the onnx flavor -----------------------------------------------------------------------


def test_read_onnx_model_returns_its_bytes(tmp_path: Path) -> None:
    proto, _ = _affine_graph()
    example = np.ones((2, 30), dtype=np.float32)
    directory = mlflow_dirs.save_onnx(tmp_path / "m", proto, example=example)

    found = read_mlflow_model(directory)

    assert found.flavor == "onnx"
    assert found.model == (directory / "model.onnx").read_bytes()
    assert found.serialization_format is None
    assert found.run_id is None
    assert isinstance(found.input_example, np.ndarray)  # an ndarray example has no names
    assert found.input_example.shape == (2, 30)


def test_read_onnx_folds_external_data_into_standalone_bytes(tmp_path: Path) -> None:
    proto, weights = _affine_graph()
    directory = mlflow_dirs.save_onnx(tmp_path / "m", proto, external_data=True)
    data_files = [p.name for p in directory.glob("*.data")]
    assert data_files and (directory / "model.onnx").stat().st_size < weights.nbytes

    found = read_mlflow_model(directory)
    shutil.rmtree(directory)  # the bytes must stand alone
    assert isinstance(found.model, bytes)
    session = onnxruntime.InferenceSession(found.model, providers=["CPUExecutionProvider"])
    X = np.random.default_rng(2).normal(size=(5, 30)).astype(np.float32)

    (Y,) = session.run(None, {"X": X})

    np.testing.assert_allclose(Y, X @ weights, rtol=1e-5)
    assert data_files[0] in found.source_files


def test_read_picks_the_flavor_asked_for(tmp_path: Path, pipeline: object) -> None:
    directory = mlflow_dirs.save_sklearn(tmp_path / "m", pipeline)
    proto, _ = _affine_graph()
    onnx.save_model(proto, directory / "model.onnx")
    text = (directory / "MLmodel").read_text()
    (directory / "MLmodel").write_text(
        text.replace("flavors:\n", "flavors:\n  onnx:\n    data: model.onnx\n", 1)
    )

    assert read_mlflow_model(directory).flavor == "sklearn"
    assert read_mlflow_model(directory, flavor="onnx").flavor == "onnx"
    with pytest.raises(InvalidInputError, match="flavor must be one of sklearn, onnx"):
        read_mlflow_model(directory, flavor="xgboost")


# -- bad directories and files ---------------------------------------------------------------


def test_read_missing_directory_or_mlmodel(tmp_path: Path, skops_dir: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        read_mlflow_model(tmp_path / "nowhere")
    with pytest.raises(NotFoundError, match="has no MLmodel file"):
        read_mlflow_model(tmp_path)
    with pytest.raises(InvalidInputError, match="is a file"):
        read_mlflow_model(skops_dir / "model.skops")


def test_read_points_at_the_artifacts_folder_of_a_logged_model(
    tmp_path: Path, pipeline: object
) -> None:
    logged = tmp_path / "m-1a2b"
    mlflow_dirs.save_sklearn(logged / "artifacts", pipeline)

    with pytest.raises(NotFoundError, match=r"the model is in .*m-1a2b/artifacts"):
        read_mlflow_model(logged)


def test_read_malformed_yaml_names_the_line(skops_dir: Path) -> None:
    text = (skops_dir / "MLmodel").read_text().splitlines()
    text.insert(3, "  broken: [unclosed")
    (skops_dir / "MLmodel").write_text("\n".join(text))

    with pytest.raises(InvalidInputError, match=r"not valid YAML at line \d+"):
        read_mlflow_model(skops_dir)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("- just\n- a list\n", "must be a YAML mapping"),
        ("run_id: abc\n", "no 'flavors' mapping"),
        ("flavors: {}\n", "no 'flavors' mapping"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        ("a: &x [1, 2]\nb: *x\nflavors: {sklearn: {}}\n", "aliases are not allowed"),
    ],
)
def test_read_refuses_malformed_mlmodel(
    skops_dir: Path, content: str | bytes, message: str
) -> None:
    path = skops_dir / "MLmodel"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())

    with pytest.raises(InvalidInputError, match=message):
        read_mlflow_model(skops_dir)


def test_read_refuses_an_oversized_mlmodel(skops_dir: Path) -> None:
    with (skops_dir / "MLmodel").open("a") as handle:
        handle.write("# padding\n" * 120_000)

    with pytest.raises(InvalidInputError, match="an MLmodel file is at most"):
        read_mlflow_model(skops_dir)


def test_read_unsupported_flavor_lists_the_flavors_found(skops_dir: Path) -> None:
    flavors = {"python_function": {"loader_module": "mlflow.xgboost"}, "xgboost": {"data": "m"}}
    mlflow_dirs.edit_mlmodel(skops_dir, flavors=flavors)

    with pytest.raises(InvalidInputError, match="has flavors python_function, xgboost; steward"):
        read_mlflow_model(skops_dir)


def test_read_missing_model_file(skops_dir: Path) -> None:
    (skops_dir / "model.skops").unlink()

    with pytest.raises(NotFoundError, match=r"names 'model\.skops' as its sklearn model, but"):
        read_mlflow_model(skops_dir)


def test_read_refuses_paths_that_leave_the_directory(tmp_path: Path, pipeline: object) -> None:
    directory = mlflow_dirs.save_sklearn(tmp_path / "m", pipeline, serialization_format="pickle")
    text = (directory / "MLmodel").read_text()
    outside = tmp_path / "outside.pkl"
    shutil.copy(directory / "model.pkl", outside)

    for target in ("../outside.pkl", str(outside)):
        (directory / "MLmodel").write_text(text.replace("model.pkl", target))
        with pytest.raises(InvalidInputError, match="points outside the model directory"):
            read_mlflow_model(directory, unsafe=True)


def test_read_refuses_a_symlink_out_of_the_directory(skops_dir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    (skops_dir / "notes.txt").symlink_to(secret)

    with pytest.raises(InvalidInputError, match=re.escape("'notes.txt' points outside")):
        read_mlflow_model(skops_dir)


def test_read_refuses_special_files_and_symlink_loops(skops_dir: Path) -> None:
    os.mkfifo(skops_dir / "pipe")
    with pytest.raises(InvalidInputError, match=r"'pipe' in .* is not a regular file"):
        read_mlflow_model(skops_dir)
    (skops_dir / "pipe").unlink()

    (skops_dir / "loop").symlink_to(skops_dir / "loop")
    with pytest.raises(InvalidInputError, match="'loop' cannot be resolved"):
        read_mlflow_model(skops_dir)


def test_read_refuses_external_onnx_data_outside_the_directory(tmp_path: Path) -> None:
    proto, _ = _affine_graph()
    directory = mlflow_dirs.save_onnx(tmp_path / "m", proto, external_data=True)
    data_file = next(directory.glob("*.data"))
    stolen = tmp_path / "stolen.data"
    data_file.rename(stolen)
    graph = onnx.load(directory / "model.onnx", load_external_data=False)
    for entry in graph.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = "../stolen.data"
    (directory / "model.onnx").write_bytes(graph.SerializeToString())

    with pytest.raises(InvalidInputError, match="points outside the model directory"):
        read_mlflow_model(directory)


def test_read_refuses_corrupt_model_files(tmp_path: Path, pipeline: object) -> None:
    proto, _ = _affine_graph()
    onnx_dir = mlflow_dirs.save_onnx(tmp_path / "o", proto)
    (onnx_dir / "model.onnx").write_bytes(b"\x08\x07garbage that is not protobuf")
    pickled = mlflow_dirs.save_sklearn(tmp_path / "p", pipeline, serialization_format="pickle")
    (pickled / "model.pkl").write_bytes(b"\x80\x05not a pickle")

    with pytest.raises(InvalidInputError, match=re.escape("'model.onnx' is not an ONNX model")):
        read_mlflow_model(onnx_dir)
    with pytest.raises(InvalidInputError, match="could not be loaded"):
        read_mlflow_model(pickled, unsafe=True)


def test_read_refuses_bad_signature_and_fields(skops_dir: Path) -> None:
    mlflow_dirs.edit_mlmodel(skops_dir, signature={"inputs": "[{not json", "outputs": None})
    with pytest.raises(InvalidInputError, match=re.escape("signature.inputs is not valid JSON")):
        read_mlflow_model(skops_dir)

    mlflow_dirs.edit_mlmodel(skops_dir, signature={"inputs": '{"a": 1}'})
    with pytest.raises(InvalidInputError, match="must be a list of column or tensor specs"):
        read_mlflow_model(skops_dir)

    mlflow_dirs.edit_mlmodel(skops_dir, signature=None, utc_time_created="yesterday")
    with pytest.raises(InvalidInputError, match="utc_time_created must be a date"):
        read_mlflow_model(skops_dir)

    mlflow_dirs.edit_mlmodel(skops_dir, utc_time_created=None, run_id=["a", "b"])
    with pytest.raises(InvalidInputError, match="run_id must be text"):
        read_mlflow_model(skops_dir)


def test_read_unknown_serialization_format(skops_dir: Path) -> None:
    text = (skops_dir / "MLmodel").read_text()
    (skops_dir / "MLmodel").write_text(
        text.replace("serialization_format: skops", "serialization_format: joblib")
    )

    with pytest.raises(InvalidInputError, match="'joblib' is not one steward reads"):
        read_mlflow_model(skops_dir)


def test_read_input_example_problems(skops_dir: Path) -> None:
    (skops_dir / "input_example.json").write_text("{broken")
    with pytest.raises(InvalidInputError, match=r"example 'input_example\.json' is not valid"):
        read_mlflow_model(skops_dir)

    (skops_dir / "input_example.json").write_text('{"columns": ["a"]}')
    with pytest.raises(InvalidInputError, match="does not match its type 'dataframe'"):
        read_mlflow_model(skops_dir)

    (skops_dir / "input_example.json").unlink()
    with pytest.raises(NotFoundError, match=r"names the input example 'input_example\.json'"):
        read_mlflow_model(skops_dir)


def test_read_old_style_ndarray_example_and_time_created(tmp_path: Path) -> None:
    proto, _ = _affine_graph()
    directory = mlflow_dirs.save_onnx(tmp_path / "m", proto, example=np.zeros((3, 30)))
    (directory / "input_example.json").write_text('{"inputs": {"X": [[1.0, 2.0], [3.0, 4.0]]}}')
    mlflow_dirs.edit_mlmodel(directory, utc_time_created=None, time_created="2019-01-02T03:04:05")

    found = read_mlflow_model(directory)

    assert isinstance(found.input_example, np.ndarray)
    assert found.input_example.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert found.utc_time_created == datetime(2019, 1, 2, 3, 4, 5, tzinfo=UTC)
