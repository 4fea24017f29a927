"""Experiment tracking: experiments, runs, params, metrics, artifacts, datasets, environments."""

from steward.tracking._active import ActiveRun
from steward.tracking._datasets import DatasetColumn, DatasetDescription, describe_dataset
from steward.tracking._environment import (
    EnvironmentChange,
    EnvironmentSnapshot,
    capture_environment,
    diff_environments,
    seed_everything,
)
from steward.tracking._models import (
    DatasetVersion,
    Experiment,
    Metric,
    Page,
    ParamValue,
    Run,
    RunStatus,
)
from steward.tracking._search import FilterSyntaxError
from steward.tracking._service import TrackingService

__all__ = [
    "ActiveRun",
    "DatasetColumn",
    "DatasetDescription",
    "DatasetVersion",
    "EnvironmentChange",
    "EnvironmentSnapshot",
    "Experiment",
    "FilterSyntaxError",
    "Metric",
    "Page",
    "ParamValue",
    "Run",
    "RunStatus",
    "TrackingService",
    "capture_environment",
    "describe_dataset",
    "diff_environments",
    "seed_everything",
]
