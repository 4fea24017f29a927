"""Compile scikit-learn models to ONNX and prove that the compiled graph predicts the same.

``compile_to_onnx(model, sample)`` converts with skl2onnx, runs the graph with
onnxruntime on ``sample`` and compares it with the model's own predictions:

- classifiers: labels must be identical and every probability within
  ``atol + rtol * |p|`` of ``predict_proba`` (ZipMap is disabled, so onnxruntime
  returns a plain ``rows x classes`` tensor in ``classes_`` order);
- regressors: every prediction within ``atol + rtol * |y|``.

Precision: floating-point inputs are declared ``tensor(float)`` (float32) first:
the ``ai.onnx.ml`` operators the converters emit (``TreeEnsemble*``,
``LinearClassifier``, ``Scaler``) compute in float32, and onnxruntime refuses
float64 outputs for them.  Parity is measured against scikit-learn's float64
predictions on the *original* sample, so the float32 rounding of inputs,
thresholds and weights is inside the distance reported, never hidden by casting
the reference.  Typical distances are 1e-7 for probabilities.  When float32
parity fails (features of large magnitude and small spread, such as Unix
timestamps, lose their low digits), compilation converts again with
``tensor(double)`` inputs, which the converters of linear models, scalers and
encoders support; if that graph cannot be built or loaded (tree ensembles) the
float32 report stands.  Regressors with large outputs drift by about 1e-7 of
their magnitude, so pass ``rtol`` (e.g. ``1e-6``) for them.

Inputs: a plain numeric matrix becomes one input ``X`` (rows x features).  A
DataFrame or Arrow table with non-numeric columns, or a model holding a
``ColumnTransformer`` that selects columns by name, gets one ``rows x 1`` input
per column, named after the column: floats and booleans as float32, integers as
int64, everything else as strings (a missing string is sent as ``"nan"``, the
category skl2onnx gives NaN).  :func:`onnx_inputs` (``_onnx_inputs``) does that
mapping for parity checks and for serving alike; ``_onnx_parity`` measures.

Needs the ``onnx`` extra (skl2onnx, onnxruntime) and the ``ml`` extra
(scikit-learn, pandas); they are imported when a function needs them.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from steward.core import ConfigurationError, InvalidInputError
from steward.registry._onnx_inputs import (
    DOUBLE,
    FLOAT,
    INT64,
    MATRIX_INPUT,
    STRING,
    as_matrix,
    default_onnx_type,
    onnx_inputs,
)
from steward.registry._onnx_parity import ParityReport, measure_parity

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "OnnxCompilation",
    "ParityReport",
    "UnsupportedModelError",
    "check_parity",
    "compile_to_onnx",
    "onnx_inputs",
]

_CLASS_IN_MESSAGE = re.compile(r"<class '([\w.]+)'>")


class UnsupportedModelError(InvalidInputError):
    """skl2onnx cannot convert the model; the message names the estimator (and pipeline step)."""


@dataclass(frozen=True)
class OnnxCompilation:
    """The result of :func:`compile_to_onnx`.

    Attributes:
        onnx_bytes: the serialized ONNX model, or ``None`` when parity failed.
        parity: the comparison with the model's own predictions.
        converter: converter and version, e.g. ``"skl2onnx 1.20.0"``.
        opset: the ONNX (default domain) opset the graph uses.
        input_names: the graph's inputs, in order.
        output_names: the graph's outputs: ``("label", "probabilities")`` for a
            classifier, ``("variable",)`` for a regressor.
        input_types: input name -> onnxruntime type (``"tensor(float)"``, ...); pass it
            to :func:`onnx_inputs`.
    """

    onnx_bytes: bytes | None
    parity: ParityReport
    converter: str
    opset: int
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    input_types: dict[str, str] = field(default_factory=dict)

    @property
    def compiled(self) -> bool:
        """Whether parity held and ``onnx_bytes`` may be used."""
        return self.onnx_bytes is not None and self.parity.passed

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready view without the bytes (their size is given)."""
        return {
            "compiled": self.compiled,
            "converter": self.converter,
            "opset": self.opset,
            "input_names": list(self.input_names),
            "output_names": list(self.output_names),
            "input_types": dict(self.input_types),
            "onnx_size": None if self.onnx_bytes is None else len(self.onnx_bytes),
            "parity": self.parity.to_dict(),
        }


