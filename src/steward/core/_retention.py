"""The seam through which a deletion below governance asks what must be kept.

Legal holds and the records that still use a blob (a model version's files) are
owned by contexts above the one deleting: tracking collects the artifacts of
archived runs but knows nothing of holds or model versions. It asks the
:class:`RetentionGuard` the store carries instead; governance installs one when
it binds a caller (``authenticated_store``). A store without a guard cannot
answer, so destructive calls that need one refuse to run rather than guess.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["KeepReason", "RetentionGuard"]


@dataclass(frozen=True, slots=True)
class KeepReason:
    """Why an object must not be deleted now.

    Attributes:
        reason: the reason in words (``held by 0190... (version fraud:3): case 114``).
        hold_id: the legal hold that keeps it, when one does.
    """

    reason: str
    hold_id: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        """Return a JSON-friendly view."""
        return {"reason": self.reason, "hold": self.hold_id}


@runtime_checkable
class RetentionGuard(Protocol):
    """Answers which runs and blobs a deletion must leave alone.

    Both methods take many ids at once (one query for a whole collection) and
    return only the ids that are kept, each with its reason. Neither checks a
    scope: the service that deletes has already authorized its caller.
    """

    def kept_runs(self, run_ids: Collection[str]) -> Mapping[str, KeepReason]:
        """Return the runs among ``run_ids`` that must keep their records and artifacts."""
        ...

    def kept_blobs(self, digests: Collection[str]) -> Mapping[str, KeepReason]:
        """Return the blobs among ``digests`` that a record above the caller still uses."""
        ...
