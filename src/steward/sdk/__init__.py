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
    set_tag,
    start_run,
)

__all__ = [
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
    "set_tag",
    "start_run",
]
