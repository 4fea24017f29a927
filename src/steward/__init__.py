"""steward: governance-first MLOps, from data to prediction, with a tamper-evident record.

The SDK is reached from here (``steward.connect()``, ``steward.start_run(...)``);
it is loaded on first use so that ``import steward.core`` stays light.

Example:
    >>> import steward
    >>> st = steward.connect()  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SDK = (
    "Steward",
    "active_run",
    "connect",
    "end_run",
    "log_artifact",
    "log_dataset",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "register_model",
    "set_tag",
    "start_run",
)

__all__ = ["__version__", *_SDK]


def __getattr__(name: str) -> Any:
    if name in _SDK:
        return getattr(importlib.import_module("steward.sdk"), name)
    raise AttributeError(f"module 'steward' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
