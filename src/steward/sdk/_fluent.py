"""Module-level shortcuts (``steward.start_run``, ``steward.log_metric``, ...).

They act on a default client (connected on first use) and a stack of active
runs per thread: the innermost ``with steward.start_run()`` block is the target.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from steward.core import NotFoundError
from steward.registry import ModelVersion
from steward.sdk._client import Steward, connect
from steward.sdk._runs import ModelRun
from steward.tracking import ActiveRun, DatasetVersion, RunStatus

__all__ = [
    "active_run",
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
]

_state = threading.local()
_client_lock = threading.Lock()
_client: Steward | None = None


def _default_client() -> Steward:
    global _client
    with _client_lock:
        if _client is None:
            _client = connect()
        return _client


def _stack() -> list[ActiveRun]:
    if not hasattr(_state, "runs"):
        _state.runs = []
    stack: list[ActiveRun] = _state.runs
    return stack


class _FluentRun(ModelRun):
    """A run that leaves the fluent stack when it ends."""

    def end(
        self, status: RunStatus | str = RunStatus.FINISHED, *, error: str | None = None
    ) -> None:
        super().end(status, error=error)  # a failed end stays on the stack, to be retried
        stack = _stack()
        if self in stack:
            stack.remove(self)


def start_run(experiment: str = "default", **kwargs: Any) -> ModelRun:
    """Start a run on the default client; nested calls make child runs.

    Example:
        >>> import steward  # doctest: +SKIP
        >>> with steward.start_run("fraud"):  # doctest: +SKIP
        ...     steward.log_metric("auc", 0.9)
    """
    stack = _stack()
    if stack and "parent" not in kwargs:
        kwargs["parent"] = stack[-1].id
    run = _default_client().start_run(experiment, **kwargs)
    run.__class__ = _FluentRun
    stack.append(run)
    return run


def active_run() -> ActiveRun | None:
    """Return the innermost active run of this thread, or None."""
    stack = _stack()
    return stack[-1] if stack else None


def _current() -> ActiveRun:
    run = active_run()
    if run is None:
        raise NotFoundError("no active run; call steward.start_run() first")
    return run


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the innermost active run."""
    _current().end(status)


def log_metric(key: str, value: float, *, step: int | None = None) -> None:
    """Log a metric value on the active run."""
    _current().log_metric(key, value, step=step)


def log_metrics(values: Mapping[str, float], *, step: int | None = None) -> None:
    """Log several metric values on the active run."""
    _current().log_metrics(values, step=step)


def log_param(key: str, value: Any) -> None:
    """Record a param on the active run."""
    _current().log_param(key, value)


def log_params(values: Mapping[str, Any]) -> None:
    """Record several params on the active run."""
    _current().log_params(values)


def set_tag(key: str, value: str) -> None:
    """Set a tag on the active run."""
    _current().set_tag(key, value)


def log_artifact(path: str | os.PathLike[str], *, name: str | None = None) -> list[str]:
    """Store a file or folder as artifacts of the active run."""
    return _current().log_artifact(path, name=name)


def log_dataset(source: Any, *, name: str, role: str = "train") -> DatasetVersion:
    """Fingerprint, profile and link a dataset to the active run."""
    result: DatasetVersion = _current().log_dataset(source, name=name, role=role)
    return result


def register_model(model: object, *, name: str, **kwargs: Any) -> ModelVersion:
    """Register a model trained by the active run (see ``ModelRun.register_model``)."""
    run = _current()
    if not isinstance(run, ModelRun):  # pragma: no cover - every fluent run is one
        raise NotFoundError("the active run cannot register models; start it with steward")
    return run.register_model(model, name=name, **kwargs)
