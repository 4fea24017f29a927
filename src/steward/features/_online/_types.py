"""What an online store holds, and the small Protocol every backend implements.

An online store keeps, per feature view and entity key, the latest row: the
feature values, the row's event time and (optionally) its created time. A write
keeps an incoming row only when it is *newer* than the stored one: a later event
time, or the same event time and a later created time (a missing created time
counts as older than any). Writing the same rows twice therefore changes nothing,
and replaying a partly written batch after a failure is safe. Two rows with the
same times are a tie, and the one stored first stays.

Materialization writes through a transaction (:meth:`OnlineStore.begin`): its
rows take effect together at ``commit``, and ``rollback`` (or an exception in a
``with`` block) leaves the view as it was before the transaction began.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal, NamedTuple, Protocol, TypeAlias, runtime_checkable

import pyarrow as pa

__all__ = [
    "Kind",
    "OnlineColumns",
    "OnlineRecord",
    "OnlineRow",
    "OnlineStore",
    "OnlineTransaction",
    "from_micros",
]

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


class OnlineColumns(NamedTuple):
    """The stored rows of many entity keys, laid out per feature (what serving reads).

    Every list has one entry per entity key asked for, in the order asked.

    Attributes:
        values: requested feature name → value per key (None: null, or no stored row).
        event_us: per key, the stored row's event time in microseconds (None: no row).
        created_us: per key, the stored row's created time in microseconds, if it had one.
    """

    values: dict[str, list[Any]]
    event_us: list[int | None]
    created_us: list[int | None]

    @classmethod
    def empty(cls, count: int, features: Sequence[str]) -> OnlineColumns:
        """Return the answer for ``count`` keys of which none has a stored row."""
        nothing: list[Any] = [None] * count
        return cls({name: list(nothing) for name in features}, list(nothing), list(nothing))

    def records(self) -> list[OnlineRecord | None]:
        """Return the same rows as one record per key (None where there is no row)."""
        names = list(self.values)
        columns = list(self.values.values())
        out: list[OnlineRecord | None] = []
        for index, (event, created) in enumerate(zip(self.event_us, self.created_us, strict=True)):
            if event is None:
                out.append(None)
            else:
                values = {name: column[index] for name, column in zip(names, columns, strict=True)}
                out.append(OnlineRecord(values, event, created))
        return out


class OnlineTransaction(Protocol):
    """Rows of one view written together: all of them at ``commit``, none after ``rollback``.

    Use it as a context manager: leaving the block commits, an exception rolls back.
    A transaction belongs to the thread that began it.
    """

    view: str

    def write_batch(
        self,
        batch: pa.RecordBatch | pa.Table,
        *,
        join_keys: Sequence[str],
        event_timestamp: str,
        created_timestamp: str | None = None,
    ) -> int:
        """Add an Arrow batch's rows to the transaction; return how many rows it held.

        Raises:
            InvalidInputError: a named column is missing, a key or event time is null, or a
                column's type cannot be stored.
            BackendUnavailableError: the store cannot be reached or written.
        """
        ...

    def commit(self) -> int:
        """Apply the rows (newer ones only, as a write does); return how many were stored.

        Raises:
            BackendUnavailableError: the store cannot be written; the view is as it was.
        """
        ...

    def rollback(self) -> None:
        """Leave the view as it was before the transaction began (a no-op once finished).

        Raises:
            BackendUnavailableError: the store cannot be reached to undo what it holds.
        """
        ...

    def __enter__(self) -> OnlineTransaction:
        """Return the transaction itself."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Commit when the block ends normally, roll back when it raises."""
        if kind is None:
            self.commit()
            return
        try:
            self.rollback()
        except Exception as secondary:  # keep the error that ended the block
            if error is not None:
                error.add_note(f"the online transaction could not be rolled back: {secondary}")


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

    def read_columns(
        self, view: str, entity_keys: Sequence[tuple[Any, ...]], features: Sequence[str]
    ) -> OnlineColumns:
        """Return the stored rows of the entity keys, one list per feature (the serving path).

        Raises:
            InvalidInputError: an entity key part is null or of an unusable type.
            BackendUnavailableError: the store cannot be reached.
        """
        ...

    def begin(self, view: str) -> OnlineTransaction:
        """Start a transaction of writes to ``view`` (see :class:`OnlineTransaction`).

        Raises:
            InvalidInputError: ``view`` is not a valid name.
            BackendUnavailableError: the store cannot be reached.
        """
        ...

    def delete_view(self, view: str) -> None:
        """Remove every stored row of ``view`` (a no-op when there are none)."""
        ...

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...