# -- optional dependencies ----------------------------------------------------------------


def _require(extra: str, *modules: str) -> None:
    try:
        for name in modules:
            importlib.import_module(name)
    except ImportError as exc:
        raise ConfigurationError(
            f"ONNX compilation needs {exc.name}; install the extra: pip install 'steward[{extra}]'"
        ) from None


def _session(onnx_bytes: bytes) -> Any:
    _require("onnx", "onnxruntime")
    import onnxruntime

    try:
        return onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise UnsupportedModelError(
            f"onnxruntime cannot load the ONNX graph: {_first_line(exc)}"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- the estimator tree -------------------------------------------------------------------


def _children(estimator: object) -> Iterator[tuple[str, object]]:
    """Yield ``(label, part)`` for the containers skl2onnx converts part by part."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import FeatureUnion, Pipeline

    if isinstance(estimator, Pipeline):
        parts = [(f"step {name!r}", step) for name, step in estimator.steps]
    elif isinstance(estimator, ColumnTransformer):
        fitted = getattr(estimator, "transformers_", estimator.transformers)
        parts = [(f"transformer {name!r}", part) for name, part, _ in fitted]
    elif isinstance(estimator, FeatureUnion):
        parts = [(f"transformer {name!r}", part) for name, part in estimator.transformer_list]
    else:
        parts = []
    for label, part in parts:
        if part is not None and not isinstance(part, str):  # 'drop', 'passthrough'
            yield label, part


def _walk(
    estimator: object, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], object]]:
    yield path, estimator
    for label, part in _children(estimator):
        yield from _walk(part, (*path, label))


def _describe(path: tuple[str, ...], estimator: object) -> str:
    name = type(estimator).__name__
    return f"{name} (pipeline {' / '.join(path)})" if path else name


def _final_estimator(model: object) -> object:
    steps = getattr(model, "steps", None)
    if isinstance(steps, list) and steps:
        return _final_estimator(steps[-1][1])
    return model


def _selects_columns_by_name(model: object) -> bool:
    from sklearn.compose import ColumnTransformer

    for _, part in _walk(model):
        if isinstance(part, ColumnTransformer):
            for _, _, columns in part.transformers:
                names = [columns] if isinstance(columns, str) else columns
                if callable(columns) or any(isinstance(c, str) for c in np.ravel(names)):
                    return True
    return False


def _kind(model: object) -> str:
    """Return ``"classifier"`` or ``"regressor"``; refuse anything else, or an unfitted model."""
    from sklearn.base import is_classifier, is_regressor
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    name = type(model).__name__
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise InvalidInputError(f"{name} is not fitted; fit it before compiling to ONNX") from None
    except TypeError:
        raise UnsupportedModelError(
            f"{name} is not a scikit-learn estimator; ONNX compilation converts scikit-learn "
            "models and pipelines only"
        ) from None
    if is_classifier(model):
        return "classifier"
    if is_regressor(model):
        return "regressor"
    raise UnsupportedModelError(
        f"{name} is neither a classifier nor a regressor; ONNX compilation checks parity of "
        "predictions, so it takes classifiers and regressors (or pipelines ending in one)"
    )


def _check_supported(model: object) -> None:
    from skl2onnx import get_model_alias

    for path, part in _walk(model):
        try:
            get_model_alias(type(part))  # the type-exact lookup skl2onnx itself does
        except RuntimeError:
            raise UnsupportedModelError(
                f"skl2onnx {_skl2onnx_version()} has no converter for {_describe(path, part)}; "
                "ONNX compilation supports the estimators listed by "
                "skl2onnx.supported_converters(); serve this model with its native flavor"
            ) from None


def _skl2onnx_version() -> str:
    import skl2onnx

    return str(skl2onnx.__version__)


# -- conversion ---------------------------------------------------------------------------


def _check_tolerances(atol: float, rtol: float) -> None:
    for name, value in (("atol", atol), ("rtol", rtol)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInputError(f"{name} must be a number, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise InvalidInputError(f"{name} must be a finite number >= 0, got {value!r}")


def _model_frame(model: object, frame: pd.DataFrame) -> pd.DataFrame | np.ndarray:
    """Return the model's columns of ``frame``, or its values if it was fitted on a matrix."""
    expected = getattr(model, "feature_names_in_", None)
    if expected is None:
        numeric = all(default_onnx_type(frame[c]) != STRING for c in frame.columns)
        return frame.to_numpy(dtype=np.float64, na_value=np.nan) if numeric else frame
    missing = [str(c) for c in expected if c not in frame.columns]
    if missing:
        raise InvalidInputError(
            f"sample lacks column(s) {', '.join(map(repr, missing))} that "
            f"{type(model).__name__} was fitted on"
        )
    return frame[list(expected)]


def _reference_sample(model: object, sample: object) -> pd.DataFrame | np.ndarray:
    """Return the sample as the model takes it: a DataFrame (model's columns) or a matrix."""
    import pandas as pd

    if isinstance(sample, pa.RecordBatch):
        sample = pa.Table.from_batches([sample])
    if isinstance(sample, pa.Table):
        sample = sample.to_pandas()
    if isinstance(sample, pd.DataFrame):
        sample = _model_frame(model, sample)
    matrix = sample if isinstance(sample, pd.DataFrame) else as_matrix(sample)
    if matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise InvalidInputError(f"sample is empty ({matrix.shape}); pass held-out rows")
    if isinstance(matrix, np.ndarray) and matrix.dtype.kind not in "iufb":
        raise InvalidInputError(
            f"a sample matrix must be numeric, got dtype {matrix.dtype}; pass a DataFrame "
            "with named columns for string features"
        )
    return matrix


def _plan_inputs(
    model: object, sample: pd.DataFrame | np.ndarray, real: str = FLOAT
) -> list[tuple[str, str, int]]:
    """Return ``(name, onnx type, width)`` per graph input (see the module docstring).

    ``real`` is the type given to floating-point inputs: float32, or float64 on retry.
    """
    if isinstance(sample, np.ndarray):
        return [(MATRIX_INPUT, real, sample.shape[1])]
    types = {column: default_onnx_type(sample[column]) for column in sample.columns}
    if not _selects_columns_by_name(model) and all(t != STRING for t in types.values()):
        return [(MATRIX_INPUT, real, sample.shape[1])]
    odd = [c for c in types if not isinstance(c, str)]
    if odd:
        raise InvalidInputError(
            f"column names must be strings to become ONNX inputs, got {odd[:5]!r}"
        )
    return [(str(c), real if t == FLOAT else t, 1) for c, t in types.items()]


def _convert(model: object, inputs: list[tuple[str, str, int]], *, classifier: bool) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )
    from skl2onnx.common.exceptions import MissingConverter, MissingShapeCalculator

    kinds = {
        FLOAT: FloatTensorType,
        DOUBLE: DoubleTensorType,
        INT64: Int64TensorType,
        STRING: StringTensorType,
    }
    initial_types = [(name, kinds[kind]([None, width])) for name, kind, width in inputs]
    options = {id(_final_estimator(model)): {"zipmap": False}} if classifier else None
    name = type(model).__name__
    try:
        return convert_sklearn(model, initial_types=initial_types, options=options)
    except (MissingShapeCalculator, MissingConverter) as exc:
        found = _CLASS_IN_MESSAGE.search(str(exc))
        part = found[1].rsplit(".", 1)[-1] if found else "a part of it"
        raise UnsupportedModelError(
            f"skl2onnx {_skl2onnx_version()} has no converter for {part} (inside {name}); "
            "serve this model with its native flavor"
        ) from exc
    except Exception as exc:  # skl2onnx raises RuntimeError, TypeError, NotImplementedError...
        raise UnsupportedModelError(
            f"skl2onnx {_skl2onnx_version()} could not convert {name}: {_first_line(exc)}"
        ) from exc


