"""The SQLite online store's file layout, its version marker, and the upgrade from layout 1.

Layout 2 (``PRAGMA user_version = 2``)::

    steward_online_views(view PRIMARY KEY, tbl, columns)  -- its table; its Layout as JSON
    "fv_<view>__<token>"(_key TEXT PRIMARY KEY, _event_us INTEGER NOT NULL,
                         _created_us INTEGER, _v BLOB NOT NULL) WITHOUT ROWID

``_v`` is the packed row (see ``_packed``); the times are kept in columns too,
so that a write's ``WHERE`` compares them without unpacking. Each table gets a
new random token when it is created: a reader that cached a view's layout
before another process dropped and re-created the view finds its table gone
and reloads, rather than reading new rows by old positions.

Layout 1 (``user_version`` 0, written before packed rows) kept one typed column
per feature; a store in layout 1 is upgraded in place the first time it is
opened, in one transaction: its values are packed as they are, nothing has to
be materialized again.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator
from typing import NamedTuple

from steward.core import SchemaVersionError
from steward.features._online._packed import Layout, pack_row
from steward.features._online._types import Kind

__all__ = [
    "LAYOUT_VERSION",
    "META",
    "StoredView",
    "create_table",
    "extend_layout",
    "prepare_file",
    "quote",
    "read_layout",
    "settle_layout",
    "upsert_sql",
    "write_layout",
]

LAYOUT_VERSION = 2
META = "steward_online_views"
_MIGRATE_ROWS = 10_000  # rows re-packed at a time while upgrading
_NO_TIME = -(2**63)  # a missing created time sorts before every real one


def quote(name: str) -> str:
    """Quote an SQLite identifier: ``quote('a"b')`` → ``"a""b"``."""
    return '"' + name.replace('"', '""') + '"'


class StoredView(NamedTuple):
    """A view as the file records it: the name of its table and its layout."""

    table: str
    layout: Layout


def create_table(conn: sqlite3.Connection, view: str) -> str:
    """Create a new table for the view's rows; return its name."""
    table = f"fv_{view}__{secrets.token_hex(4)}"
    conn.execute(
        f"CREATE TABLE {quote(table)} (_key TEXT PRIMARY KEY NOT NULL, "
        "_event_us INTEGER NOT NULL, _created_us INTEGER, _v BLOB NOT NULL) WITHOUT ROWID"
    )
    return table


def read_layout(conn: sqlite3.Connection, view: str) -> StoredView | None:
    """Return the view's table and layout, or None when the view has no table."""
    row = conn.execute(f"SELECT tbl, columns FROM {META} WHERE view = ?", (view,)).fetchone()
    return None if row is None else StoredView(row[0], Layout.from_json(json.loads(row[1])))


def write_layout(conn: sqlite3.Connection, view: str, stored: StoredView) -> None:
    """Record the view's table and layout (inside the caller's write transaction)."""
    conn.execute(
        f"INSERT INTO {META} (view, tbl, columns) VALUES (?, ?, ?) "
        "ON CONFLICT (view) DO UPDATE SET tbl = excluded.tbl, columns = excluded.columns",
        (view, stored.table, json.dumps(stored.layout.to_json())),
    )


def extend_layout(conn: sqlite3.Connection, view: str, kinds: dict[str, Kind]) -> StoredView:
    """Return the view's table and layout with ``kinds`` added, creating and recording them.

    Runs inside the caller's write transaction, so positions are handed out once.
    """
    stored = read_layout(conn, view)
    table = create_table(conn, view) if stored is None else stored.table
    updated = StoredView(table, (Layout() if stored is None else stored.layout).extended(kinds))
    if updated != stored:
        write_layout(conn, view, updated)
    return updated


def settle_layout(
    conn: sqlite3.Connection, view: str, staged: Layout, kinds: dict[str, Kind]
) -> tuple[StoredView, list[int] | None]:
    """Merge a transaction's features into the stored layout; say how its rows must move.

    ``staged`` is the layout its rows were packed against (the stored one when it
    began, its new features appended); ``kinds`` are those of the values it holds.
    Returns the view to record and, when another writer appended other features
    meanwhile (or dropped the view), the new position of each staged position
    (None: none moves).
    """
    # A staged feature without values of its own keeps the stored kind ("null" never wins).
    wanted: dict[str, Kind] = {name: "null" for name in staged.names}
    updated = extend_layout(conn, view, {**wanted, **kinds})
    moves = [updated.layout.positions[name] for name in staged.names]
    return updated, None if moves == list(range(len(moves))) else moves


