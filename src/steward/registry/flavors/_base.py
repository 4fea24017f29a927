"""The flavor seam: how a kind of model is saved, loaded, run and described."""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from steward.core import ConfigurationError

__all__ = ["Flavor", "json_safe", "require"]


@runtime_checkable
class Flavor(Protocol):
    """Saves, loads, runs and describes one kind of model.

    ``save`` writes files into an empty folder and returns JSON-safe metadata;
    the registry stores each file content-addressed and hands the folder (with
    every file's digest verified) and the metadata back to ``load``. ``unsafe``
    flavors can run code from the artifact when loading; they need an explicit
    opt-in on both sides.
    """

    name: str
    unsafe: bool

    def handles(self, model: object) -> bool:
        """Say whether this flavor recognises ``model`` (used to pick one automatically)."""
        ...

    def save(self, model: object, directory: Path) -> dict[str, Any]:
        """Write ``model`` into ``directory``; return the metadata ``load`` needs."""
        ...

    def load(self, directory: Path, metadata: Mapping[str, Any]) -> object:
        """Rebuild the model saved in ``directory`` (files already verified)."""
        ...

    def predict(self, model: object, data: Any) -> np.ndarray:
        """Return the model's predictions for ``data`` (already in the model's own format)."""
        ...

    def describe(self, model: object) -> dict[str, Any]:
        """Return JSON-safe facts about the model (class, hyperparameters, classes)."""
        ...


def require(module: str, *, flavor: str, extra: str) -> ModuleType:
    """Import an optional dependency of a flavor, or say which extra installs it.

    Raises:
        ConfigurationError: the module is not installed.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError:
        raise ConfigurationError(
            f"the {flavor!r} flavor needs the {module.split('.')[0]!r} package; "
            f"install it with: pip install 'steward[{extra}]'"
        ) from None


def json_safe(value: Any, *, depth: int = 0) -> Any:
    """Return ``value`` as plain JSON data; anything else becomes its ``repr`` (bounded)."""
    if depth > 4:
        return repr(value)[:200]
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        value = item()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, depth=depth + 1) for k, v in list(value.items())[:100]}
    if isinstance(value, list | tuple | np.ndarray):
        items = list(value)[:100]
        return [json_safe(v, depth=depth + 1) for v in items]
    return repr(value)[:200]
