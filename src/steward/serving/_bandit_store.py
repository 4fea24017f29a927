"""Where bandit arm totals live, so that every gateway worker learns from every reward.

A :class:`BanditStateStore` holds, per bandit and arm, three running totals:
how often the arm was chosen (``pulls``), how many rewards arrived for it
(``trials``) and their sum (``reward_sum``; for binary rewards, the successes).
Workers never overwrite totals: they *add* what they saw since their last
flush, so concurrent workers cannot lose each other's updates.

- :class:`InMemoryBanditStateStore`: one process (embedded mode, tests).
- :class:`SqlBanditStateStore`: the metadata database, shared by every worker and
  host; one write transaction per flush with atomic increments
  (``UPDATE ... SET trials = trials + :d``), then the global totals are read back.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from steward.core import Clock, InvalidInputError, SystemClock
from steward.serving._tables import bandit_arms
from steward.store import Database

__all__ = [
    "ArmStats",
    "BanditStateStore",
    "InMemoryBanditStateStore",
    "SqlBanditStateStore",
]


@dataclass(frozen=True)
class ArmStats:
    """Running totals of one arm (or the change to add to them).

    Attributes:
        pulls: times the arm was chosen.
        trials: rewards received for it.
        reward_sum: the sum of those rewards (successes, for binary rewards).
    """

    pulls: int = 0
    trials: int = 0
    reward_sum: float = 0.0

    def __add__(self, other: ArmStats) -> ArmStats:
        return ArmStats(
            self.pulls + other.pulls,
            self.trials + other.trials,
            self.reward_sum + other.reward_sum,
        )

    @property
    def empty(self) -> bool:
        """True when nothing was recorded."""
        return self.pulls == 0 and self.trials == 0 and self.reward_sum == 0.0

    @property
    def mean_reward(self) -> float | None:
        """The mean reward, or None before the first reward."""
        return self.reward_sum / self.trials if self.trials else None

    def to_dict(self) -> dict[str, float | int | None]:
        """Return a JSON-ready dict."""
        return {
            "pulls": self.pulls,
            "trials": self.trials,
            "reward_sum": self.reward_sum,
            "mean_reward": self.mean_reward,
        }


class BanditStateStore(Protocol):
    """Shared totals of bandit arms: add deltas atomically, read global totals."""

    def add(self, bandit: str, deltas: Mapping[str, ArmStats]) -> dict[str, ArmStats]:
        """Add ``deltas`` (arm -> change) to the totals and return every arm's new totals.

        Arms never seen before start at zero.  Either every delta is added or
        none is (on failure the caller keeps them for the next flush).
        """
        ...

    def totals(self, bandit: str) -> dict[str, ArmStats]:
        """Return the totals of every arm of ``bandit`` (empty when it has none)."""
        ...


def _check_bandit(bandit: str) -> None:
    if not isinstance(bandit, str) or not bandit or len(bandit) > 200:
        raise InvalidInputError(
            f"bandit id must be 1-200 characters (e.g. 'fraud:rev3'), got {bandit!r}"
        )


def _check_deltas(deltas: Mapping[str, ArmStats]) -> None:
    for arm, delta in deltas.items():
        if not isinstance(arm, str) or not arm or len(arm) > 64:
            raise InvalidInputError(f"arm name must be 1-64 characters, got {arm!r}")
        if not math.isfinite(delta.reward_sum):
            raise InvalidInputError(f"arm {arm!r} reward sum {delta.reward_sum!r} is not finite")


class InMemoryBanditStateStore:
    """Bandit totals in this process's memory: for one worker, embedded mode and tests."""

    def __init__(self) -> None:
        self._totals: dict[str, dict[str, ArmStats]] = {}
        self._lock = threading.Lock()

    def add(self, bandit: str, deltas: Mapping[str, ArmStats]) -> dict[str, ArmStats]:
        """Add ``deltas`` to the totals and return every arm's new totals."""
        _check_bandit(bandit)
        _check_deltas(deltas)
        with self._lock:
            arms = self._totals.setdefault(bandit, {})
            for arm, delta in deltas.items():
                arms[arm] = arms.get(arm, ArmStats()) + delta
            return dict(arms)

    def totals(self, bandit: str) -> dict[str, ArmStats]:
        """Return the totals of every arm of ``bandit``."""
        with self._lock:
            return dict(self._totals.get(bandit, {}))


