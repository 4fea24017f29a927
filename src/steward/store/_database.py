"""The metadata database: engine set-up, transactions, schema version checks.

SQLite (embedded) runs in WAL mode with foreign keys on.  Write transactions
start with ``BEGIN IMMEDIATE``, so a writer takes SQLite's single write lock up
front and waits for it (busy timeout) instead of failing later with "database is
locked" when it tries to upgrade a read lock.  PostgreSQL is reached through
psycopg 3.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from steward.core import (
    BackendUnavailableError,
    ConfigurationError,
    SchemaVersionError,
)
from steward.store._settings import StoreSettings

__all__ = ["Database", "SchemaStatus", "open_database"]

VERSION_TABLE = "steward_schema_version"
# The revision the migrations under steward/store/migrations/versions end at (pinned
# to alembic's head by the store tests).  A database already there is checked with
# one plain query: alembic, with mako and every SQL dialect, is loaded only to
# migrate or to judge another revision, which keeps it out of a process that just
# reads (a serving process loading a model).
SCHEMA_HEAD = "0011_version_purge"
_BUSY_TIMEOUT_S = 60.0
_WRITE = "steward_write"
# Key of the PostgreSQL advisory lock that serializes migrations.
_MIGRATION_LOCK = 0x57E3A8D0


def _normalize_url(raw: str) -> URL:
    try:
        url = make_url(raw)
    except ArgumentError as exc:
        raise ConfigurationError(
            f"STEWARD_DATABASE_URL={raw!r} is not a database URL; use sqlite:///path/steward.db "
            "or postgresql+psycopg://user@host:5432/db"
        ) from exc
    backend = url.get_backend_name()
    if backend == "postgresql":
        if url.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
            url = url.set(drivername="postgresql+psycopg")
        return url
    if backend == "sqlite":
        return url
    raise ConfigurationError(
        f"STEWARD_DATABASE_URL has unsupported scheme {url.drivername!r}; "
        "valid: sqlite:///path, postgresql+psycopg://user@host/db"
    )


def _prepare_sqlite_path(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    folder = Path(database).expanduser().absolute().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create the database folder {str(folder)!r} ({exc.strerror}); set STEWARD_HOME "
            "or STEWARD_DATABASE_URL to a writable location"
        ) from exc
    if not os.access(folder, os.W_OK):
        raise ConfigurationError(
            f"the database folder {str(folder)!r} is not writable; set STEWARD_HOME or "
            "STEWARD_DATABASE_URL to a writable location"
        )


def _install_sqlite_hooks(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (the pysqlite driver's
        # own transaction handling would defer it and never say IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(_WRITE, False)
        # Straight to the driver: through exec_driver_sql this statement alone cost
        # more than the rest of a small transaction.
        connection.connection.dbapi_connection.execute(  # type: ignore[union-attr]
            "BEGIN IMMEDIATE" if write else "BEGIN"
        )


def _stored_revisions(conn: Connection) -> list[str]:
    """Return the revisions recorded in the version table (none before the first migration)."""
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return []
    query = sa.text(f"SELECT version_num FROM {VERSION_TABLE}")
    return [str(row) for row in conn.execute(query).scalars()]


class SchemaStatus:
    """Where a database's schema stands against the code's migrations."""

    def __init__(self, current: str | None, head: str, known: bool) -> None:
        self.current = current
        self.head = head
        self.known = known

    @property
    def up_to_date(self) -> bool:
        """True when the database is at the code's head revision."""
        return self.current == self.head

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        return {
            "current": self.current,
            "head": self.head,
            "up_to_date": self.up_to_date,
            "newer_than_code": not self.known,
        }


