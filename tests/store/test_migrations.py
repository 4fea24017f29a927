"""The Alembic history builds exactly the tables the contexts declare."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import steward.features  # registers the feature tables on the shared metadata
import steward.governance  # registers the governance tables
import steward.registry  # registers the registry tables
import steward.serving._tables  # registers the serving tables on the shared metadata
import steward.tracking  # noqa: F401 - registers the tracking tables on the shared metadata
from steward.store import Database, metadata


def test_migrations_match_declared_tables(database: Database) -> None:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    # The version table is Alembic's own, not declared on the metadata.
    diff = [
        d for d in diff if not (d[0] == "remove_table" and d[1].name == "steward_schema_version")
    ]
    assert diff == []
