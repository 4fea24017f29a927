"""Retention of prediction log partitions: the seam to the log, and the purge itself.

The prediction log belongs to serving, which sits above governance; governance
sees it through :class:`PredictionPartitions` (serving's ``PredictionArchive``
fits it) and decides with its legal holds which ``(deployment, date)``
partitions go.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from steward.governance._holds import ActiveHolds

__all__ = ["PredictionPartition", "PredictionPartitions", "PurgeOutcome", "partition_items"]


class PurgeOutcome(Protocol):
    """What a purge of one deployment's partitions did."""

    @property
    def deleted(self) -> Sequence[tuple[str, date]]:
        """``(deployment, date)`` of each partition deleted."""
        ...

    @property
    def held(self) -> Sequence[tuple[str, date]]:
        """``(deployment, date)`` of each partition a hold kept."""
        ...


class PredictionPartitions(Protocol):
    """A prediction log's compacted partitions, one per deployment and UTC date."""

    def partitions(self, before: date) -> list[tuple[str, date]]:
        """Return ``(deployment, date)`` of each partition dated before ``before``."""
        ...

    def purge(
        self, deployment: str, before: date, *, held: Callable[[str, date], bool]
    ) -> PurgeOutcome:
        """Delete the deployment's partitions dated before ``before`` unless ``held``."""
        ...


@dataclass(frozen=True)
class PredictionPartition:
    """One prediction partition past the rule's period, and what retention does with it."""

    deployment: str
    day: date
    action: str  # delete | keep
    reason: str
    hold_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return {
            "deployment": self.deployment,
            "date": self.day.isoformat(),
            "action": self.action,
            "reason": self.reason,
            "hold": self.hold_id,
        }


def partition_items(
    log: PredictionPartitions, cutoff: date, holds: ActiveHolds
) -> list[PredictionPartition]:
    """Each partition dated before ``cutoff``, to delete or keep under a legal hold."""
    items = []
    for deployment, day in sorted(set(log.partitions(cutoff))):
        hold = holds.for_partition(deployment, day)
        if hold is not None:
            reason = f"held by {hold.id} ({hold.selector}): {hold.reason}"
            items.append(PredictionPartition(deployment, day, "keep", reason, hold.id))
        else:
            reason = f"older than {cutoff.isoformat()}"
            items.append(PredictionPartition(deployment, day, "delete", reason))
    return items
