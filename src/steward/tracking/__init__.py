"""Experiment tracking: experiments, runs, params, metrics, artifacts, datasets, environments."""

from steward.tracking._active import ActiveRun
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
    "DatasetVersion",
    "Experiment",
    "FilterSyntaxError",
    "Metric",
    "Page",
    "ParamValue",
    "Run",
    "RunStatus",
    "TrackingService",
]
