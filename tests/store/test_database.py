"""Contract tests of the metadata database, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from steward.core import (
    BackendUnavailableError,
    ConfigurationError,
    SchemaVersionError,
    SystemClock,
)
from steward.store import Database, StoreSettings, open_database, unit_of_work
from steward.store._database import SCHEMA_HEAD, VERSION_TABLE
from steward.store._migrations import head_revision


def test_database_upgrades_itself_on_first_use(database: Database) -> None:
    status = database.schema_status()
    assert status.up_to_date
    assert status.current == status.head


def test_database_write_commits_and_read_sees_it(database: Database) -> None:
    with unit_of_work(database, actor="alice", clock=SystemClock()) as uow:
        uow.audit("thing.create", "thing", "t1", {"size": 3})
    with database.read() as conn:
        count = conn.execute(sa.text("select count(*) from audit_events")).scalar_one()
    assert count == 1


def test_database_rolls_back_change_and_audit_on_error(database: Database) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with unit_of_work(database, actor="alice", clock=SystemClock()) as uow:
            uow.audit("thing.create", "thing", "t1")
            raise RuntimeError("boom")
    with database.read() as conn:
        assert conn.execute(sa.text("select count(*) from audit_events")).scalar_one() == 0


def test_database_refuses_schema_newer_than_code(database_url: str) -> None:
    db = Database(database_url)
    db.upgrade()
    with db.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = 'ffff_from_the_future'"))
    fresh = Database(database_url, auto_migrate=True)
    with pytest.raises(SchemaVersionError, match=r"ffff_from_the_future.*upgrade steward"):
        fresh.ensure_schema()
    with pytest.raises(SchemaVersionError, match="newer than this steward"):
        fresh.upgrade()
    head = db.schema_status().head
    with db.engine.begin() as conn:  # leave the shared database usable
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = :head"), {"head": head})


def test_database_without_auto_migrate_names_the_command(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}", auto_migrate=False)
    with pytest.raises(SchemaVersionError, match="steward db upgrade"):
        with db.read():
            pass
    assert db.upgrade().up_to_date
    with db.read():
        pass


def test_database_unknown_scheme_names_setting() -> None:
    with pytest.raises(ConfigurationError, match=r"STEWARD_DATABASE_URL.*'mysql'.*sqlite"):
        Database("mysql://root@localhost/db")


def test_database_malformed_url_names_setting() -> None:
    with pytest.raises(ConfigurationError, match="STEWARD_DATABASE_URL"):
        Database("not a url at all")


def test_database_unreachable_postgres_fails_fast() -> None:
    db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(BackendUnavailableError, match="STEWARD_DATABASE_URL"):
        db.schema_status()


def test_database_plain_postgres_url_uses_psycopg3() -> None:
    assert Database("postgresql://u@h/db").url.drivername == "postgresql+psycopg"


def test_database_unwritable_home_is_a_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    settings = StoreSettings(home=blocker / "home")
    with pytest.raises(ConfigurationError, match="STEWARD_HOME"):
        open_database(settings)


def test_database_sqlite_is_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def _migrate(url: str) -> str | None:
    return Database(url, auto_migrate=True).upgrade().current


def test_database_concurrent_first_use_migrates_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        revisions = pool.map(_migrate, [url] * 3)
    assert len(set(revisions)) == 1
    assert revisions[0] == Database(url).schema_status().head


def test_database_sqlite_synchronous_setting(tmp_path: Path) -> None:
    db = open_database(StoreSettings(home=tmp_path, sqlite_synchronous="NORMAL"))
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    with pytest.raises(ConfigurationError, match="STEWARD_SQLITE_SYNCHRONOUS"):
        Database(f"sqlite:///{tmp_path / 'y.db'}", sqlite_synchronous="OFF")


def test_database_full_synchronous_by_default(tmp_path: Path) -> None:
    with open_database(StoreSettings(home=tmp_path)).read() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_database_schema_head_is_the_last_migration() -> None:
    assert SCHEMA_HEAD == head_revision(), "set SCHEMA_HEAD to the newest migration's revision"


_READ_IN_FRESH_PROCESS = """
import json, sys
from steward.store import Database
with Database(sys.argv[1]).read() as conn:
    pass
print(json.dumps([name for name in ("alembic", "mako") if name in sys.modules]))
"""


def test_database_at_head_is_read_without_loading_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    fresh = [sys.executable, "-c", _READ_IN_FRESH_PROCESS, url]
    first = subprocess.run(fresh, capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(first.stdout) == ["alembic", "mako"]  # a new database is migrated
    again = subprocess.run(fresh, capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(again.stdout) == []
    assert Database(url).schema_status().up_to_date


def test_database_behind_head_is_still_upgraded(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}", auto_migrate=True)
    db.upgrade("0010_canary_windows")
    assert db.schema_status().current == "0010_canary_windows"
    assert not db.schema_status().up_to_date
    with db.read():
        pass
    assert db.schema_status().current == SCHEMA_HEAD
