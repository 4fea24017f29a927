"""The ``sklearn`` flavor: skops files, loaded only when every type in them is trusted.

A skops file describes the object tree as data; nothing is imported or built
until the types have been checked. Trusted, in this order:

1. the names in :data:`DEFAULT_TRUSTED_TYPES` and the extra names configured
   (``STEWARD_TRUSTED_TYPES``);
2. classes defined in scikit-learn itself (``sklearn.*``, test modules excepted),
   resolved by importing the scikit-learn module that declares them.

Anything else — a function from another module, a class from user code or a
stranger — is refused with :class:`PermissionDeniedError` naming each type, and
nothing is deserialized.
"""

from __future__ import annotations

import importlib
import json
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from steward.core import IntegrityError, PermissionDeniedError
from steward.registry.flavors._base import json_safe, require

__all__ = ["DEFAULT_TRUSTED_TYPES", "SklearnFlavor", "is_trusted_type"]

MODEL_FILE = "model.skops"

# Types skops leaves to the caller's judgement that are plain data or pure functions.
DEFAULT_TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "numpy.dtype",
        "numpy.mean",
        "numpy.median",
        "numpy.log",
        "numpy.log1p",
        "numpy.exp",
        "numpy.expm1",
        "numpy.sqrt",
        "numpy.float32",
        "numpy.float64",
        "numpy.int32",
        "numpy.int64",
        "scipy.interpolate._bsplines.BSpline",
        "scipy._lib.array_api_compat.numpy._aliases.asarray",
        "sklearn.feature_selection._univariate_selection.f_classif",
        "sklearn.feature_selection._univariate_selection.f_regression",
        "sklearn.feature_selection._univariate_selection.chi2",
        "sklearn.cluster._kmeans._kmeans_single_lloyd",
        "sklearn.cluster._kmeans._kmeans_single_elkan",
    }
)


def _is_sklearn_class(name: str) -> bool:
    module_name, _, attribute = name.rpartition(".")
    parts = module_name.split(".")
    if parts[0] != "sklearn" or any(p in ("tests", "conftest") for p in parts):
        return False
    try:  # only scikit-learn's own modules are ever imported here
        module = importlib.import_module(module_name)
    except ImportError:
        return False
    return isinstance(getattr(module, attribute, None), type)


def is_trusted_type(name: str, extra: Iterable[str] = ()) -> bool:
    """Say whether a type named in a skops file may be loaded.

    Example:
        >>> is_trusted_type("sklearn.tree._tree.Tree"), is_trusted_type("os.system")
        (True, False)
    """
    return name in DEFAULT_TRUSTED_TYPES or name in set(extra) or _is_sklearn_class(name)


class SklearnFlavor:
    """scikit-learn estimators and pipelines, stored with skops (no pickle).

    Args:
        trusted_types: type names trusted on top of the defaults, e.g. a custom
            transformer ``"mycompany.features.Winsorizer"``.
    """

    name = "sklearn"
    unsafe = False

    def __init__(self, trusted_types: Iterable[str] = ()) -> None:
        self.trusted_types = frozenset(trusted_types)

    def handles(self, model: object) -> bool:
        """True for scikit-learn estimators (anything defined under ``sklearn``)."""
        if type(model).__module__.split(".")[0] == "sklearn":
            return True
        return callable(getattr(model, "get_params", None)) and callable(
            getattr(model, "fit", None)
        )

    def save(self, model: object, directory: Path) -> dict[str, Any]:
        """Write ``model.skops``; record the estimator class and library versions."""
        sio = require("skops.io", flavor=self.name, extra="ml")
        sklearn = require("sklearn", flavor=self.name, extra="ml")
        skops = require("skops", flavor=self.name, extra="ml")
        sio.dump(model, directory / MODEL_FILE)
        return {
            "file": MODEL_FILE,
            "estimator": f"{type(model).__module__}.{type(model).__qualname__}",
            "sklearn_version": sklearn.__version__,
            "skops_version": skops.__version__,
        }

    def untrusted_types(self, data: bytes, *, what: str = "model file") -> list[str]:
        """Return the types in a skops file that are not trusted (nothing is built).

        Raises:
            IntegrityError: the bytes are not a skops file (e.g. a pickle).
        """
        return self._audit(data, what=what)[1]

    def _audit(self, data: bytes, *, what: str) -> tuple[list[str], list[str]]:
        """Return the types skops does not trust by default, and those refused here too."""
        sio = require("skops.io", flavor=self.name, extra="ml")
        try:
            found: list[str] = sio.get_untrusted_types(data=data)
        except (zipfile.BadZipFile, KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
            raise IntegrityError(
                f"{what} is not a valid skops file ({type(exc).__name__}: {exc}); "
                "sklearn models are stored with skops only, never as pickles"
            ) from None
        return found, [t for t in found if not is_trusted_type(t, self.trusted_types)]

    def load_bytes(self, data: bytes, *, what: str = "model file") -> object:
        """Load a skops file from bytes after checking every type it names.

        Raises:
            PermissionDeniedError: the file names types that are not trusted.
            IntegrityError: the bytes are not a valid skops file.
        """
        sio = require("skops.io", flavor=self.name, extra="ml")
        allowed, refused = self._audit(data, what=what)
        if refused:
            listing = ", ".join(refused[:20])
            raise PermissionDeniedError(
                f"{what} names types that are not trusted: {listing}; nothing was loaded. "
                "If you trust them, add them to STEWARD_TRUSTED_TYPES (comma-separated)"
            )
        try:
            # skops audits the tree again while it builds it: exactly the types
            # checked above are trusted on top of its defaults, nothing more.
            return sio.loads(data, trusted=allowed)
        except (zipfile.BadZipFile, KeyError, ValueError, TypeError, AttributeError) as exc:
            raise IntegrityError(
                f"{what} could not be rebuilt ({type(exc).__name__}: {exc})"
            ) from None

    def load(self, directory: Path, metadata: Mapping[str, Any]) -> object:
        """Load ``model.skops`` (see :meth:`load_bytes`)."""
        path = directory / str(metadata.get("file", MODEL_FILE))
        return self.load_bytes(path.read_bytes(), what=f"sklearn model {path.name!r}")

    def predict(self, model: object, data: Any) -> np.ndarray:
        """Call the estimator's ``predict``."""
        return np.asarray(model.predict(data))  # type: ignore[attr-defined]

    def describe(self, model: object) -> dict[str, Any]:
        """Class, top-level hyperparameters, features and classes."""
        get_params = getattr(model, "get_params", None)
        params = get_params(deep=False) if callable(get_params) else {}
        facts: dict[str, Any] = {
            "estimator": f"{type(model).__module__}.{type(model).__qualname__}",
            "params": json_safe(params),
        }
        for attribute in ("n_features_in_", "feature_names_in_", "classes_"):
            value = getattr(model, attribute, None)
            if value is not None:
                facts[attribute.rstrip("_")] = json_safe(value)
        return facts
