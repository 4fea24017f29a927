"""A transaction of the SQLite online store: rows staged apart, applied at once.

The transaction opens a connection of its own and stages rows in a temporary
table there. SQLite keeps temporary tables in a file of the connection's own,
so staging takes no lock on the store, memory stays bounded however many rows
are staged, and the staged rows vanish with the connection on rollback or on a
crash. ``commit`` applies them in one write transaction: the layout is settled
(features the transaction brings are appended; if another writer appended
others meanwhile, the staged rows are re-packed to the final positions), then
one ``INSERT ... SELECT`` stores the rows that are newer than the stored ones.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from steward.core import BackendUnavailableError, InvalidInputError
from steward.features._online._codec import check_name, encode_batch, merge_kinds
from steward.features._online._packed import Layout, pack_rows, repack
from steward.features._online._sqlite_schema import read_layout, settle_layout, upsert_sql
from steward.features._online._types import Kind, OnlineTransaction

__all__ = ["SqliteTransaction"]

_STAGED = "temp.steward_staged"


class _Files(Protocol):
    url: str

    def connect(self) -> sqlite3.Connection: ...

    def release(self, conn: sqlite3.Connection) -> None: ...


class SqliteTransaction(OnlineTransaction):
    """Rows of one view staged in a temporary table, applied at once at ``commit``.

    Open one with :meth:`SqliteOnlineStore.begin`.

    Raises:
        BackendUnavailableError: the file cannot be opened.
    """

    def __init__(self, files: _Files, view: str, *, forget: Callable[[], object]) -> None:
        self.view = view
        self._files = files
        self._forget = forget
        self._kinds: dict[str, Kind] = {}
        self._rows = 0
        self._conn: sqlite3.Connection | None = files.connect()
        try:
            self._conn.execute("PRAGMA temp_store=FILE")
            self._conn.execute(
                f"CREATE TEMP TABLE {_STAGED.split('.')[1]} (_key TEXT NOT NULL, "
                "_event_us INTEGER NOT NULL, _created_us INTEGER, _v BLOB NOT NULL)"
            )
            stored = read_layout(self._conn, view)
        except sqlite3.Error as exc:
            self._close()
            raise self._unavailable("begin a transaction of", exc) from exc
        self._staged = Layout() if stored is None else stored.layout

    def __repr__(self) -> str:
        state = "open" if self._conn is not None else "finished"
        return f"SqliteTransaction({self.view!r}, rows={self._rows}, {state})"

    def _unavailable(self, action: str, exc: BaseException) -> BackendUnavailableError:
        return BackendUnavailableError(
            f"cannot {action} view {self.view!r} in the online store {self._files.url!r}: {exc}"
        )

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise InvalidInputError(
                f"the online transaction of view {self.view!r} is finished; begin a new one"
            )
        return self._conn

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._files.release(conn)

    def write_batch(
        self,
        batch: Any,
        *,
        join_keys: Sequence[str],
        event_timestamp: str,
        created_timestamp: str | None = None,
    ) -> int:
        """Stage an Arrow batch's rows (every other column is a feature); return how many.

        Raises:
            InvalidInputError: a named column is missing, a key or event time is null, a
                column's type cannot be stored, or the transaction is finished.
            BackendUnavailableError: the temporary table cannot be written.
        """
        conn = self._live()
        encoded = encode_batch(
            batch,
            join_keys=join_keys,
            event_timestamp=event_timestamp,
            created_timestamp=created_timestamp,
        )
        for name in encoded.features:
            check_name("feature", name)
        if not len(encoded):
            return 0
        staged = self._staged.extended(encoded.kinds)
        rows = zip(
            encoded.keys.to_pylist(),
            encoded.event_us.to_pylist(),
            encoded.created_us.to_pylist(),
            pack_rows(encoded, staged),
            strict=True,
        )
        try:
            conn.execute("BEGIN")
            conn.executemany(f"INSERT INTO {_STAGED} VALUES (?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise self._unavailable("stage rows of", exc) from exc
        self._staged, self._kinds = staged, merge_kinds(self._kinds, encoded.kinds)
        self._rows += len(encoded)
        return len(encoded)

    def commit(self) -> int:
        """Store the staged rows that are newer than the stored ones; return how many were.

        Raises:
            InvalidInputError: the transaction is already finished.
            BackendUnavailableError: the file cannot be written; the view is as it was.
        """
        conn = self._live()
        try:
            if not self._rows:
                return 0
            return self._apply(conn)
        except sqlite3.Error as exc:
            raise self._unavailable("commit rows of", exc) from exc
        finally:
            self._close()
            self._forget()

    def _apply(self, conn: sqlite3.Connection) -> int:
        conn.execute("BEGIN IMMEDIATE")
        try:
            stored, moves = settle_layout(conn, self.view, self._staged, self._kinds)
            if moves is not None:
                conn.create_function(
                    "steward_repack", 1, lambda blob: repack(blob, moves), deterministic=True
                )
                conn.execute(f"UPDATE {_STAGED} SET _v = steward_repack(_v)")
            before = conn.total_changes
            conn.execute(upsert_sql(stored.table, _STAGED))
            written = conn.total_changes - before
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return written

    def rollback(self) -> None:
        """Drop the staged rows; the view stays as it was (a no-op once finished)."""
        self._close()
