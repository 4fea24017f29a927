"""Alembic, for the schema checks and upgrades that need the migration scripts.

Imported only when a database is not at :data:`steward.store._database.SCHEMA_HEAD`
(a new database, an older one to upgrade, one from a newer steward) or when a
command asks for an upgrade: alembic brings mako and every SQL dialect with it,
which a process that only reads an up-to-date database does not need.
"""

from __future__ import annotations

import functools

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import Connection

__all__ = ["head_revision", "revision_status", "upgrade"]


@functools.cache
def _script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(_alembic_config())


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", "steward.store:migrations")
    return config


def head_revision() -> str | None:
    """Return the revision the code's migrations end at (None: no migrations)."""
    return _script_directory().get_current_head()


def revision_status(conn: Connection, version_table: str) -> tuple[str | None, str | None, bool]:
    """Return (the database's revision, the code's head, whether the code knows it)."""
    context = MigrationContext.configure(conn, opts={"version_table": version_table})
    current = context.get_current_revision()
    script = _script_directory()
    head = script.get_current_head()
    known = True
    if current is not None:
        try:
            known = script.get_revision(current) is not None
        except CommandError:
            known = False
    return current, head, known


def upgrade(conn: Connection, revision: str) -> None:
    """Run the migrations up to ``revision`` on ``conn``, inside its transaction."""
    config = _alembic_config()
    config.attributes["connection"] = conn
    command.upgrade(config, revision)