class SqlBanditStateStore:
    """Bandit totals in the metadata database, shared by every worker that opens it.

    Each :meth:`add` is one write transaction: missing arm rows are inserted
    (``ON CONFLICT DO NOTHING``, so two workers racing to create one arm both
    succeed), every delta is added with an atomic ``UPDATE ... SET x = x + :d``,
    and the bandit's rows are read back in the same transaction.

    Arm totals are statistical state, not a user's change, so flushes are not
    written to the audit chain; the decisions they lead to are the gateway's to audit.

    Example:
        >>> store = SqlBanditStateStore(Database("sqlite:///:memory:"))
        >>> store.add("fraud:rev3", {"a": ArmStats(pulls=1, trials=1, reward_sum=1.0)})
        {'a': ArmStats(pulls=1, trials=1, reward_sum=1.0)}
    """

    def __init__(self, database: Database, *, clock: Clock | None = None) -> None:
        self.database = database
        self.clock = clock or SystemClock()

    def add(self, bandit: str, deltas: Mapping[str, ArmStats]) -> dict[str, ArmStats]:
        """Add ``deltas`` atomically and return every arm's new global totals.

        Raises:
            InvalidInputError: a malformed bandit id, arm name or reward sum.
            BackendUnavailableError: the database cannot be reached.
        """
        _check_bandit(bandit)
        _check_deltas(deltas)
        changed = {arm: d for arm, d in deltas.items() if not d.empty}
        if not changed:
            return self.totals(bandit)
        now = self.clock.now()
        with self.database.write() as conn:
            _insert_missing(conn, bandit, sorted(changed), now)
            conn.execute(
                bandit_arms.update()
                .where(bandit_arms.c.bandit == bandit, bandit_arms.c.arm == sa.bindparam("b_arm"))
                .values(
                    pulls=bandit_arms.c.pulls + sa.bindparam("d_pulls", type_=sa.BigInteger()),
                    trials=bandit_arms.c.trials + sa.bindparam("d_trials", type_=sa.BigInteger()),
                    reward_sum=bandit_arms.c.reward_sum + sa.bindparam("d_sum", type_=sa.Float()),
                    updated_at=now,
                ),
                [
                    {"b_arm": arm, "d_pulls": d.pulls, "d_trials": d.trials, "d_sum": d.reward_sum}
                    # A fixed order takes row locks in the same order in every
                    # worker, so two flushes cannot deadlock on PostgreSQL.
                    for arm, d in sorted(changed.items())
                ],
            )
            return _read(conn, bandit)

    def totals(self, bandit: str) -> dict[str, ArmStats]:
        """Return the global totals of every arm of ``bandit``.

        Raises:
            BackendUnavailableError: the database cannot be reached.
        """
        _check_bandit(bandit)
        with self.database.read() as conn:
            return _read(conn, bandit)


def _insert_missing(conn: Connection, bandit: str, arms: Iterable[str], now: object) -> None:
    rows = [
        {
            "bandit": bandit,
            "arm": arm,
            "pulls": 0,
            "trials": 0,
            "reward_sum": 0.0,
            "updated_at": now,
        }
        for arm in arms
    ]
    insert = (
        postgresql.insert(bandit_arms)
        if conn.dialect.name == "postgresql"
        else sqlite.insert(bandit_arms)
    )
    conn.execute(insert.on_conflict_do_nothing(index_elements=["bandit", "arm"]), rows)


def _read(conn: Connection, bandit: str) -> dict[str, ArmStats]:
    rows = conn.execute(
        sa.select(
            bandit_arms.c.arm, bandit_arms.c.pulls, bandit_arms.c.trials, bandit_arms.c.reward_sum
        ).where(bandit_arms.c.bandit == bandit)
    )
    return {arm: ArmStats(int(p), int(t), float(s)) for arm, p, t, s in rows}
