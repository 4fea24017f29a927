"""Shared fixtures: metadata databases on SQLite and on a real PostgreSQL server.

Real-service tests skip when the service is down, unless ``STEWARD_REQUIRE_SERVICES=1``
(set by CI), which turns every such skip into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from steward.store import Database

POSTGRES_URL = os.environ.get(
    "STEWARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_SERVICES = os.environ.get("STEWARD_REQUIRE_SERVICES", "") in ("1", "true", "yes")


def service_unavailable(reason: str) -> None:
    """Skip the test, or fail it when CI demands every real-service test to run."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (STEWARD_REQUIRE_SERVICES is set, so this is a failure)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"steward_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        service_unavailable(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc.orig}")
    url = sa.engine.make_url(POSTGRES_URL).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def _truncate_all(db: Database) -> None:
    inspector = sa.inspect(db.engine)
    tables = [t for t in inspector.get_table_names() if t != "steward_schema_version"]
    if tables:
        with db.engine.begin() as conn:
            quoted = ", ".join(f'"{t}"' for t in tables)
            conn.execute(sa.text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty metadata database URL: SQLite in a temp folder, or PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'steward.db'}"
        return
    url = request.getfixturevalue("postgres_url")
    db = Database(url, auto_migrate=True)
    db.upgrade()
    _truncate_all(db)
    db.dispose()
    yield url


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """An open, migrated, empty metadata database (SQLite and PostgreSQL)."""
    db = Database(database_url, auto_migrate=True)
    db.ensure_schema()
    yield db
    db.dispose()
