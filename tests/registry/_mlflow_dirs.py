"""Write MLflow model directories the way MLflow 3.17 does, without MLflow.

The layout and the MLmodel fields follow what ``mlflow.sklearn.save_model`` and
``mlflow.onnx.save_model`` write: flavors ``python_function`` + ``sklearn``
(``pickled_model``, ``serialization_format``, ``sklearn_version``,
``skops_trusted_types``) or ``python_function`` + ``onnx`` (``data``,
``onnx_version``, ``providers``); the signature as JSON text; the input example
with ``saved_input_example_info``; ``run_id`` only for logged models.
"""

from __future__ import annotations

import json
import pickle
import uuid
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import onnx
import pandas as pd
import sklearn
import skops.io
import yaml

MLFLOW_VERSION = "3.17.2"
CREATED = "2026-05-04 12:30:45.123456"
RUN_ID = "55db457f7d0a47f090b485616d958814"

_MLFLOW_TYPES = {"f": "double", "i": "long", "b": "boolean", "O": "string"}


def column_specs(frame: pd.DataFrame) -> str:
    specs = [
        {"type": _MLFLOW_TYPES.get(frame[c].dtype.kind, "string"), "name": c, "required": True}
        for c in frame.columns
    ]
    return json.dumps(specs)


def tensor_specs(dtype: str, shape: list[int]) -> str:
    return json.dumps([{"type": "tensor", "tensor-spec": {"dtype": dtype, "shape": shape}}])


def _environment(directory: Path, requirements: list[str]) -> dict[str, str]:
    (directory / "requirements.txt").write_text("\n".join(requirements) + "\n")
    (directory / "python_env.yaml").write_text(
        "python: 3.11.7\nbuild_dependencies:\n- pip\ndependencies:\n- -r requirements.txt\n"
    )
    (directory / "conda.yaml").write_text(
        "channels:\n- conda-forge\ndependencies:\n- python=3.11.7\n- pip\nname: mlflow-env\n"
    )
    return {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}


def _write_mlmodel(directory: Path, flavors: dict[str, Any], **fields: Any) -> None:
    document: dict[str, Any] = {
        "flavors": flavors,
        "mlflow_version": MLFLOW_VERSION,
        "model_id": None,
        "model_size_bytes": sum(p.stat().st_size for p in directory.iterdir()),
        "model_uuid": uuid.uuid4().hex,
        "prompts": None,
        "utc_time_created": CREATED,
    }
    document.update(fields)
    (directory / "MLmodel").write_text(yaml.safe_dump(document, default_flow_style=False))


def _example(directory: Path, example: pd.DataFrame | np.ndarray | None) -> dict[str, Any]:
    if example is None:
        return {}
    if isinstance(example, pd.DataFrame):
        split = {"columns": list(example.columns), "data": example.to_numpy().tolist()}
        (directory / "input_example.json").write_text(json.dumps(split))
        (directory / "serving_input_example.json").write_text(
            json.dumps({"dataframe_split": split}, indent=2)
        )
        info = {"type": "dataframe", "pandas_orient": "split"}
    else:
        (directory / "input_example.json").write_text(json.dumps(example.tolist()))
        (directory / "serving_input_example.json").write_text(
            json.dumps({"inputs": example.tolist()}, indent=2)
        )
        info = {"type": "ndarray"}
    return {
        "saved_input_example_info": {
            "artifact_path": "input_example.json",
            "serving_input_path": "serving_input_example.json",
            **info,
        }
    }


def save_sklearn(
    directory: Path,
    model: object,
    *,
    serialization_format: str = "skops",
    example: pd.DataFrame | None = None,
    run_id: str | None = RUN_ID,
) -> Path:
    """``mlflow.sklearn.log_model(model, input_example=example, serialization_format=...)``."""
    directory.mkdir(parents=True)
    model_file = "model.skops" if serialization_format == "skops" else "model.pkl"
    if serialization_format == "skops":
        skops.io.dump(model, directory / model_file)
    else:
        dump = cloudpickle.dump if serialization_format == "cloudpickle" else pickle.dump
        with (directory / model_file).open("wb") as handle:
            dump(model, handle)
    env = _environment(
        directory, [f"mlflow=={MLFLOW_VERSION}", f"scikit-learn=={sklearn.__version__}"]
    )
    fields: dict[str, Any] = {**_example(directory, example), "is_signature_from_type_hint": False}
    if example is not None:
        fields["signature"] = {
            "inputs": column_specs(example),
            "outputs": tensor_specs("int64", [-1]),
            "params": None,
        }
    if run_id is not None:
        fields["run_id"] = run_id
        fields["artifact_path"] = "model"
    flavors = {
        "python_function": {
            "env": env,
            "loader_module": "mlflow.sklearn",
            "model_path": model_file,
            "predict_fn": "predict",
            "python_version": "3.11.7",
        },
        "sklearn": {
            "code": None,
            "pickled_model": model_file,
            "serialization_format": serialization_format,
            "sklearn_version": sklearn.__version__,
            "skops_trusted_types": None,
        },
    }
    _write_mlmodel(directory, flavors, **fields)
    return directory


def save_onnx(
    directory: Path,
    proto: onnx.ModelProto,
    *,
    external_data: bool = False,
    example: np.ndarray | None = None,
) -> Path:
    """``mlflow.onnx.save_model(proto, save_as_external_data=external_data)``."""
    directory.mkdir(parents=True)
    if external_data:  # MLflow names the weights file with a uuid1
        onnx.save_model(
            proto,
            directory / "model.onnx",
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=f"{uuid.uuid1()}.data",
            size_threshold=0,
        )
    else:
        onnx.save_model(proto, directory / "model.onnx")
    env = _environment(directory, [f"mlflow=={MLFLOW_VERSION}", f"onnx=={onnx.__version__}"])
    flavors = {
        "onnx": {
            "code": None,
            "data": "model.onnx",
            "onnx_session_options": None,
            "onnx_version": onnx.__version__,
            "providers": ["CUDAExecutionProvider", "CPUExecutionProvider"],
        },
        "python_function": {
            "data": "model.onnx",
            "env": env,
            "loader_module": "mlflow.onnx",
            "python_version": "3.11.7",
        },
    }
    _write_mlmodel(directory, flavors, **_example(directory, example))
    return directory


def edit_mlmodel(directory: Path, **changes: Any) -> None:
    """Change top-level MLmodel fields (``None`` removes one)."""
    path = directory / "MLmodel"
    document = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = value
    path.write_text(yaml.safe_dump(document))


def edit_flavor(directory: Path, flavor: str, **changes: Any) -> None:
    """Change fields of one flavor's MLmodel section (``None`` removes one)."""
    path = directory / "MLmodel"
    document = yaml.safe_load(path.read_text())
    section = document["flavors"][flavor]
    for key, value in changes.items():
        if value is None:
            section.pop(key, None)
        else:
            section[key] = value
    path.write_text(yaml.safe_dump(document))
