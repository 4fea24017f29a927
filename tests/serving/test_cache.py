"""Response cache: canonical keys, TTL, LRU bound, counters, uncacheable inputs."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steward.core import InvalidInputError
from steward.serving._cache import ResponseCache


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=10), json_values, max_size=8))
@settings(max_examples=200)
def test_cache_key_ignores_key_order(record: dict[str, object]) -> None:
    cache: ResponseCache[int] = ResponseCache()
    reordered = dict(reversed(list(record.items())))
    assert cache.key(record, namespace="d") == cache.key(reordered, namespace="d")
    key = cache.key(record, namespace="d")
    assert key is not None and len(key) == 64


def test_cache_key_depends_on_namespace_and_values() -> None:
    cache: ResponseCache[int] = ResponseCache()
    record = {"amount": 1, "country": "FR"}
    assert cache.key(record, namespace="fraud:r1:a") != cache.key(record, namespace="fraud:r2:a")
    assert cache.key(record, namespace="n") != cache.key({**record, "amount": 2}, namespace="n")
    assert cache.key({"x": 1}, namespace="n") != cache.key({"x": 1.5}, namespace="n")


def test_cache_hit_miss_and_counters() -> None:
    cache: ResponseCache[str] = ResponseCache(max_entries=10, ttl_s=30)
    key = cache.key({"a": 1}, namespace="n")
    assert cache.get(key) is None
    cache.put(key, "out")
    assert cache.get(key) == "out"
    assert cache.get(cache.key({"a": 2}, namespace="n")) is None
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.entries) == (1, 2, 1)
    assert stats.hit_rate == pytest.approx(1 / 3)


def test_cache_entries_expire_after_ttl() -> None:
    ticks = Ticks()
    cache: ResponseCache[int] = ResponseCache(ttl_s=10, clock=ticks)
    cache.put("k", 1)
    ticks.now = 9.99
    assert cache.get("k") == 1
    ticks.now = 10.0
    assert cache.get("k") is None
    assert cache.stats().expirations == 1 and len(cache) == 0
    cache.put("k", 2)  # a fresh entry lives another full TTL
    ticks.now = 19.0
    assert cache.get("k") == 2


def test_cache_evicts_least_recently_used() -> None:
    cache: ResponseCache[int] = ResponseCache(max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == (1, 3)
    assert cache.stats().evictions == 1 and len(cache) == 2


def test_cache_nan_and_inf_inputs_are_uncacheable() -> None:
    cache: ResponseCache[int] = ResponseCache()
    for bad in ({"x": float("nan")}, {"x": [1.0, float("inf")]}, {"x": object()}):
        key = cache.key(bad, namespace="n")
        assert key is None
        cache.put(key, 1)
        assert cache.get(key) is None
    stats = cache.stats()
    assert stats.uncacheable == 3 and stats.entries == 0 and stats.misses == 0


def test_cache_clear_keeps_counters() -> None:
    cache: ResponseCache[int] = ResponseCache()
    cache.put("a", 1)
    cache.get("a")
    cache.clear()
    assert cache.get("a") is None
    assert cache.stats().hits == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_entries": 0}, "max_entries"),
        ({"max_entries": True}, "max_entries"),
        ({"ttl_s": 0}, "ttl_s"),
        ({"ttl_s": float("inf")}, "ttl_s"),
    ],
)
def test_cache_rejects_bad_settings(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        ResponseCache(**kwargs)  # type: ignore[arg-type]


def test_cache_stays_bounded_under_concurrent_use() -> None:
    cache: ResponseCache[int] = ResponseCache(max_entries=50)

    def work(offset: int) -> None:
        for i in range(2_000):
            key = f"{offset}-{i % 120}"
            if cache.get(key) is None:
                cache.put(key, i)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = cache.stats()
    assert stats.entries == 50
    assert stats.hits + stats.misses == 8_000
