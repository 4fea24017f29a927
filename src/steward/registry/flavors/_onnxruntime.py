"""The ``onnx`` flavor: ONNX graphs run by onnxruntime, the fast universal runtime.

Columns are mapped to graph inputs by :func:`steward.registry._onnx.onnx_inputs`
(one input per column, or one 2-D input for a plain matrix), cast to the type
each input declares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from steward.core import IntegrityError, InvalidInputError
from steward.registry._onnx import onnx_inputs
from steward.registry.flavors._base import require

__all__ = ["OnnxFlavor", "OnnxModel"]

MODEL_FILE = "model.onnx"


def _runtime_errors() -> tuple[type[Exception], ...]:
    state = require("onnxruntime.capi.onnxruntime_pybind11_state", flavor="onnx", extra="onnx")
    names = ("InvalidArgument", "InvalidGraph", "InvalidProtobuf", "Fail", "NotImplemented")
    return tuple(getattr(state, n) for n in names if hasattr(state, n))


class OnnxModel:
    """An onnxruntime session with the model's surface: ``predict`` and ``predict_proba``.

    A classifier converted from scikit-learn has two outputs (labels, then
    probabilities); a regressor has one. The session runs on one thread: for
    single requests that is the fastest, and a server runs many sessions side by side.

    Args:
        content: the serialized ONNX model.
    """

    def __init__(self, content: bytes) -> None:
        ort = require("onnxruntime", flavor="onnx", extra="onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                content, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except _runtime_errors() as exc:
            raise IntegrityError(f"ONNX model could not be loaded: {exc}") from None
        inputs = self.session.get_inputs()
        self.input_names: list[str] = [i.name for i in inputs]
        self.input_types: dict[str, str] = {i.name: i.type for i in inputs}
        self.output_names: list[str] = [o.name for o in self.session.get_outputs()]

    def run(self, data: Any) -> list[np.ndarray]:
        """Run the graph on ``data``; return every output.

        Raises:
            InvalidInputError: the runtime refused the input (the message says why).
        """
        feeds = onnx_inputs(data, self.input_names, self.input_types)
        try:
            outputs: list[np.ndarray] = self.session.run(None, feeds)
        except _runtime_errors() as exc:
            raise InvalidInputError(f"the ONNX runtime refused the input: {exc}") from None
        return outputs

    def predict(self, data: Any) -> np.ndarray:
        """The first output (labels for a classifier), one value per row."""
        first = np.asarray(self.run(data)[0])
        return first.ravel() if first.ndim == 2 and first.shape[1] == 1 else first

    def predict_proba(self, data: Any) -> np.ndarray:
        """The second output: class probabilities, one column per class.

        Raises:
            InvalidInputError: the graph has no probabilities output.
        """
        if len(self.output_names) < 2:
            raise InvalidInputError(
                f"this ONNX model has one output ({self.output_names[0]}); no probabilities"
            )
        return np.asarray(self.run(data)[1])


def _as_bytes(model: object) -> bytes:
    if isinstance(model, bytes | bytearray | memoryview):
        return bytes(model)
    serialize = getattr(model, "SerializeToString", None)
    if callable(serialize):
        data = serialize()
        if isinstance(data, bytes):
            return data
    raise InvalidInputError(
        f"the onnx flavor takes an onnx.ModelProto or its serialized bytes, got "
        f"{type(model).__name__}"
    )


class OnnxFlavor:
    """ONNX models: stored as ``model.onnx``, run with onnxruntime."""

    name = "onnx"
    unsafe = False

    def handles(self, model: object) -> bool:
        """True for an ``onnx.ModelProto`` (bytes need ``flavor="onnx"``)."""
        return type(model).__name__ == "ModelProto" and type(model).__module__.startswith("onnx")

    def save(self, model: object, directory: Path) -> dict[str, Any]:
        """Write ``model.onnx`` after checking that onnxruntime can load it.

        Raises:
            IntegrityError: the bytes are not a loadable ONNX model.
        """
        content = _as_bytes(model)
        runtime = OnnxModel(content)
        (directory / MODEL_FILE).write_bytes(content)
        return {
            "file": MODEL_FILE,
            "inputs": runtime.input_names,
            "outputs": runtime.output_names,
        }

    def load(self, directory: Path, metadata: Mapping[str, Any]) -> object:
        """Open an onnxruntime session on ``model.onnx``."""
        return OnnxModel((directory / str(metadata.get("file", MODEL_FILE))).read_bytes())

    def predict(self, model: object, data: Any) -> np.ndarray:
        """Run the session (see :meth:`OnnxModel.predict`); a graph not loaded yet is opened."""
        runtime = model if isinstance(model, OnnxModel) else OnnxModel(_as_bytes(model))
        return runtime.predict(data)

    def describe(self, model: object) -> dict[str, Any]:
        """Input and output names and the graph's producer and opsets."""
        if not isinstance(model, OnnxModel):
            return {"class": type(model).__name__}
        meta = model.session.get_modelmeta()
        return {
            "inputs": _describe_args(model.session.get_inputs()),
            "outputs": _describe_args(model.session.get_outputs()),
            "producer": meta.producer_name,
            "graph": meta.graph_name,
        }


def _describe_args(args: Sequence[Any]) -> list[dict[str, Any]]:
    return [{"name": a.name, "type": a.type, "shape": [str(d) for d in a.shape]} for a in args]
