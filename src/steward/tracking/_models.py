"""What tracking hands back: plain, immutable records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

__all__ = [
    "DatasetVersion",
    "Experiment",
    "Metric",
    "Page",
    "ParamValue",
    "Run",
    "RunStatus",
]

ParamValue = str | int | float | bool
T = TypeVar("T")


class RunStatus(StrEnum):
    """Where a run is in its life."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"


@dataclass(frozen=True, slots=True)
class Experiment:
    """A named group of runs."""

    id: str
    name: str
    description: str
    owner: str
    tags: dict[str, str]
    created_at: datetime
    archived_at: datetime | None = None

    def as_row(self) -> dict[str, Any]:
        """Return the columns of the ``experiments`` table (tags still a dict)."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "owner": self.owner,
            "tags": self.tags,
            "created_at": self.created_at,
            "archived_at": self.archived_at,
        }

    @property
    def archived(self) -> bool:
        """True when the experiment is archived."""
        return self.archived_at is not None

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "owner": self.owner,
            "tags": self.tags,
            "created_at": self.created_at.isoformat(),
            "archived": self.archived,
        }


@dataclass(frozen=True, slots=True)
class Metric:
    """One logged value of a metric."""

    key: str
    value: float
    step: int
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """A dataset as seen by a run: content digest, shape, schema and profile."""

    id: str
    digest: str
    name: str
    source_uri: str
    num_rows: int
    num_columns: int
    schema: list[dict[str, Any]]
    profile: dict[str, Any]
    created_at: datetime
    role: str | None = None

    def as_dict(self, *, with_profile: bool = False) -> dict[str, Any]:
        """Return a JSON-friendly view (the profile only when asked: it can be large)."""
        view: dict[str, Any] = {
            "id": self.id,
            "digest": self.digest,
            "name": self.name,
            "role": self.role,
            "source_uri": self.source_uri,
            "num_rows": self.num_rows,
            "num_columns": self.num_columns,
            "schema": self.schema,
        }
        if with_profile:
            view["profile"] = self.profile
        return view


@dataclass(frozen=True, slots=True)
class Run:
    """A run with its params, latest metrics and tags."""

    id: str
    experiment_id: str
    experiment_name: str
    name: str
    status: RunStatus
    user: str
    start_time: datetime
    end_time: datetime | None
    parent_run_id: str | None
    seed: int | None
    notes: str
    error: str | None
    wall_seconds: float | None
    cpu_seconds: float | None
    environment_digest: str | None
    archived_at: datetime | None
    params: dict[str, ParamValue] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        return {
            "id": self.id,
            "experiment": self.experiment_name,
            "name": self.name,
            "status": self.status.value,
            "user": self.user,
            "start_time": self.start_time.isoformat(),
            "end_time": self.end_time.isoformat() if self.end_time else None,
            "parent_run_id": self.parent_run_id,
            "seed": self.seed,
            "notes": self.notes,
            "error": self.error,
            "wall_seconds": self.wall_seconds,
            "cpu_seconds": self.cpu_seconds,
            "environment_digest": self.environment_digest,
            "archived": self.archived_at is not None,
            "params": self.params,
            "metrics": self.metrics,
            "tags": self.tags,
        }


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results and the token for the next (None on the last page)."""

    items: list[T]
    next_page_token: str | None
