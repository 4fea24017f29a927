"""Alembic environment: runs on the connection steward hands over, inside its transaction."""

from __future__ import annotations

from alembic import context

from steward.store._tables import metadata

VERSION_TABLE = "steward_schema_version"

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "steward migrations run through `steward db upgrade` (or steward.store.Database.upgrade), "
        "not the alembic command line"
    )
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
