"""The flavor seam: how a kind of model is saved, loaded, run and described."""

from __future__ import annotations

import importlib
import math
import sys
import threading
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
        if module in sys.modules:  # the import system waits if it is still initializing
            return importlib.import_module(module)
        return _import_on_fresh_stack(module)
    except ModuleNotFoundError:
        raise ConfigurationError(
            f"the {flavor!r} flavor needs the {module.split('.')[0]!r} package; "
            f"install it with: pip install 'steward[{extra}]'"
        ) from None


def _import_on_fresh_stack(module: str) -> ModuleType:
    """Import ``module`` in a short-lived thread and wait for it.

    A flavor's first import is large (``skops.io`` imports all of scikit-learn).
    CPython 3.11 keeps frames in 16 KiB chunks, mapping one when the stack grows
    into it and unmapping it when the stack shrinks back out. An import this large
    that starts close to a chunk boundary crosses it back and forth: measured on a
    cold ``load``, 60,000 mmap/munmap pairs and about 0.4 s, or almost none,
    depending only on how deep the caller's stack happened to be. A new thread
    starts at the bottom of its own stack, so the cost no longer depends on the
    caller. Nothing else runs meanwhile: this thread waits for the import.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["module"] = importlib.import_module(module)
        except BaseException as exc:  # re-raised in the caller's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"steward-import-{module}", daemon=True)
    thread.start()
    thread.join()
    error = outcome.get("error")
    if isinstance(error, ModuleNotFoundError):
        raise error
    if error is not None:
        # Some packages must be imported from the main thread (they install signal
        # handlers, for one): try once more where the caller is, which raises the
        # package's own error if it fails there too.
        return importlib.import_module(module)
    imported: ModuleType = outcome["module"]
    return imported


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