class Database:
    """A metadata database: hands out connections in read or write transactions.

    Example:
        >>> db = Database("sqlite:///:memory:")
        >>> db.upgrade()
        >>> with db.write() as conn:
        ...     _ = conn.execute(sa.text("select 1"))
    """

    def __init__(
        self,
        url: str,
        *,
        auto_migrate: bool | None = None,
        sqlite_synchronous: str = "FULL",
        echo: bool = False,
    ) -> None:
        if sqlite_synchronous not in ("FULL", "NORMAL"):
            raise ConfigurationError(
                f"STEWARD_SQLITE_SYNCHRONOUS={sqlite_synchronous!r} is not valid; "
                "use FULL or NORMAL"
            )
        self.url = _normalize_url(url)
        self.dialect = self.url.get_backend_name()
        self._auto_migrate = self.dialect == "sqlite" if auto_migrate is None else auto_migrate
        self._checked = False
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            _prepare_sqlite_path(self.url)
            if self.url.database in (None, "", ":memory:"):
                kwargs["poolclass"] = sa.StaticPool  # one shared connection keeps the data
            kwargs["connect_args"] = {"timeout": _BUSY_TIMEOUT_S, "check_same_thread": False}
        else:
            kwargs["connect_args"] = {"connect_timeout": 5}
            kwargs["pool_pre_ping"] = True
        try:
            self.engine = sa.create_engine(self.url, **kwargs)
        except NoSuchModuleError as exc:  # pragma: no cover - the URL check runs first
            raise ConfigurationError(f"no driver for {self.url.drivername!r}") from exc
        except ModuleNotFoundError as exc:
            raise ConfigurationError(
                f"STEWARD_DATABASE_URL uses {self.dialect} but its driver is missing ({exc.name}); "
                "install it with: pip install 'steward[postgres]'"
            ) from exc
        if self.dialect == "sqlite":
            _install_sqlite_hooks(self.engine, sqlite_synchronous)

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"

    @property
    def display_url(self) -> str:
        """The URL with any password hidden."""
        return self.url.render_as_string(hide_password=True)

    # -- connections -------------------------------------------------------

    def _connect(self) -> Connection:
        try:
            return self.engine.connect()
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise BackendUnavailableError(
                f"cannot connect to the metadata database {self.display_url} "
                f"(STEWARD_DATABASE_URL): {reason}"
            ) from exc

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """Yield a connection inside a write transaction, committed when the block ends.

        On SQLite the write lock is taken at the start (``BEGIN IMMEDIATE``); concurrent
        writers in other processes wait for it up to the busy timeout.
        """
        self.ensure_schema()
        with self._transaction(write=True) as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """Yield a connection inside a read transaction (rolled back at the end)."""
        self.ensure_schema()
        with self._connect() as conn:
            with conn.begin() as txn:
                yield conn
                txn.rollback()

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        with self._connect() as conn:
            if write:
                conn = conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    # -- schema ------------------------------------------------------------

    def schema_status(self) -> SchemaStatus:
        """Return the database's schema revision against the code's head."""
        with self._connect() as conn:
            return self._status(conn)

    def _status(self, conn: Connection) -> SchemaStatus:
        if _stored_revisions(conn) == [SCHEMA_HEAD]:
            return SchemaStatus(SCHEMA_HEAD, SCHEMA_HEAD, known=True)
        from steward.store import _migrations  # alembic: only off the head (SCHEMA_HEAD)

        current, head, known = _migrations.revision_status(conn, VERSION_TABLE)
        if head is None:  # pragma: no cover - the package always ships migrations
            raise SchemaVersionError("steward ships no migrations; the installation is broken")
        return SchemaStatus(current, head, known)

    def ensure_schema(self) -> None:
        """Check the schema once per process; upgrade it when auto-migration is on.

        Raises:
            SchemaVersionError: the database is newer than the code, or older and
                auto-migration is off.
        """
        if self._checked:
            return
        status = self.schema_status()
        if not status.known:
            raise SchemaVersionError(
                f"the database {self.display_url} is at schema revision {status.current!r}, which "
                f"this steward does not know (its newest is {status.head!r}): the database was "
                "upgraded by a newer steward; upgrade steward to use it"
            )
        if not status.up_to_date:
            if not self._auto_migrate:
                raise SchemaVersionError(
                    f"the database {self.display_url} is at schema revision {status.current!r} but "
                    f"this steward needs {status.head!r}; run `steward db upgrade`"
                )
            self.upgrade()
        self._checked = True

    def upgrade(self, revision: str = "head") -> SchemaStatus:
        """Migrate the schema to ``revision`` in one transaction; safe to run concurrently.

        Returns:
            The schema status after the upgrade.

        Raises:
            SchemaVersionError: the database is newer than the code.
        """
        with self._transaction(write=True) as conn:
            if self.dialect == "postgresql":
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                )
            status = self._status(conn)
            if not status.known:
                raise SchemaVersionError(
                    f"the database {self.display_url} is at schema revision {status.current!r}, "
                    f"newer than this steward ({status.head!r}); upgrade steward instead"
                )
            if status.current != status.head or revision != "head":
                from steward.store import _migrations  # alembic: see SCHEMA_HEAD

                _migrations.upgrade(conn, revision)
            status = self._status(conn)
        self._checked = status.up_to_date
        return status

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def open_database(settings: StoreSettings | None = None) -> Database:
    """Open the metadata database named by the settings (embedded SQLite by default)."""
    settings = settings or StoreSettings()
    return Database(
        settings.resolved_database_url(),
        auto_migrate=settings.auto_migrate,
        sqlite_synchronous=settings.sqlite_synchronous,
    )
