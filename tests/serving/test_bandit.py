"""Bandit policies: convergence, the exploration floor, rewards by request id, bad input."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from steward.core import BackendUnavailableError, InvalidInputError, NotFoundError
from steward.serving._bandit import BanditPolicy, EpsilonGreedy, ThompsonSampling
from steward.serving._bandit_store import ArmStats, InMemoryBanditStateStore
from steward.serving._routing import Router
from steward.serving._routing_spec import RoutingSpec, Variant

ARMS = ("a", "b", "c")
RATES = {"a": 0.04, "b": 0.06, "c": 0.10}


class _Ticks:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _simulate(policy: BanditPolicy, rounds: int, seed: int = 11) -> list[str]:
    world = np.random.default_rng(seed)
    chosen = []
    for i in range(rounds):
        arm = policy.choose(f"r{i}")
        policy.reward(f"r{i}", int(world.random() < RATES[arm]))
        chosen.append(arm)
    return chosen


def test_thompson_converges_to_best_arm() -> None:
    policy = ThompsonSampling(ARMS, bandit_id="t", rng=random.Random(1), sync_interval=0)
    chosen = _simulate(policy, 6_000)
    late = Counter(chosen[-2_000:])
    assert late["c"] / 2_000 > 0.8
    stats = policy.stats()
    assert sum(s.pulls for s in stats.values()) == 6_000
    assert sum(s.trials for s in stats.values()) == 6_000


def test_epsilon_greedy_converges_to_best_arm() -> None:
    policy = EpsilonGreedy(ARMS, bandit_id="e", epsilon=0.1, rng=random.Random(2))
    chosen = _simulate(policy, 8_000)
    late = Counter(chosen[-3_000:])
    assert late["c"] / 3_000 > 0.8
    assert policy.stats()["c"].mean_reward == pytest.approx(0.10, abs=0.02)


def test_epsilon_greedy_real_valued_rewards() -> None:
    policy = EpsilonGreedy(("x", "y"), bandit_id="e", epsilon=0.05, rng=random.Random(3))
    world = np.random.default_rng(4)
    for i in range(3_000):
        arm = policy.choose(str(i))
        policy.reward(str(i), float(world.normal(1.0 if arm == "x" else 2.5, 1.0)))
    assert Counter(policy.choose() for _ in range(1_000))["y"] > 900


def test_epsilon_greedy_tries_every_arm_before_exploiting() -> None:
    policy = EpsilonGreedy(ARMS, bandit_id="e", epsilon=0.0, rng=random.Random(5))
    first = []
    for i in range(3):
        arm = policy.choose(str(i))
        policy.reward(str(i), 1.0)
        first.append(arm)
    assert sorted(first) == sorted(ARMS)


@pytest.mark.parametrize("policy_class", [ThompsonSampling, EpsilonGreedy])
def test_bandit_exploration_floor_holds_for_a_losing_arm(policy_class: type[BanditPolicy]) -> None:
    policy = policy_class(ARMS, bandit_id="f", floor=0.05, rng=random.Random(6))
    # A clear winner: c always pays, a and b never do.
    for i in range(300):
        arm = policy.choose(str(i))
        policy.reward(str(i), 1 if arm == "c" else 0)
    counts = Counter(policy.choose() for _ in range(20_000))
    for arm in ("a", "b"):
        assert counts[arm] / 20_000 >= 0.045  # floor 0.05, 20k draws: ~6 sigma margin below
    assert counts["c"] / 20_000 > 0.8


def test_bandit_without_floor_starves_a_losing_arm() -> None:
    policy = ThompsonSampling(ARMS, bandit_id="f", rng=random.Random(7))
    for i in range(600):
        arm = policy.choose(str(i))
        policy.reward(str(i), 1 if arm == "c" else 0)
    counts = Counter(policy.choose() for _ in range(5_000))
    assert counts["a"] + counts["b"] < 50


def test_bandit_reward_by_request_id_credits_the_serving_arm() -> None:
    policy = ThompsonSampling(("a", "b"), bandit_id="r", rng=random.Random(8))
    arm = policy.choose("req-1")
    assert policy.reward("req-1", True) == arm
    assert policy.stats()[arm] == ArmStats(pulls=1, trials=1, reward_sum=1.0)
    with pytest.raises(NotFoundError, match="'req-1' was not served"):
        policy.reward("req-1", 1)  # already rewarded
    with pytest.raises(NotFoundError, match="pass the arm that served it"):
        policy.reward("never", 0)


def test_bandit_reward_with_explicit_arm_from_another_worker() -> None:
    policy = ThompsonSampling(("a", "b"), bandit_id="r")
    assert policy.reward("served-elsewhere", 0, arm="b") == "b"
    assert policy.stats()["b"] == ArmStats(pulls=0, trials=1, reward_sum=0.0)
    with pytest.raises(InvalidInputError, match="no arm 'z'; arms: a, b"):
        policy.reward("x", 1, arm="z")


def test_bandit_forgets_oldest_pending_requests() -> None:
    policy = EpsilonGreedy(("a", "b"), bandit_id="p", max_pending=2)
    for rid in ("r1", "r2", "r3"):
        policy.choose(rid)
    with pytest.raises(NotFoundError):
        policy.reward("r1", 1.0)
    policy.reward("r3", 1.0)


@pytest.mark.parametrize("value", [0.5, 2, -1, float("nan"), "1"])
def test_thompson_rejects_non_binary_rewards(value: object) -> None:
    policy = ThompsonSampling(("a",), bandit_id="x")
    policy.choose("r")
    with pytest.raises(InvalidInputError, match="reward"):
        policy.reward("r", value)  # type: ignore[arg-type]
    assert policy.stats()["a"].trials == 0
    policy.reward("r", 1.0)  # the request is still remembered after a rejected reward


@pytest.mark.parametrize("value", [float("inf"), float("nan"), None, "0.3"])
def test_epsilon_greedy_rejects_non_finite_rewards(value: object) -> None:
    policy = EpsilonGreedy(("a",), bandit_id="x")
    with pytest.raises(InvalidInputError, match="finite number"):
        policy.reward("r", value, arm="a")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("arms", "kwargs", "message"),
    [
        ((), {}, "at least one arm"),
        (("a", "a"), {}, "must be unique"),
        (("a", "b", "c"), {"floor": 0.4}, r"must be in \[0, 0.333333\]"),
        (("a",), {"floor": -0.1}, "floor"),
        (("a",), {"sync_interval": -1.0}, "sync_interval"),
        (("a",), {"max_pending": 0}, "max_pending"),
    ],
)
def test_bandit_rejects_bad_settings(
    arms: tuple[str, ...], kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        ThompsonSampling(arms, bandit_id="x", **kwargs)  # type: ignore[arg-type]


def test_bandit_rejects_bad_priors_and_epsilon() -> None:
    with pytest.raises(InvalidInputError, match="Beta prior"):
        ThompsonSampling(("a",), bandit_id="x", prior_alpha=0)
    with pytest.raises(InvalidInputError, match="epsilon"):
        EpsilonGreedy(("a",), bandit_id="x", epsilon=1.5)


def test_bandit_syncs_at_most_every_interval() -> None:
    store = InMemoryBanditStateStore()
    ticks = _Ticks()
    policy = EpsilonGreedy(
        ("a", "b"), bandit_id="s", store=store, sync_interval=5.0, monotonic=ticks
    )
    policy.choose("r1")  # first call syncs (reads totals), before counting
    policy.choose("r2")
    assert store.totals("s") == {}
    ticks.now = 4.9
    policy.reward("r1", 1.0)
    assert store.totals("s") == {}
    ticks.now = 5.0
    policy.choose("r3")
    totals = store.totals("s")
    assert sum(s.pulls for s in totals.values()) == 2
    assert sum(s.trials for s in totals.values()) == 1
    policy.sync()
    assert sum(s.pulls for s in store.totals("s").values()) == 3


class _FlakyStore(InMemoryBanditStateStore):
    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def add(self, bandit: str, deltas: dict[str, ArmStats]) -> dict[str, ArmStats]:  # type: ignore[override]
        if self.down:
            raise BackendUnavailableError("database is down")
        return super().add(bandit, deltas)


def test_bandit_keeps_routing_and_counts_when_store_is_down() -> None:
    store = _FlakyStore()
    policy = ThompsonSampling(("a", "b"), bandit_id="d", store=store, sync_interval=0)
    store.down = True
    for i in range(10):
        policy.reward(str(i), 1, arm=policy.choose(str(i)))
    assert isinstance(policy.last_sync_error, BackendUnavailableError)
    assert sum(s.trials for s in policy.stats().values()) == 10
    with pytest.raises(BackendUnavailableError):
        policy.sync()
    store.down = False
    policy.choose()
    assert policy.last_sync_error is None
    totals = store.totals("d")
    assert sum(s.trials for s in totals.values()) == 10
    assert sum(s.pulls for s in totals.values()) == 10  # the 11th pull waits for the next sync


def test_two_workers_share_totals_through_one_store() -> None:
    store = InMemoryBanditStateStore()
    w1 = ThompsonSampling(("a", "b"), bandit_id="fraud:r1", store=store, sync_interval=0)
    w2 = ThompsonSampling(("a", "b"), bandit_id="fraud:r1", store=store, sync_interval=0)
    w1.reward("x", 1, arm="a")
    w2.reward("y", 0, arm="a")
    w1.sync()
    assert w1.stats()["a"] == ArmStats(trials=2, reward_sum=1.0)


def test_thompson_describe_has_posterior_means() -> None:
    policy = ThompsonSampling(("a", "b"), bandit_id="d", floor=0.1)
    policy.reward("1", 1, arm="a")
    summary = policy.describe()
    assert summary["policy"] == "ThompsonSampling" and summary["floor"] == 0.1
    assert summary["arms"]["a"]["posterior_mean"] == pytest.approx(2 / 3)
    assert summary["arms"]["b"]["posterior_mean"] == pytest.approx(1 / 2)


def test_router_with_thompson_bandit_moves_traffic_to_the_better_variant() -> None:
    spec = RoutingSpec(
        variants=(Variant("a", "fraud/7"), Variant("b", "fraud/8"), Variant("s", "x/1", "shadow")),
        strategy="bandit",
    )
    arms = [v.name for v in spec.primaries]
    policy = ThompsonSampling(arms, bandit_id="fraud:r4", floor=0.02, rng=random.Random(9))
    router = Router(spec, bandit=policy)
    world = random.Random(10)
    served = []
    for i in range(4_000):
        route = router.route(request_id=f"req-{i}")
        assert [v.name for v in route.shadows] == ["s"]
        served.append(route.variant.name)
        # Feedback arrives later, by request id, as /v1/feedback would deliver it.
        if i >= 10:
            rid = f"req-{i - 10}"
            rate = 0.15 if served[i - 10] == "b" else 0.05
            assert policy.reward(rid, int(world.random() < rate)) == served[i - 10]
    assert Counter(served[-1_000:])["b"] > 800