def upsert_sql(table: str, rows: str | None = None) -> str:
    """Return the statement storing rows that are newer than the stored ones in ``table``.

    ``rows`` is a relation of ``(_key, _event_us, _created_us, _v)`` to take them
    from; without it, the statement takes one row of four parameters.
    """
    target = quote(table)
    source = "VALUES (?, ?, ?, ?)" if rows is None else f"SELECT * FROM {rows} WHERE true"
    return (
        f"INSERT INTO {target} (_key, _event_us, _created_us, _v) {source} "
        "ON CONFLICT (_key) DO UPDATE SET _event_us = excluded._event_us, "
        "_created_us = excluded._created_us, _v = excluded._v "
        f"WHERE excluded._event_us > {target}._event_us OR "
        f"(excluded._event_us = {target}._event_us AND "
        f"IFNULL(excluded._created_us, {_NO_TIME}) > IFNULL({target}._created_us, {_NO_TIME}))"
    )


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def prepare_file(conn: sqlite3.Connection, url: str) -> None:
    """Create the layout in a new file, upgrade a layout-1 file, refuse a newer one.

    Raises:
        SchemaVersionError: the file was written by a newer steward (a later layout).
        sqlite3.Error: the file cannot be read or written.
    """
    if _version(conn) == LAYOUT_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _version(conn)  # another process may have done it meanwhile
        if version > LAYOUT_VERSION:
            raise SchemaVersionError(
                f"the online store {url!r} has layout {version}, written by a newer steward "
                f"(this one reads layout {LAYOUT_VERSION}); upgrade steward, or point "
                "STEWARD_ONLINE_STORE_URL at a new file and materialize again"
            )
        if version < LAYOUT_VERSION:
            old = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (META,)
            ).fetchone()
            if old:
                conn.execute(f"ALTER TABLE {META} RENAME TO {META}_1")
            conn.execute(
                f"CREATE TABLE {META} (view TEXT PRIMARY KEY NOT NULL, tbl TEXT NOT NULL, "
                "columns TEXT NOT NULL) WITHOUT ROWID"
            )
            if old:
                _upgrade_from_1(conn)
            conn.execute(f"PRAGMA user_version = {LAYOUT_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _upgrade_from_1(conn: sqlite3.Connection) -> None:
    # Layout 1: "fv_<view>"(_key, _event_us, _created_us, "<feature>", ...), with the
    # kinds {feature: kind} in the views table (renamed <META>_1 by the caller). Each
    # table's rows are packed into a new table, in the order of its kinds.
    for view, text in conn.execute(f"SELECT view, columns FROM {META}_1").fetchall():
        layout = Layout.from_json(json.loads(text))
        old = quote(f"fv_{view}")
        table = create_table(conn, view)
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({old})")}
        picked = "".join(
            f", {quote(name)}" if name in present else ", NULL" for name in layout.names
        )
        rows = conn.execute(f"SELECT _key, _event_us, _created_us{picked} FROM {old}")
        insert = f"INSERT INTO {quote(table)} VALUES (?, ?, ?, ?)"
        kinds = [kind for _, kind in layout.columns]
        while chunk := rows.fetchmany(_MIGRATE_ROWS):
            conn.executemany(insert, _repacked(chunk, kinds))
        conn.execute(f"DROP TABLE IF EXISTS {old}")
        write_layout(conn, view, StoredView(table, layout))
    conn.execute(f"DROP TABLE {META}_1")


def _repacked(
    rows: list[tuple[object, ...]], kinds: list[Kind]
) -> Iterator[tuple[object, object, object, bytes]]:
    # Layout 1 stored booleans as SQLite integers; everything else is already as packed.
    flags = [index for index, kind in enumerate(kinds) if kind == "bool"]
    for row in rows:
        values = list(row[3:])
        for index in flags:
            if values[index] is not None:
                values[index] = bool(values[index])
        yield row[0], row[1], row[2], pack_row(row[1], row[2], values)  # type: ignore[arg-type]
