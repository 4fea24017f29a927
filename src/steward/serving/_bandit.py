"""Multi-armed bandit routing: Thompson sampling for binary rewards, and epsilon-greedy.

The arms are a deployment's primary variants.  :meth:`BanditPolicy.choose`
picks the arm for a request and remembers ``request id -> arm``; when feedback
arrives later (``/v1/feedback``), :meth:`BanditPolicy.reward` credits that arm.
A request served by another worker is credited by naming its arm (the gateway
reads it from the prediction log).

Every arm keeps at least ``floor`` of the traffic: with probability
``floor * len(arms)`` the arm is drawn uniformly, otherwise the policy decides.
So a losing arm is still measured and can win back traffic if it improves.

State is shared across workers through a
:class:`~steward.serving._bandit_store.BanditStateStore`: each policy counts
locally and, at most every ``sync_interval`` seconds, adds its counts to the
global totals and reads the totals back.  Between syncs a worker decides on the
last global totals plus its own unflushed counts.  A store that cannot be
reached does not stop routing: counts are kept for the next sync and the error
is kept in :attr:`BanditPolicy.last_sync_error`.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from steward.core import BackendUnavailableError, InvalidInputError, NotFoundError
from steward.serving._bandit_store import ArmStats, BanditStateStore, InMemoryBanditStateStore

__all__ = ["BanditPolicy", "EpsilonGreedy", "ThompsonSampling"]


class _Counts:
    """Per-arm pulls, trials and reward sums, as lists indexed by arm position."""

    __slots__ = ("pulls", "sums", "trials")

    def __init__(self, size: int) -> None:
        self.pulls = [0] * size
        self.trials = [0] * size
        self.sums = [0.0] * size

    @classmethod
    def of(cls, stats: Iterable[ArmStats]) -> _Counts:
        items = list(stats)
        counts = cls(len(items))
        for i, item in enumerate(items):
            counts.pulls[i], counts.trials[i], counts.sums[i] = (
                item.pulls,
                item.trials,
                item.reward_sum,
            )
        return counts

    def plus(self, other: _Counts) -> _Counts:
        total = _Counts(0)
        total.pulls = [a + b for a, b in zip(self.pulls, other.pulls, strict=True)]
        total.trials = [a + b for a, b in zip(self.trials, other.trials, strict=True)]
        total.sums = [a + b for a, b in zip(self.sums, other.sums, strict=True)]
        return total

    def as_stats(self, arms: Sequence[str]) -> dict[str, ArmStats]:
        return {
            arm: ArmStats(self.pulls[i], self.trials[i], self.sums[i]) for i, arm in enumerate(arms)
        }


class BanditPolicy:
    """Shared machinery of the bandit policies; subclasses decide in :meth:`_pick`.

    Args:
        arms: the arm names (the deployment's primary variants), at least one, unique.
        bandit_id: the key of this bandit's shared state, e.g. ``"fraud:rev3"``;
            every worker of a deployment revision uses the same one.
        store: where totals are shared (default: this process only).
        floor: the least share of traffic each arm gets, in [0, 1 / len(arms)].
        sync_interval: seconds between flushes to the store (0: every call).
        rng: the random generator (inject a seeded one in tests).
        monotonic: a monotonic clock in seconds (inject one in tests).
        max_pending: how many ``request id -> arm`` pairs are remembered for
            feedback; the oldest are forgotten first.
        auto_sync: flush when due on :meth:`choose` and :meth:`reward`; turn off
            to call :meth:`sync` from a background task instead.

    Raises:
        InvalidInputError: no arms, duplicate arms, or settings out of range.
    """

    def __init__(
        self,
        arms: Sequence[str],
        *,
        bandit_id: str,
        store: BanditStateStore | None = None,
        floor: float = 0.0,
        sync_interval: float = 1.0,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        max_pending: int = 100_000,
        auto_sync: bool = True,
    ) -> None:
        arms = tuple(arms)
        if not arms:
            raise InvalidInputError("a bandit needs at least one arm")
        if len(set(arms)) != len(arms):
            raise InvalidInputError(f"bandit arms must be unique, got {list(arms)}")
        if not (0.0 <= floor and floor * len(arms) <= 1.0):
            raise InvalidInputError(
                f"exploration floor {floor!r} is out of range: with {len(arms)} arms it must be "
                f"in [0, {1 / len(arms):g}] (each arm gets at least this share)"
            )
        if not (math.isfinite(sync_interval) and sync_interval >= 0):
            raise InvalidInputError(f"sync_interval must be >= 0 seconds, got {sync_interval!r}")
        if max_pending < 1:
            raise InvalidInputError(f"max_pending must be >= 1, got {max_pending!r}")
        self.arms = arms
        self.bandit_id = bandit_id
        self.store: BanditStateStore = store or InMemoryBanditStateStore()
        self.floor = floor
        self.sync_interval = sync_interval
        self.max_pending = max_pending
        self.auto_sync = auto_sync
        self.last_sync_error: BackendUnavailableError | None = None
        self._rng = rng or random.Random()
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._index = {arm: i for i, arm in enumerate(arms)}
        # Per-arm counters as plain lists (index = arm's position): the hot path
        # adds to them without building objects.  global = last totals read from
        # the store; local = this worker's counts not yet flushed.
        self._global = _Counts(len(arms))
        self._local = _Counts(len(arms))
        self._pending: OrderedDict[str, str] = OrderedDict()
        self._last_sync = -math.inf

    # -- the hot path --------------------------------------------------------

    def choose(self, request_id: str | None = None) -> str:
        """Pick the arm that serves one request; remember it under ``request_id``.

        Returns:
            The arm's name.
        """
        self._maybe_sync()
        with self._lock:
            explore = self.floor * len(self.arms)
            if explore > 0 and self._rng.random() < explore:
                index = self._rng.randrange(len(self.arms))
            else:
                index = self._pick(self._global.plus(self._local))
            self._local.pulls[index] += 1
            arm = self.arms[index]
            if request_id is not None:
                self._pending[request_id] = arm
                self._pending.move_to_end(request_id)
                while len(self._pending) > self.max_pending:
                    self._pending.popitem(last=False)
        return arm

    def reward(self, request_id: str, value: float, *, arm: str | None = None) -> str:
        """Credit the arm that served ``request_id`` with a reward.

        Args:
            request_id: the request the feedback is about.
            value: the reward (0 or 1 for Thompson sampling; any finite number
                for epsilon-greedy).
            arm: the arm that served it, when this worker did not (read from the
                prediction log); else looked up from :meth:`choose`.

        Returns:
            The arm credited.

        Raises:
            InvalidInputError: a reward the policy cannot use, or an unknown arm.
            NotFoundError: no arm given and this worker does not remember the request.
        """
        reward = self._check_reward(value)
        if arm is not None and arm not in self.arms:
            raise InvalidInputError(
                f"bandit {self.bandit_id!r} has no arm {arm!r}; arms: {', '.join(self.arms)}"
            )
        with self._lock:
            remembered = self._pending.pop(request_id, None)
            arm = arm or remembered
            if arm is None:
                raise NotFoundError(
                    f"request {request_id!r} was not served by bandit {self.bandit_id!r} in this "
                    "worker (or was forgotten, or already rewarded); pass the arm that served it"
                )
            index = self._index[arm]
            self._local.trials[index] += 1
            self._local.sums[index] += reward
        self._maybe_sync()
        return arm

    # -- shared state --------------------------------------------------------

    def sync(self) -> None:
        """Flush this worker's counts to the store now and read the global totals back.

        Raises:
            BackendUnavailableError: the store cannot be reached; the counts are
                kept for the next sync.
        """
        with self._lock:
            flushing, self._local = self._local, _Counts(len(self.arms))
            self._last_sync = self._monotonic()
        try:
            deltas = {a: d for a, d in flushing.as_stats(self.arms).items() if not d.empty}
            totals = self.store.add(self.bandit_id, deltas)
        except BaseException:
            with self._lock:
                self._local = self._local.plus(flushing)
            raise
        with self._lock:
            self._global = _Counts.of(totals.get(arm, ArmStats()) for arm in self.arms)
            self.last_sync_error = None

    def _maybe_sync(self) -> None:
        if not self.auto_sync or self._monotonic() - self._last_sync < self.sync_interval:
            return
        try:
            self.sync()
        except BackendUnavailableError as exc:
            self.last_sync_error = exc  # keep routing on the last totals

    def stats(self) -> dict[str, ArmStats]:
        """Return each arm's totals as this worker sees them (global + unflushed)."""
        with self._lock:
            return self._global.plus(self._local).as_stats(self.arms)

    def describe(self) -> dict[str, Any]:
        """Return a JSON-ready summary for status pages: policy, settings and per-arm totals."""
        stats = self.stats()
        return {
            "policy": type(self).__name__,
            "bandit_id": self.bandit_id,
            "floor": self.floor,
            "arms": {arm: stats[arm].to_dict() for arm in self.arms},
            "last_sync_error": None if self.last_sync_error is None else str(self.last_sync_error),
        }

    # -- what subclasses decide ---------------------------------------------

    def _pick(self, counts: _Counts) -> int:
        raise NotImplementedError  # pragma: no cover - every policy overrides it

    def _check_reward(self, value: float) -> float:
        if isinstance(value, bool):
            return float(value)
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidInputError(f"reward must be a finite number, got {value!r}")
        return float(value)


class ThompsonSampling(BanditPolicy):
    """Thompson sampling with Beta posteriors, for binary rewards (converted, clicked, repaid).

    Each arm's success probability has a Beta(``prior_alpha`` + successes,
    ``prior_beta`` + failures) posterior; every request draws once from each
    posterior and takes the arm with the highest draw, so arms are chosen in
    proportion to the probability that they are best.

    Example:
        >>> policy = ThompsonSampling(["a", "b"], bandit_id="demo", rng=random.Random(0))
        >>> arm = policy.choose("req-1")
        >>> policy.reward("req-1", 1) == arm
        True

    Args:
        arms: see :class:`BanditPolicy` (and its other keyword arguments).
        prior_alpha: the prior's successes (> 0).
        prior_beta: the prior's failures (> 0).
        **kwargs: the settings of :class:`BanditPolicy`.
    """

    def __init__(
        self,
        arms: Sequence[str],
        *,
        prior_alpha: float = 1.0,
        prior_beta: float = 1.0,
        **kwargs: Any,
    ) -> None:
        if not (prior_alpha > 0 and prior_beta > 0):
            raise InvalidInputError(
                f"Beta prior parameters must be > 0, got alpha={prior_alpha!r}, beta={prior_beta!r}"
            )
        super().__init__(arms, **kwargs)
        self.prior_alpha = prior_alpha
        self.prior_beta = prior_beta

    def _pick(self, counts: _Counts) -> int:
        beta = self._rng.betavariate
        draws = [
            beta(self.prior_alpha + s, self.prior_beta + max(t - s, 0.0))
            for s, t in zip(counts.sums, counts.trials, strict=True)
        ]
        return draws.index(max(draws))

    def _check_reward(self, value: float) -> float:
        reward = super()._check_reward(value)
        if reward not in (0.0, 1.0):
            raise InvalidInputError(
                f"Thompson sampling takes binary rewards (0 or 1, true or false), got {value!r}; "
                "use epsilon-greedy for real-valued rewards"
            )
        return reward

    def describe(self) -> dict[str, Any]:
        """Return the summary of :meth:`BanditPolicy.describe` plus each arm's posterior mean."""
        summary = super().describe()
        for entry in summary["arms"].values():
            alpha = self.prior_alpha + entry["reward_sum"]
            beta = self.prior_beta + entry["trials"] - entry["reward_sum"]
            entry["posterior_mean"] = alpha / (alpha + beta)
        return summary


class EpsilonGreedy(BanditPolicy):
    """Epsilon-greedy on the mean reward: explore with probability ``epsilon``, else exploit.

    Arms without a reward yet are tried first (uniformly among them), so every
    arm gets a measured mean before the greedy choice starts.

    Args:
        arms: see :class:`BanditPolicy`.
        epsilon: the probability of a uniformly random arm, in [0, 1].
        **kwargs: the settings of :class:`BanditPolicy`.
    """

    def __init__(self, arms: Sequence[str], *, epsilon: float = 0.1, **kwargs: Any) -> None:
        if not (isinstance(epsilon, int | float) and 0.0 <= epsilon <= 1.0):
            raise InvalidInputError(f"epsilon must be in [0, 1], got {epsilon!r}")
        super().__init__(arms, **kwargs)
        self.epsilon = float(epsilon)

    def _pick(self, counts: _Counts) -> int:
        untried = [i for i, trials in enumerate(counts.trials) if trials == 0]
        if untried:
            return untried[self._rng.randrange(len(untried))]
        if self.epsilon > 0 and self._rng.random() < self.epsilon:
            return self._rng.randrange(len(self.arms))
        means = [s / t for s, t in zip(counts.sums, counts.trials, strict=True)]
        return means.index(max(means))
