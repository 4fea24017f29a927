"""What a model's answer becomes per row: label and class probabilities, or the bare prediction."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from steward.serving._runtime import model_outputs


def _loaded(model: Any, classes: list[Any] | None) -> Any:
    """The parts of a LoadedModel that model_outputs reads."""
    signature = SimpleNamespace(classes=classes)
    return SimpleNamespace(model=model, signature=signature, predict_proba=model.predict_proba)


def _fitted(labels: list[Any]) -> LogisticRegression:
    x = np.arange(len(labels) * 10, dtype=np.float64).reshape(-1, 1)
    return LogisticRegression().fit(x, np.repeat(labels, 10))


@pytest.mark.parametrize("labels", [["no", "yes"], ["low", "mid", "high"]])
def test_classifier_rows_carry_label_and_probabilities_by_class(labels: list[str]) -> None:
    model = _fitted(labels)
    block = np.array([[0.0], [15.0], [29.0]])
    outputs = model_outputs(_loaded(model, list(model.classes_)), block)
    proba = model.predict_proba(block)
    assert [o["label"] for o in outputs] == list(model.predict(block))
    for row, answer in zip(proba, outputs, strict=True):
        classes = [str(c) for c in model.classes_]
        assert answer["probabilities"] == dict(zip(classes, row.tolist(), strict=True))


def test_classifier_without_declared_classes_is_labelled_by_column() -> None:
    model = _fitted([3, 7])
    outputs = model_outputs(_loaded(model, None), np.array([[0.0], [19.0]]))
    assert [o["label"] for o in outputs] == [0, 1]  # column indexes, not the fitted labels
    assert list(outputs[0]["probabilities"]) == ["0", "1"]


def test_regressor_rows_are_its_predictions() -> None:
    model = LinearRegression().fit(np.array([[0.0], [1.0]]), np.array([1.0, 3.0]))
    loaded = SimpleNamespace(model=model, predict=model.predict, signature=None)
    assert model_outputs(loaded, np.array([[2.0], [3.0]])) == pytest.approx([5.0, 7.0])  # type: ignore[arg-type]
