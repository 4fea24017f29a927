"""ONNX compilation: conversion, parity on held-out rows, input mapping, refusals."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import onnx
import onnxruntime
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.cluster import KMeans
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from tests.registry import _onnx_models as models

from steward.core import InvalidInputError
from steward.registry._onnx import (
    OnnxCompilation,
    ParityReport,
    UnsupportedModelError,
    check_parity,
    compile_to_onnx,
    onnx_inputs,
)


def _run(result: OnnxCompilation, data: object) -> list[np.ndarray]:
    assert result.onnx_bytes is not None
    session = onnxruntime.InferenceSession(result.onnx_bytes, providers=["CPUExecutionProvider"])
    return session.run(None, onnx_inputs(data, result.input_names, result.input_types))


# -- classifiers and regressors that compile --------------------------------------------


def test_compile_hist_gradient_boosting_classifier_matches_sklearn() -> None:
    model, held_out = models.hgb_classifier()

    result = compile_to_onnx(model, held_out)

    assert result.compiled and result.parity.passed
    assert result.input_names == ("X",)
    assert result.input_types == {"X": "tensor(float)"}
    assert result.output_names == ("label", "probabilities")
    assert result.converter.startswith("skl2onnx ")
    assert result.opset >= 9
    assert result.parity.rows_checked == len(held_out)
    assert result.parity.compared == ("label", "probabilities")
    assert result.parity.label_mismatches == []
    assert 0 <= result.parity.max_abs_diff <= 1e-5
    labels, probabilities = _run(result, held_out)
    np.testing.assert_array_equal(labels, model.predict(held_out))
    np.testing.assert_allclose(probabilities, model.predict_proba(held_out), atol=1e-5)


def test_compile_scaled_logistic_pipeline_takes_one_matrix_input() -> None:
    model, held_out = models.scaled_logistic()

    result = compile_to_onnx(model, held_out)

    assert result.compiled
    assert result.input_names == ("X",)
    assert result.parity.max_abs_diff <= 1e-5
    labels, _ = _run(result, held_out)
    np.testing.assert_array_equal(labels, model.predict(held_out))
    assert "parity passed on 300 rows: labels identical" in result.parity.summary()


def test_compile_column_transformer_gets_one_input_per_column() -> None:
    model, held_out = models.column_pipeline()
    assert held_out["country"].isna().any()  # missing strings go through too

    result = compile_to_onnx(model, held_out)

    assert result.compiled, result.parity.summary()
    assert result.input_names == ("amount", "age", "country", "merchant")
    assert result.input_types == {
        "amount": "tensor(float)",
        "age": "tensor(int64)",
        "country": "tensor(string)",
        "merchant": "tensor(string)",
    }
    labels, probabilities = _run(result, held_out)
    np.testing.assert_array_equal(labels, model.predict(held_out))
    np.testing.assert_allclose(probabilities, model.predict_proba(held_out), atol=1e-5)


def test_compile_accepts_an_arrow_table_with_extra_columns() -> None:
    model, held_out = models.column_pipeline()
    table = pa.Table.from_pandas(held_out.assign(note="ignored"), preserve_index=False)

    result = compile_to_onnx(model, table)

    assert result.compiled
    assert "note" not in result.input_names
    labels, _ = _run(result, table)
    np.testing.assert_array_equal(labels, model.predict(held_out))


def test_compile_model_fitted_on_a_matrix_takes_a_frame_sample() -> None:
    model, held_out = models.hgb_classifier()  # fitted on a numpy matrix
    frame = pd.DataFrame(held_out, columns=[f"c{i}" for i in range(held_out.shape[1])])

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # "X has feature names, but ..."
        result = compile_to_onnx(model, frame)

    assert result.compiled and result.input_names == ("X",)


def test_compile_regressor_within_tolerance() -> None:
    model, held_out = models.hgb_regressor()

    result = compile_to_onnx(model, held_out)

    assert result.compiled
    assert result.output_names == ("variable",)
    assert result.parity.compared == ("prediction",)
    assert result.parity.label_mismatches == []
    (predictions,) = _run(result, held_out)
    np.testing.assert_allclose(predictions.ravel(), model.predict(held_out), atol=1e-5)
    assert "predictions within 1e-05" in result.parity.summary()


def test_compile_regressor_with_large_outputs_needs_rtol() -> None:
    model, held_out = models.hgb_regressor(scale=1_000.0)

    strict = compile_to_onnx(model, held_out)
    relative = compile_to_onnx(model, held_out, rtol=1e-6)

    assert not strict.compiled and strict.onnx_bytes is None  # float32 drift is ~1e-7 relative
    assert strict.parity.rows_out_of_tolerance > 0
    assert strict.parity.max_abs_diff > 1e-5
    assert relative.compiled
    assert relative.parity.rtol == 1e-6


def test_compile_retries_in_float64_when_float32_loses_digits() -> None:
    frame, y = models.timestamps()
    model, held_out = models.fitted(
        make_pipeline(StandardScaler(), LogisticRegression(C=100.0)), frame, y
    )

    result = compile_to_onnx(model, held_out)

    assert result.compiled, result.parity.summary()
    assert result.input_types == {"X": "tensor(double)"}
    labels, _ = _run(result, held_out)
    np.testing.assert_array_equal(labels, model.predict(held_out))


# -- parity that fails, and says where ---------------------------------------------------


def test_compile_reports_rows_whose_labels_change_in_float32() -> None:
    # Tree ensembles compute in float32 only: timestamps 1 s apart collapse to 128 s steps.
    frame, y = models.timestamps()
    model, held_out = models.fitted(HistGradientBoostingClassifier(max_iter=20), frame, y)
    expected = model.predict(held_out)

    result = compile_to_onnx(model, held_out)
    report = result.parity

    assert not result.compiled and result.onnx_bytes is None
    assert not report.passed
    assert report.label_mismatch_count > 0
    assert report.label_mismatches == sorted(report.label_mismatches)
    assert all(0 <= row < len(held_out) for row in report.label_mismatches)
    # the rows named are the ones near the decision boundary, where the cast matters
    seconds = held_out["ts"].to_numpy()[report.label_mismatches] - models.EPOCH
    assert np.all(np.abs(seconds - 500) < 200)
    assert set(expected[report.label_mismatches]) <= {0, 1}
    worst_row, worst = report.worst_rows[0]
    assert worst == report.max_abs_diff > 0.1
    assert len(report.worst_rows) <= 10
    distances = [d for _, d in report.worst_rows]
    assert distances == sorted(distances, reverse=True)
    summary = report.summary()
    assert summary.startswith(f"parity failed on {len(held_out)} rows: ")
    assert f"row {worst_row}" in summary and f"{worst:.3g}" in summary
    assert str(report.label_mismatches[0]) in summary


def test_compile_with_zero_tolerance_names_the_drifting_rows() -> None:
    model, held_out = models.hgb_classifier()

    report = compile_to_onnx(model, held_out, atol=0.0).parity

    assert not report.passed
    assert report.label_mismatch_count == 0
    assert report.rows_out_of_tolerance > 0
    assert 0 < report.max_abs_diff < 1e-5
    assert "rows beyond 0 " in report.summary()
    assert report.to_dict()["worst_rows"][0] == [report.worst_rows[0][0], report.max_abs_diff]


def _shift_intercepts(onnx_bytes: bytes, shift: float) -> bytes:
    proto = onnx.load_from_string(onnx_bytes)
    for node in proto.graph.node:
        for attribute in node.attribute:
            if node.op_type == "LinearClassifier" and attribute.name == "intercepts":
                attribute.floats[:] = [v + shift for v in attribute.floats]
                return proto.SerializeToString()
    raise AssertionError("no LinearClassifier in the graph")


def test_check_parity_catches_a_tampered_graph() -> None:
    model, held_out = models.scaled_logistic()
    compiled = compile_to_onnx(model, held_out)
    assert compiled.onnx_bytes is not None
    tampered = _shift_intercepts(compiled.onnx_bytes, 0.05)

    intact = check_parity(model, compiled.onnx_bytes, held_out)
    report = check_parity(model, tampered, held_out)

    assert intact.passed
    assert not report.passed
    assert report.rows_out_of_tolerance == len(held_out)
    assert 1e-3 < report.max_abs_diff < 0.05
    row, distance = report.worst_rows[0]
    p = model.predict_proba(held_out.iloc[[row]])[0, 1]
    assert abs(p - 0.5) < 0.2  # the logit shift moves probabilities most near 0.5
    assert distance == report.max_abs_diff


def test_check_parity_fails_a_graph_of_another_shape_saying_why() -> None:
    model, held_out = models.hgb_classifier()
    X, y = models.matrix()
    three_classes = HistGradientBoostingClassifier(max_iter=5).fit(X, y + (X[:, 4] > 1))
    other = compile_to_onnx(three_classes, held_out)
    assert other.onnx_bytes is not None

    report = check_parity(model, other.onnx_bytes, held_out)

    assert not report.passed
    assert report.problem is not None and "shape (300, 3)" in report.problem
    assert report.summary().endswith(report.problem)
    assert report.to_dict()["max_abs_diff"] is None


def test_check_parity_refuses_bytes_that_are_not_onnx() -> None:
    model, held_out = models.hgb_classifier()

    with pytest.raises(UnsupportedModelError, match="onnxruntime cannot load the ONNX graph"):
        check_parity(model, b"not an onnx graph", held_out)


def test_parity_report_to_dict_is_json() -> None:
    report = ParityReport(
        passed=False,
        rows_checked=3,
        label_mismatches=[2],
        max_abs_diff=math.inf,
        atol=1e-5,
        worst_rows=[(2, math.inf), (0, 0.5)],
        rows_out_of_tolerance=2,
        label_mismatch_count=1,
        compared=("label", "probabilities"),
    )

    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))

    assert data["max_abs_diff"] is None
    assert data["worst_rows"] == [[2, None], [0, 0.5]]
    assert "1 label differs (row 2)" in report.summary()


# -- refusals ----------------------------------------------------------------------------


class HomeMadeClassifier(ClassifierMixin, BaseEstimator):
    def fit(self, X: np.ndarray, y: np.ndarray) -> HomeMadeClassifier:
        self.classes_ = np.unique(y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.classes_[0])


def test_compile_refuses_an_unsupported_step_naming_it() -> None:
    X, y = models.matrix()
    model = Pipeline([("scale", StandardScaler()), ("clf", HomeMadeClassifier())]).fit(X, y)

    with pytest.raises(UnsupportedModelError, match=r"HomeMadeClassifier \(pipeline step 'clf'\)"):
        compile_to_onnx(model, X[:10])


def test_compile_refuses_an_unsupported_transformer_inside_a_column_transformer() -> None:
    model, held_out = models.column_pipeline()
    prep = model.named_steps["prep"]
    prep.transformers_[0] = ("num", HomeMadeClassifier(), ["amount", "age"])

    with pytest.raises(UnsupportedModelError) as caught:
        compile_to_onnx(model, held_out)

    assert "HomeMadeClassifier (pipeline step 'prep' / transformer 'num')" in str(caught.value)
    assert isinstance(caught.value, InvalidInputError)


def test_compile_refuses_what_is_neither_classifier_nor_regressor() -> None:
    X, _ = models.matrix()

    with pytest.raises(UnsupportedModelError, match="KMeans is neither a classifier nor"):
        compile_to_onnx(KMeans(n_clusters=2, n_init=1).fit(X), X[:10])
    with pytest.raises(UnsupportedModelError, match="dict is not a scikit-learn estimator"):
        compile_to_onnx({"weights": [1, 2]}, X[:10])


def test_compile_refuses_an_unfitted_model() -> None:
    X, _ = models.matrix()

    with pytest.raises(InvalidInputError, match="LogisticRegression is not fitted"):
        compile_to_onnx(LogisticRegression(), X[:10])


@pytest.mark.parametrize(
    ("atol", "rtol", "message"),
    [
        (-1e-5, 0.0, "atol must be a finite number >= 0"),
        (1e-5, math.nan, "rtol must be"),
        ("1e-5", 0.0, "atol must be a number"),
    ],
)
def test_compile_refuses_bad_tolerances(atol: object, rtol: float, message: str) -> None:
    model, held_out = models.hgb_classifier()

    with pytest.raises(InvalidInputError, match=message):
        compile_to_onnx(model, held_out, atol=atol, rtol=rtol)  # type: ignore[arg-type]


def test_compile_refuses_bad_samples() -> None:
    model, held_out = models.hgb_classifier()
    pipeline, frame = models.column_pipeline()

    with pytest.raises(InvalidInputError, match="sample is empty"):
        compile_to_onnx(model, held_out[:0])
    with pytest.raises(InvalidInputError, match="must be 2-D"):
        compile_to_onnx(model, held_out[0])
    with pytest.raises(InvalidInputError, match="must be numeric"):
        compile_to_onnx(model, held_out.astype(str))
    with pytest.raises(InvalidInputError, match=r"lacks column\(s\) 'country'"):
        compile_to_onnx(pipeline, frame.drop(columns=["country"]))


# -- input mapping -------------------------------------------------------------------------


def test_onnx_inputs_maps_columns_to_typed_inputs() -> None:
    frame = pd.DataFrame({"amount": [1.5, 2.5], "age": [30, 40], "country": ["FR", None]})
    types = {"amount": "tensor(float)", "age": "tensor(int64)", "country": "tensor(string)"}

    feeds = onnx_inputs(frame, ["amount", "age", "country"], types)

    assert feeds["amount"].dtype == np.float32 and feeds["amount"].shape == (2, 1)
    assert feeds["age"].dtype == np.int64 and feeds["age"].tolist() == [[30], [40]]
    assert feeds["country"].tolist() == [["FR"], ["nan"]]
    assert onnx_inputs({"amount": [3.0]}, ["amount"])["amount"].tolist() == [[3.0]]


def test_onnx_inputs_builds_one_matrix_for_a_single_input() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]})

    assert onnx_inputs(frame, ["X"])["X"].tolist() == [[1.0, 3.0], [2.0, 4.0]]
    assert onnx_inputs([[1, 2]], ["X"], {"X": "tensor(double)"})["X"].dtype == np.float64
    assert onnx_inputs(np.ones((1, 3)), ["X"])["X"].dtype == np.float32
    nullable = pd.DataFrame({"a": pd.array([1, None], dtype="Int64"), "b": [0.5, 1.5]})
    matrix = onnx_inputs(nullable, ["X"])["X"]
    assert matrix.dtype == np.float32 and np.isnan(matrix[1, 0]) and matrix[0].tolist() == [1, 0.5]
    table = pa.table({"a": [1.0, None], "b": [2, 3]})
    assert np.isnan(onnx_inputs(table, ["X"])["X"][1, 0])
    with pytest.raises(InvalidInputError, match="every column must be numeric"):
        onnx_inputs(pd.DataFrame({"a": ["x"]}), ["X"])


def test_onnx_inputs_refuses_what_it_cannot_map() -> None:
    with pytest.raises(InvalidInputError, match=r"missing column\(s\) 'country'.*got 'amount'"):
        onnx_inputs(pd.DataFrame({"amount": [1.0]}), ["amount", "country"])
    with pytest.raises(InvalidInputError, match="must be 2-D"):
        onnx_inputs(np.ones(3), ["X"])
    with pytest.raises(InvalidInputError, match="'age' must hold whole numbers"):
        onnx_inputs(pd.DataFrame({"age": [30.0, None]}), ["age"], {"age": "tensor(int64)"})
    with pytest.raises(InvalidInputError, match="'amount' must be numeric"):
        onnx_inputs(pd.DataFrame({"amount": ["lots"]}), ["amount"], {"amount": "tensor(float)"})