def _opset(proto: Any) -> int:
    versions = [int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    return max(versions, default=0)


def compile_to_onnx(
    model: object, sample: object, *, atol: float = 1e-5, rtol: float = 0.0
) -> OnnxCompilation:
    """Convert a fitted scikit-learn model to ONNX and check parity on ``sample``.

    Args:
        model: a fitted classifier or regressor, or a pipeline ending in one.
        sample: held-out rows: a pandas DataFrame, a pyarrow Table or a 2-D numeric
            array (column names are kept and become input names where needed).
        atol: absolute tolerance on probabilities (classifiers) or predictions.
        rtol: relative tolerance, added as ``rtol * |expected|``.

    Returns:
        The compilation; ``onnx_bytes`` is ``None`` when parity failed, and
        ``parity.summary()`` says which rows and how far off.

    Raises:
        UnsupportedModelError: skl2onnx cannot convert the model; names the estimator
            and, inside a pipeline, its step.
        InvalidInputError: the model is not fitted, the sample is empty or lacks the
            model's columns, or a tolerance is negative.
        ConfigurationError: the ``onnx`` or ``ml`` extra is not installed.

    Example:
        >>> from sklearn.linear_model import LogisticRegression
        >>> X, y = [[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]
        >>> result = compile_to_onnx(LogisticRegression().fit(X, y), [[0.5], [2.5]])
        >>> result.compiled, result.output_names
        (True, ('label', 'probabilities'))
    """
    _check_tolerances(atol, rtol)
    _require("ml", "sklearn", "pandas")
    _require("onnx", "onnx", "onnxruntime", "skl2onnx")
    kind = _kind(model)
    _check_supported(model)
    reference = _reference_sample(model, sample)
    attempt = _attempt(model, kind, reference, FLOAT, atol=atol, rtol=rtol)
    if not attempt[2].passed:
        try:  # float32 drifted: the converters that can compute in float64 get a second try
            attempt = _attempt(model, kind, reference, DOUBLE, atol=atol, rtol=rtol)
        except UnsupportedModelError:
            pass  # no float64 graph for this model: the float32 report stands
    proto, session, report = attempt
    inputs = session.get_inputs()
    return OnnxCompilation(
        onnx_bytes=proto.SerializeToString() if report.passed else None,
        parity=report,
        converter=f"skl2onnx {_skl2onnx_version()}",
        opset=_opset(proto),
        input_names=tuple(i.name for i in inputs),
        output_names=tuple(o.name for o in session.get_outputs()),
        input_types={i.name: i.type for i in inputs},
    )


def _attempt(
    model: object,
    kind: str,
    reference: pd.DataFrame | np.ndarray,
    real: str,
    *,
    atol: float,
    rtol: float,
) -> tuple[Any, Any, ParityReport]:
    proto = _convert(model, _plan_inputs(model, reference, real), classifier=kind == "classifier")
    session = _session(proto.SerializeToString())
    return proto, session, measure_parity(model, kind, reference, session, atol=atol, rtol=rtol)


def check_parity(
    model: object, onnx_bytes: bytes, sample: object, *, atol: float = 1e-5, rtol: float = 0.0
) -> ParityReport:
    """Compare an ONNX graph's predictions with ``model``'s own on ``sample``.

    The graph must take the inputs :func:`compile_to_onnx` would give it and, for
    a classifier, return labels and a probability tensor (ZipMap disabled).

    Raises:
        UnsupportedModelError: onnxruntime cannot load the graph.  (Outputs that do not
            have the shape of the model's fail parity, with the reason in the report.)
        InvalidInputError: as for :func:`compile_to_onnx`.
    """
    _check_tolerances(atol, rtol)
    _require("ml", "sklearn", "pandas")
    kind = _kind(model)
    reference = _reference_sample(model, sample)
    return measure_parity(model, kind, reference, _session(onnx_bytes), atol=atol, rtol=rtol)
