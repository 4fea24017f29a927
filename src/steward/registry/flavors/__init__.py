"""Flavors: how each kind of model is saved, loaded, run and described.

Built in: ``sklearn`` (skops, trusted types only), ``onnx`` (onnxruntime),
``xgboost`` and ``lightgbm`` (their native formats) and ``python`` (pickled
custom code; unsafe, opt-in on both sides).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from steward.core import InvalidInputError
from steward.registry.flavors._base import Flavor, json_safe, require
from steward.registry.flavors._boosting import LightGBMFlavor, LightGBMModel, XGBoostFlavor
from steward.registry.flavors._onnxruntime import OnnxFlavor, OnnxModel
from steward.registry.flavors._python import PythonFlavor
from steward.registry.flavors._sklearn import DEFAULT_TRUSTED_TYPES, SklearnFlavor, is_trusted_type

__all__ = [
    "DEFAULT_TRUSTED_TYPES",
    "Flavor",
    "LightGBMFlavor",
    "LightGBMModel",
    "OnnxFlavor",
    "OnnxModel",
    "PythonFlavor",
    "SklearnFlavor",
    "XGBoostFlavor",
    "builtin_flavors",
    "detect_flavor",
    "is_trusted_type",
    "json_safe",
    "require",
]


def builtin_flavors(
    *, trusted_types: Iterable[str] = (), allow_unsafe: bool = False
) -> dict[str, Flavor]:
    """Return the built-in flavors by name, in the order they are tried on a model.

    The specific libraries come before ``sklearn`` because their estimators also
    carry scikit-learn's interface.
    """
    flavors: list[Flavor] = [
        XGBoostFlavor(),
        LightGBMFlavor(),
        OnnxFlavor(),
        SklearnFlavor(trusted_types),
        PythonFlavor(allow_unsafe=allow_unsafe),
    ]
    return {f.name: f for f in flavors}


def detect_flavor(model: object, flavors: Mapping[str, Flavor]) -> Flavor:
    """Return the first flavor that recognises ``model``.

    Raises:
        InvalidInputError: none does; the message names the type and the way out.
    """
    for flavor in flavors.values():
        if flavor.handles(model):
            return flavor
    raise InvalidInputError(
        f"no flavor recognises a {type(model).__module__}.{type(model).__qualname__}; "
        f"known flavors: {', '.join(flavors)}. For custom code pass flavor='python' and "
        "unsafe=True"
    )
