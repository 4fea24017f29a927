"""The ``xgboost`` and ``lightgbm`` flavors: each library's own JSON/text model format."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from steward.core import IntegrityError, InvalidInputError
from steward.registry.flavors._base import json_safe, require

__all__ = ["LightGBMFlavor", "LightGBMModel", "XGBoostFlavor"]

_XGB_CLASSES = ("XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor")


def _top_module(model: object) -> str:
    return type(model).__module__.split(".")[0]


class XGBoostFlavor:
    """XGBoost models (scikit-learn wrappers or a ``Booster``) in XGBoost's JSON format."""

    name = "xgboost"
    unsafe = False

    def handles(self, model: object) -> bool:
        """True for objects defined by the ``xgboost`` package."""
        return _top_module(model) == "xgboost"

    def save(self, model: object, directory: Path) -> dict[str, Any]:
        """Write ``model.json`` with ``save_model``.

        Raises:
            InvalidInputError: the model is of an XGBoost class this flavor does not load.
        """
        xgb = require("xgboost", flavor=self.name, extra="ml")
        cls = type(model).__name__
        if cls not in (*_XGB_CLASSES, "Booster"):
            raise InvalidInputError(
                f"xgboost flavor supports {', '.join((*_XGB_CLASSES, 'Booster'))}; got {cls}"
            )
        model.save_model(str(directory / "model.json"))  # type: ignore[attr-defined]
        return {"file": "model.json", "class": cls, "xgboost_version": xgb.__version__}

    def load(self, directory: Path, metadata: Mapping[str, Any]) -> object:
        """Rebuild the model class recorded at save time and load its JSON."""
        xgb = require("xgboost", flavor=self.name, extra="ml")
        cls = str(metadata.get("class"))
        if cls not in (*_XGB_CLASSES, "Booster"):
            raise IntegrityError(f"xgboost metadata names an unknown class {cls!r}")
        model = getattr(xgb, cls)()
        try:
            model.load_model(str(directory / str(metadata.get("file", "model.json"))))
        except xgb.core.XGBoostError as exc:
            raise IntegrityError(f"xgboost model could not be loaded: {exc}") from None
        return model

    def predict(self, model: object, data: Any) -> np.ndarray:
        """``predict`` (a bare Booster is fed a DMatrix)."""
        if type(model).__name__ == "Booster":
            xgb = require("xgboost", flavor=self.name, extra="ml")
            return np.asarray(model.predict(xgb.DMatrix(data)))  # type: ignore[attr-defined]
        return np.asarray(model.predict(data))  # type: ignore[attr-defined]

    def describe(self, model: object) -> dict[str, Any]:
        """Class, parameters and classes."""
        get_params = getattr(model, "get_params", None)
        facts: dict[str, Any] = {"class": type(model).__name__}
        if callable(get_params):
            facts["params"] = json_safe({k: v for k, v in get_params().items() if v is not None})
        if getattr(model, "classes_", None) is not None:
            facts["classes"] = json_safe(model.classes_)  # type: ignore[attr-defined]
        return facts


class LightGBMModel:
    """A LightGBM booster with the scikit-learn surface its wrapper had.

    Classifiers map probabilities back to their class labels; regressors and
    rankers return the booster's raw predictions.
    """

    def __init__(self, booster: Any, *, classes: Sequence[Any] | None) -> None:
        self.booster = booster
        self.classes_ = np.asarray(classes) if classes is not None else None

    def predict_proba(self, data: Any) -> np.ndarray:
        """Class probabilities, one column per class.

        Raises:
            InvalidInputError: the model is not a classifier.
        """
        if self.classes_ is None:
            raise InvalidInputError("this LightGBM model is not a classifier; use predict()")
        raw = np.asarray(self.booster.predict(data))
        return np.column_stack([1 - raw, raw]) if raw.ndim == 1 else raw

    def predict(self, data: Any) -> np.ndarray:
        """Class labels for a classifier, raw predictions otherwise."""
        if self.classes_ is None:
            return np.asarray(self.booster.predict(data))
        return np.asarray(self.classes_[np.argmax(self.predict_proba(data), axis=1)])


class LightGBMFlavor:
    """LightGBM models (scikit-learn wrappers or a ``Booster``) in LightGBM's text format."""

    name = "lightgbm"
    unsafe = False

    def handles(self, model: object) -> bool:
        """True for objects defined by the ``lightgbm`` package."""
        return _top_module(model) == "lightgbm"

    def save(self, model: object, directory: Path) -> dict[str, Any]:
        """Write ``model.txt``; keep a classifier's classes in the metadata."""
        lgb = require("lightgbm", flavor=self.name, extra="ml")
        booster: Any = getattr(model, "booster_", model)
        booster.save_model(str(directory / "model.txt"))
        classes = getattr(model, "classes_", None)
        return {
            "file": "model.txt",
            "class": type(model).__name__,
            "classes": json_safe(classes) if classes is not None else None,
            "lightgbm_version": lgb.__version__,
        }

    def load(self, directory: Path, metadata: Mapping[str, Any]) -> object:
        """Load the booster from text and wrap it."""
        lgb = require("lightgbm", flavor=self.name, extra="ml")
        path = directory / str(metadata.get("file", "model.txt"))
        try:
            booster = lgb.Booster(model_file=str(path))
        except lgb.basic.LightGBMError as exc:
            raise IntegrityError(f"lightgbm model could not be loaded: {exc}") from None
        return LightGBMModel(booster, classes=metadata.get("classes"))

    def predict(self, model: object, data: Any) -> np.ndarray:
        """``predict`` of the wrapper (labels for classifiers)."""
        return np.asarray(model.predict(data))  # type: ignore[attr-defined]

    def describe(self, model: object) -> dict[str, Any]:
        """Class, number of trees and classes."""
        booster = getattr(model, "booster", None) or getattr(model, "booster_", model)
        facts: dict[str, Any] = {"class": type(model).__name__}
        num_trees = getattr(booster, "num_trees", None)
        if callable(num_trees):
            facts["trees"] = int(num_trees())
        classes = getattr(model, "classes_", None)
        if classes is not None:
            facts["classes"] = json_safe(classes)
        return facts
