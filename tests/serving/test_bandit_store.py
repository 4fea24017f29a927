"""Bandit state stores: in memory and on the metadata database (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from steward.core import InvalidInputError
from steward.serving._bandit import ThompsonSampling
from steward.serving._bandit_store import (
    ArmStats,
    BanditStateStore,
    InMemoryBanditStateStore,
    SqlBanditStateStore,
)
from steward.serving._tables import bandit_arms
from steward.store import Database


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BanditStateStore]:
    if request.param == "memory":
        yield InMemoryBanditStateStore()
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'steward.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    database = Database(url, auto_migrate=True)
    database.ensure_schema()
    with database.write() as conn:
        conn.execute(sa.delete(bandit_arms))
    yield SqlBanditStateStore(database)
    database.dispose()


def test_store_adds_deltas_and_returns_totals(store: BanditStateStore) -> None:
    assert store.totals("b") == {}
    totals = store.add("b", {"x": ArmStats(pulls=2, trials=1, reward_sum=1.0)})
    assert totals == {"x": ArmStats(pulls=2, trials=1, reward_sum=1.0)}
    totals = store.add(
        "b", {"x": ArmStats(pulls=1, trials=2, reward_sum=0.5), "y": ArmStats(pulls=3)}
    )
    assert totals == {
        "x": ArmStats(pulls=3, trials=3, reward_sum=1.5),
        "y": ArmStats(pulls=3, trials=0, reward_sum=0.0),
    }
    assert store.totals("b") == totals
    assert store.totals("other") == {}
    assert store.add("b", {}) == totals


@pytest.mark.parametrize(
    ("bandit", "deltas", "message"),
    [
        ("", {"x": ArmStats(1)}, "bandit id"),
        ("b" * 201, {"x": ArmStats(1)}, "bandit id"),
        ("b", {"": ArmStats(1)}, "arm name"),
        ("b", {"x" * 65: ArmStats(1)}, "arm name"),
        ("b", {"x": ArmStats(reward_sum=float("nan"))}, "not finite"),
    ],
)
def test_store_rejects_bad_input_and_keeps_totals(
    store: BanditStateStore, bandit: str, deltas: dict[str, ArmStats], message: str
) -> None:
    store.add("b", {"x": ArmStats(pulls=1)})
    with pytest.raises(InvalidInputError, match=message):
        store.add(bandit, deltas)
    assert store.totals("b") == {"x": ArmStats(pulls=1)}


def test_sql_store_two_stores_on_one_database(database_url: str) -> None:
    """Two workers (two engines on one database) each flush; both read the global totals."""
    db1 = Database(database_url, auto_migrate=True)
    db2 = Database(database_url, auto_migrate=True)
    try:
        w1 = ThompsonSampling(
            ("a", "b"), bandit_id="fraud:r2", store=SqlBanditStateStore(db1), sync_interval=0
        )
        w2 = ThompsonSampling(
            ("a", "b"), bandit_id="fraud:r2", store=SqlBanditStateStore(db2), sync_interval=0
        )
        for i in range(20):
            w1.reward(f"w1-{i}", 1, arm=w1.choose(f"w1-{i}"))
            w2.reward(f"w2-{i}", 0, arm=w2.choose(f"w2-{i}"))
        w1.sync()
        w2.sync()
        w1.sync()
        for worker in (w1, w2):
            stats = worker.stats()
            assert sum(s.pulls for s in stats.values()) == 40
            assert sum(s.trials for s in stats.values()) == 40
            assert sum(s.reward_sum for s in stats.values()) == 20.0
    finally:
        db1.dispose()
        db2.dispose()


def test_sql_store_concurrent_increments_are_not_lost(database_url: str) -> None:
    databases = [Database(database_url, auto_migrate=True) for _ in range(4)]
    stores = [SqlBanditStateStore(db) for db in databases]
    stores[0].totals("race")  # migrate once before the threads start
    errors: list[BaseException] = []

    def work(store: SqlBanditStateStore) -> None:
        try:
            for _ in range(25):
                store.add("race", {"a": ArmStats(1, 1, 0.5), "b": ArmStats(pulls=2)})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert stores[1].totals("race") == {
            "a": ArmStats(pulls=100, trials=100, reward_sum=50.0),
            "b": ArmStats(pulls=200, trials=0, reward_sum=0.0),
        }
    finally:
        for db in databases:
            db.dispose()


def test_sql_store_policy_learns_from_the_other_worker(database: Database) -> None:
    """Rewards seen by one worker steer the choices of another after a sync."""
    teacher = ThompsonSampling(
        ("a", "b"), bandit_id="learn", store=SqlBanditStateStore(database), sync_interval=0
    )
    for i in range(200):
        teacher.reward(str(i), 1, arm="b")
        teacher.reward(f"n{i}", 0, arm="a")
    teacher.sync()
    student = ThompsonSampling(
        ("a", "b"),
        bandit_id="learn",
        store=SqlBanditStateStore(database),
        rng=random.Random(0),
        sync_interval=0,
    )
    choices = [student.choose() for _ in range(200)]
    assert choices.count("b") > 190
