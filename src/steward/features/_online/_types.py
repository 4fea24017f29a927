"""What an online store holds, and the small Protocol every backend implements.

An online store keeps, per feature view and entity key, the latest row: the
feature values, the row's event time and (optionally) its created time. A write
keeps an incoming row only when it is *newer* than the stored one: a later event
time, or the same event time and a later created time (a missing created time
counts as older than any). Writing the same rows twice therefore changes nothing,
and replaying a partly written batch after a failure is safe.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple, Protocol, TypeAlias, runtime_checkable

import pyarrow as pa

__all__ = ["Kind", "OnlineRecord", "OnlineRow", "OnlineStore", "from_micros"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# How a stored value is decoded: numbers and text as stored, booleans and
# timestamps (kept as microseconds since the epoch) rebuilt. "null" marks a
# column that has only held nulls so far.
Kind: TypeAlias = Literal["float", "int", "bool", "string", "timestamp", "null"]


class OnlineRow(NamedTuple):
    """One entity's feature values at one event time, as written.

    Attributes:
        entity_key: the join-key values, in the view's join-key order.
        values: feature name → value (None, bool, int, float, str or datetime);
            a feature the row does not name is stored as null.
        event_ts: when the values were true; a naive datetime is taken as UTC.
        created_ts: when the row was produced; breaks ties between equal event times.
    """

    entity_key: tuple[Any, ...]
    values: Mapping[str, Any]
    event_ts: datetime
    created_ts: datetime | None = None


def from_micros(micros: int) -> datetime:
    """Return the UTC datetime ``micros`` microseconds after the epoch."""
    return _EPOCH + timedelta(microseconds=micros)


class OnlineRecord(NamedTuple):
    """One entity's stored row, as read: the requested values and the row's times.

    Times are kept as microseconds and turned into datetimes only when asked for:
    a read of many entities should not pay for datetimes nobody looks at.

    Attributes:
        values: requested feature name → value; a feature never written is None.
        event_us: the stored row's event time, microseconds since the epoch (UTC).
        created_us: the stored row's created time in microseconds, if it had one.
    """

    values: dict[str, Any]
    event_us: int
    created_us: int | None

    @property
    def event_ts(self) -> datetime:
        """The stored row's event time (UTC), so callers see its staleness."""
        return from_micros(self.event_us)

    @property
    def created_ts(self) -> datetime | None:
        """The stored row's created time (UTC), if it had one."""
        return None if self.created_us is None else from_micros(self.created_us)


@runtime_checkable
class OnlineStore(Protocol):
    """Latest feature values per view and entity key (SQLite embedded, Redis at scale).

    Entity keys are tuples of join-key values. They are compared as text
    (``42`` and ``"42"`` are the same key; an integral float ``42.0`` is ``42``),
    so a key typed on the command line finds the row materialized from an
    integer column. Float NaN is stored as null.
    """

    url: str

    def write(self, view: str, rows: Iterable[OnlineRow]) -> int:
        """Store the rows that are newer than what is stored; return how many were.

        Raises:
            InvalidInputError: a row lacks a key part or an event time, or a value's type
                cannot be stored.
            BackendUnavailableError: the store cannot be reached or written.
        """
        ...

    def write_batch(
        self,
        view: str,
        batch: pa.RecordBatch | pa.Table,
        *,
        join_keys: Sequence[str],
        event_timestamp: str,
        created_timestamp: str | None = None,
    ) -> int:
        """Store the newer rows of an Arrow batch (every other column is a feature).

        Raises:
            InvalidInputError: a named column is missing, a key or event time is null, or a
                column's type cannot be stored.
            BackendUnavailableError: the store cannot be reached or written.
        """
        ...

    def read(
        self, view: str, entity_keys: Sequence[tuple[Any, ...]], features: Sequence[str]
    ) -> list[OnlineRecord | None]:
        """Return, per entity key in order, its stored row (None where there is none).

        Raises:
            BackendUnavailableError: the store cannot be reached.
        """
        ...

    def delete_view(self, view: str) -> None:
        """Remove every stored row of ``view`` (a no-op when there are none)."""
        ...

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...
