"""Routing specs and the router: splits, stickiness, overrides, shadows, bad specs."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from steward.core import InvalidInputError, PermissionDeniedError
from steward.serving._routing import Router
from steward.serving._routing_spec import RoutingSpec, StickyKey, Variant, stable_unit


def _spec(*weights: float, strategy: str = "weighted", **kwargs: object) -> RoutingSpec:
    variants = tuple(Variant(f"v{i}", f"model/{i}", weight=w) for i, w in enumerate(weights))
    return RoutingSpec(variants=variants, strategy=strategy, **kwargs)  # type: ignore[arg-type]


def _counts(router: Router, n: int, **kwargs: object) -> Counter[str]:
    return Counter(router.route(**kwargs).variant.name for _ in range(n))  # type: ignore[arg-type]


# -- weighted split -------------------------------------------------------------


@pytest.mark.parametrize("weights", [(90, 10), (1, 1, 1), (50, 30, 20), (0.2, 0.8)])
def test_router_weighted_split_matches_weights(weights: tuple[float, ...]) -> None:
    router = Router(_spec(*weights), rng=random.Random(1234))
    n = 20_000
    counts = _counts(router, n)
    total = sum(weights)
    observed = [counts[f"v{i}"] for i in range(len(weights))]
    expected = [n * w / total for w in weights]
    assert stats.chisquare(observed, expected).pvalue > 0.001


def test_router_sticky_split_matches_weights_over_many_keys() -> None:
    spec = _spec(70, 20, 10, strategy="sticky", sticky_key=StickyKey("header", "X-User"))
    router = Router(spec)
    n = 20_000
    counts = Counter(router.route({"X-User": f"user-{i}"}).variant.name for i in range(n))
    observed = [counts["v0"], counts["v1"], counts["v2"]]
    assert stats.chisquare(observed, [n * 0.7, n * 0.2, n * 0.1]).pvalue > 0.001


def test_router_weight_zero_variant_never_routed_but_reachable_by_override() -> None:
    router = Router(_spec(1, 0, 1), rng=random.Random(3))
    counts = _counts(router, 5_000)
    assert counts["v1"] == 0
    assert counts["v0"] > 0 and counts["v2"] > 0
    route = router.route({"X-Steward-Variant": "v1"}, override_allowed=True)
    assert route.variant.name == "v1" and route.test


def test_router_single_primary_always_chosen_and_shadows_listed() -> None:
    spec = RoutingSpec(
        variants=(
            Variant("live", "fraud@champion"),
            Variant("next", "fraud/9", role="shadow"),
            Variant("other", "fraud/10", role="shadow", weight=0),
        )
    )
    router = Router(spec)
    for _ in range(50):
        route = router.route()
        assert route.variant.name == "live"
        assert route.reason == "only"
        assert [v.name for v in route.shadows] == ["next", "other"]
        assert not route.test


def test_router_same_seed_same_choices() -> None:
    a = Router(_spec(1, 1, 1), rng=random.Random(99))
    b = Router(_spec(1, 1, 1), rng=random.Random(99))
    choices = [a.route().variant.name for _ in range(200)]
    assert choices == [b.route().variant.name for _ in range(200)]
    assert len(set(choices)) == 3


# -- stickiness -----------------------------------------------------------------


def test_router_sticky_header_keeps_a_user_on_one_variant() -> None:
    spec = _spec(1, 1, 1, strategy="sticky", sticky_key=StickyKey("header", "X-Customer"))
    router = Router(spec, rng=random.Random(0))
    for user in range(200):
        names = {router.route({"x-customer": f"c{user}"}).variant.name for _ in range(5)}
        assert len(names) == 1
    route = router.route({"X-CUSTOMER": "c1"})
    assert route.reason == "sticky" and route.key == "c1"


def test_router_sticky_input_field_and_integral_floats_agree() -> None:
    spec = _spec(1, 1, 1, 1, strategy="sticky", sticky_key=StickyKey("input", "customer_id"))
    router = Router(spec)
    for cid in range(100):
        as_int = router.route(record={"customer_id": cid, "amount": 3.0}).variant
        as_float = router.route(record={"customer_id": float(cid)}).variant
        assert as_int == as_float


def test_router_sticky_key_missing_falls_back_to_random_split() -> None:
    spec = _spec(1, 1, strategy="sticky", sticky_key=StickyKey("input", "customer_id"))
    router = Router(spec, rng=random.Random(1))
    routes = [router.route(record={"amount": 1.0}) for _ in range(400)]
    assert all(r.key is None and r.reason == "weighted" for r in routes)
    assert {r.variant.name for r in routes} == {"v0", "v1"}


def test_router_sticky_salt_splits_deployments_independently() -> None:
    key = StickyKey("header", "X-User")
    a = Router(_spec(1, 1, strategy="sticky", sticky_key=key, salt="fraud"))
    b = Router(_spec(1, 1, strategy="sticky", sticky_key=key, salt="churn"))
    same = sum(
        a.route({"X-User": f"u{i}"}).variant.name == b.route({"X-User": f"u{i}"}).variant.name
        for i in range(2_000)
    )
    assert 800 < same < 1_200  # independent halves agree about half the time


def test_stable_unit_is_pinned_and_process_independent() -> None:
    # Pinned values: a change here moves users between variants on upgrade.
    assert stable_unit("customer-42", salt="fraud") == 0.648578421287644
    assert stable_unit("", salt="") == pytest.approx(stable_unit(""))
    keys = [f"user-{i}" for i in range(20)]
    here = [stable_unit(k, salt="s") for k in keys]
    code = (
        "from steward.serving._routing_spec import stable_unit\n"
        f"print([stable_unit(k, salt='s') for k in {keys!r}])"
    )
    for seed in ("0", "12345"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout
        assert eval(out) == here


@given(st.text(max_size=200), st.text(max_size=80))
@settings(max_examples=200)
def test_stable_unit_in_unit_interval(key: str, salt: str) -> None:
    u = stable_unit(key, salt=salt)
    assert 0.0 <= u < 1.0
    assert stable_unit(key, salt=salt) == u


@given(
    st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=6).filter(
        lambda ws: sum(ws) > 0
    ),
    st.text(min_size=1, max_size=30),
)
@settings(max_examples=200)
def test_router_sticky_never_routes_to_weight_zero(weights: list[float], key: str) -> None:
    spec = _spec(*weights, strategy="sticky", sticky_key=StickyKey("header", "k"))
    route = Router(spec).route({"k": key})
    assert route.variant.weight > 0
    assert Router(spec).route({"k": key}).variant == route.variant


# -- canary split ---------------------------------------------------------------


def _canary_spec(**kwargs: object) -> RoutingSpec:
    return RoutingSpec(
        variants=(Variant("stable", "fraud/7", weight=95), Variant("cand", "fraud/8", weight=5)),
        strategy="canary",
        canary="cand",
        **kwargs,  # type: ignore[arg-type]
    )


def test_router_canary_share_starts_from_weights_and_moves() -> None:
    router = Router(_canary_spec(), rng=random.Random(2))
    assert router.canary_share == pytest.approx(0.05)
    assert router.spec.baseline == "stable"
    n = 20_000
    counts = _counts(router, n)
    assert stats.binomtest(counts["cand"], n, 0.05).pvalue > 0.001
    router.set_canary_share(0.25)
    counts = _counts(router, n)
    assert stats.binomtest(counts["cand"], n, 0.25).pvalue > 0.001
    assert router.route().reason == "canary"
    router.set_canary_share(0.0)
    assert _counts(router, 500)["cand"] == 0
    router.set_canary_share(1.0)
    assert _counts(router, 500)["stable"] == 0


def test_router_canary_sticky_users_stay_on_canary_as_share_grows() -> None:
    router = Router(_canary_spec(sticky_key=StickyKey("header", "X-User")))
    users = [{"X-User": f"u{i}"} for i in range(3_000)]
    on_canary: set[int] = set()
    for share in (0.05, 0.1, 0.25, 0.5, 1.0):
        router.set_canary_share(share)
        now = {i for i, h in enumerate(users) if router.route(h).variant.name == "cand"}
        assert on_canary <= now
        on_canary = now
    assert len(on_canary) == len(users)


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan")])
def test_router_canary_share_out_of_range(share: float) -> None:
    with pytest.raises(InvalidInputError, match=r"canary share must be in \[0, 1\]"):
        Router(_canary_spec()).set_canary_share(share)


def test_router_set_canary_share_needs_canary_strategy() -> None:
    with pytest.raises(InvalidInputError, match="needs the canary strategy"):
        Router(_spec(1, 1)).set_canary_share(0.5)


# -- header override ------------------------------------------------------------


def test_router_override_needs_permission() -> None:
    router = Router(_spec(1, 1))
    with pytest.raises(PermissionDeniedError, match="X-Steward-Variant header"):
        router.route({"X-Steward-Variant": "v1"})


def test_router_override_marks_test_traffic_without_shadows() -> None:
    spec = RoutingSpec(
        variants=(Variant("a", "m/1"), Variant("b", "m/2"), Variant("s", "m/3", role="shadow"))
    )
    router = Router(spec)
    route = router.route({"x-steward-variant": " s "}, override_allowed=True)
    assert route.variant.name == "s"
    assert route.test and route.reason == "override" and route.shadows == ()


def test_router_override_unknown_variant_lists_valid_ones() -> None:
    router = Router(_spec(1, 1))
    with pytest.raises(InvalidInputError, match=r"'v9'.*valid: v0, v1"):
        router.route({"X-Steward-Variant": "v9"}, override_allowed=True)


# -- bandit strategy ------------------------------------------------------------


class _FixedArm:
    def __init__(self, arm: str) -> None:
        self.arm = arm
        self.seen: list[str | None] = []

    def choose(self, request_id: str | None = None) -> str:
        self.seen.append(request_id)
        return self.arm


def test_router_bandit_strategy_asks_the_policy() -> None:
    bandit = _FixedArm("v1")
    router = Router(_spec(1, 1, strategy="bandit"), bandit=bandit)
    route = router.route(request_id="r1")
    assert route.variant.name == "v1" and route.reason == "bandit"
    assert bandit.seen == ["r1"]


def test_router_bandit_strategy_needs_a_policy_and_only_it() -> None:
    with pytest.raises(InvalidInputError, match="needs a bandit policy"):
        Router(_spec(1, 1, strategy="bandit"))
    with pytest.raises(InvalidInputError, match="needs a bandit policy"):
        Router(_spec(1, 1), bandit=_FixedArm("v0"))


# -- invalid specs --------------------------------------------------------------


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ((), "at least one variant"),
        ((Variant("a", "m/1"), Variant("a", "m/2")), "'a' is used twice"),
        ((Variant("a", "m/1", weight=0), Variant("b", "m/2", weight=0)), "sum to more than 0"),
        ((Variant("a", "m/1", weight=-1),), "weight -1 is not valid"),
        ((Variant("a", "m/1", weight=float("inf")),), "weight inf is not valid"),
        ((Variant("a", "m/1", weight=float("nan")),), "weight nan is not valid"),
        ((Variant("s", "m/1", role="shadow"),), "at least one primary"),
        ((Variant("a b", "m/1"),), "variant name 'a b' is not valid"),
        ((Variant("", "m/1"),), "variant name '' is not valid"),
        ((Variant("a", ""),), "no model reference"),
        ((Variant("a", "m/1", role="backup"),), "role 'backup'"),  # type: ignore[arg-type]
    ],
)
def test_routing_spec_rejects_bad_variants(variants: tuple[Variant, ...], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        RoutingSpec(variants=variants)


def test_routing_spec_weights_only_count_primaries() -> None:
    with pytest.raises(InvalidInputError, match="sum to more than 0"):
        RoutingSpec(
            variants=(Variant("a", "m/1", weight=0), Variant("s", "m/2", role="shadow", weight=5))
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "random"}, "strategy 'random' is not valid"),
        ({"strategy": "sticky"}, "needs a sticky_key"),
        ({"sticky_key": StickyKey("header", "X")}, "does not use a sticky_key"),
        ({"canary": "v1"}, "set strategy 'canary'"),
        ({"strategy": "canary"}, "needs 'canary' to name a primary"),
        ({"strategy": "canary", "canary": "zz"}, "got 'zz'"),
    ],
)
def test_routing_spec_rejects_bad_strategies(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        _spec(1, 1, **kwargs)


def test_routing_spec_canary_needs_exactly_two_primaries() -> None:
    with pytest.raises(InvalidInputError, match="exactly two primaries"):
        _spec(1, 1, 1, strategy="canary", canary="v1")


def test_routing_spec_round_trips_through_dict() -> None:
    spec = RoutingSpec(
        variants=(
            Variant("a", "fraud@champion", weight=3),
            Variant("b", "fraud/8", weight=1),
            Variant("s", "fraud/9", role="shadow"),
        ),
        strategy="canary",
        canary="b",
        sticky_key=StickyKey("input", "customer_id"),
        salt="fraud",
    )
    assert RoutingSpec.from_dict(spec.to_dict()) == spec
    minimal = RoutingSpec.from_dict({"variants": [{"name": "a", "model": "m/1"}]})
    assert minimal.strategy == "weighted" and minimal.variants[0].weight == 1.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "missing 'variants'"),
        ({"variants": "a"}, "'variants' must be a list"),
        ({"variants": [], "extra": 1}, r"unknown key\(s\) 'extra'"),
        ({"variants": ["a"]}, "variant #0 must be an object"),
        ({"variants": [{"name": "a"}]}, "variant #0 is missing 'model'"),
        ({"variants": [{"name": "a", "model": "m", "weight": "9"}]}, "weight must be a number"),
        ({"variants": [{"name": "a", "model": "m", "weight": True}]}, "weight must be a number"),
        ({"variants": [{"name": 3, "model": "m"}]}, "name must be a non-empty string"),
        (
            {"variants": [{"name": "a", "model": "m"}], "sticky_key": "X-User"},
            "'sticky_key' must be an object",
        ),
        (
            {
                "variants": [{"name": "a", "model": "m"}],
                "strategy": "sticky",
                "sticky_key": {"source": "cookie", "name": "u"},
            },
            "source 'cookie' is not valid",
        ),
    ],
)
def test_routing_spec_from_dict_rejects_malformed(data: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        RoutingSpec.from_dict(data)


def test_routing_spec_variant_lookup() -> None:
    spec = _spec(1, 2)
    assert spec.variant("v1").weight == 2
    with pytest.raises(InvalidInputError, match="no variant 'x'; valid: v0, v1"):
        spec.variant("x")
