"""The ``python`` flavor: any callable or object with ``predict``, pickled. Unsafe by design.

Unpickling runs code named by the artifact, so this flavor needs ``unsafe=True``
when a version is registered and ``STEWARD_ALLOW_UNSAFE_FLAVORS`` when it is
loaded; like every flavor, its bytes are verified against their digest first.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from steward.core import IntegrityError, InvalidInputError, PermissionDeniedError

__all__ = ["PythonFlavor"]

MODEL_FILE = "model.pkl"


class PythonFlavor:
    """A custom model: a callable ``f(X)`` or an object with ``predict(X)``.

    Args:
        allow_unsafe: whether loading (unpickling) is allowed at all.
    """

    name = "python"
    unsafe = True

    def __init__(self, *, allow_unsafe: bool = False) -> None:
        self.allow_unsafe = allow_unsafe

    def handles(self, model: object) -> bool:
        """Never chosen automatically: ask for it with ``flavor="python", unsafe=True``."""
        return False

    def save(self, model: object, directory: Path) -> dict[str, Any]:
        """Pickle the model (module-level functions and classes pickle by reference).

        Raises:
            InvalidInputError: the model is neither callable nor has ``predict``, or
                cannot be pickled (a lambda or a locally defined function).
        """
        if not callable(getattr(model, "predict", None)) and not callable(model):
            raise InvalidInputError(
                f"a python-flavor model must be callable or have predict(); got "
                f"{type(model).__name__}"
            )
        try:
            data = pickle.dumps(model, protocol=5)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            raise InvalidInputError(
                f"cannot pickle {type(model).__name__} ({exc}); define the function or class "
                "at module level so it pickles by reference"
            ) from None
        (directory / MODEL_FILE).write_bytes(data)
        kind = "object" if callable(getattr(model, "predict", None)) else "callable"
        return {"file": MODEL_FILE, "kind": kind, "class": _qualified(model)}

    def load(self, directory: Path, metadata: Mapping[str, Any]) -> object:
        """Unpickle the model, if unsafe flavors are allowed.

        Raises:
            PermissionDeniedError: unsafe flavors are not allowed in this process.
            IntegrityError: the file does not unpickle.
        """
        if not self.allow_unsafe:
            raise PermissionDeniedError(
                "this version uses the unsafe 'python' flavor: loading it runs code from the "
                "artifact; set STEWARD_ALLOW_UNSAFE_FLAVORS=1 only if you trust who registered it"
            )
        data = (directory / str(metadata.get("file", MODEL_FILE))).read_bytes()
        try:
            return pickle.loads(data)  # opted in above; the bytes were digest-verified
        except (pickle.UnpicklingError, AttributeError, ImportError, EOFError) as exc:
            raise IntegrityError(f"python model could not be unpickled: {exc}") from None

    def predict(self, model: object, data: Any) -> np.ndarray:
        """Call ``model.predict(data)``, or ``model(data)`` for a plain callable."""
        predict = getattr(model, "predict", None)
        if callable(predict):
            return np.asarray(predict(data))
        if callable(model):
            return np.asarray(model(data))
        raise InvalidInputError(f"{type(model).__name__} is neither callable nor has predict()")

    def describe(self, model: object) -> dict[str, Any]:
        """The callable's qualified name."""
        return {"class": _qualified(model)}


def _qualified(model: object) -> str:
    target = model if callable(model) and hasattr(model, "__qualname__") else type(model)
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', '?')}"
