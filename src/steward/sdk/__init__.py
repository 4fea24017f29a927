"""The Python SDK: ``steward.connect()`` and the module-level shortcuts."""

from steward.sdk._client import Steward, connect
from steward.sdk._fluent import (
    active_run,
    end_run,
    log_artifact,
    log_dataset,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    register_model,
    set_tag,
    start_run,
)
from steward.sdk._runs import ModelRun

__all__ = [
    "ModelRun",
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
]
