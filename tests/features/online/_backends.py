"""Open each online store backend for a test: SQLite in a temp folder, the real Redis server.

Redis tests use ``STEWARD_TEST_REDIS_URL`` (default db 15 on loopback) with a key
prefix of their own, removed afterwards; they skip when the server is down,
unless ``STEWARD_REQUIRE_SERVICES=1`` makes that a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from steward.core import BackendUnavailableError
from steward.features._online import OnlineStore, open_online_store

REDIS_URL = os.environ.get("STEWARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE_SERVICES = os.environ.get("STEWARD_REQUIRE_SERVICES", "") in ("1", "true", "yes")
BACKENDS = ["sqlite", pytest.param("redis", marks=pytest.mark.redis)]


def redis_unavailable(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (STEWARD_REQUIRE_SERVICES is set, so this is a failure)")
    pytest.skip(reason)


def store_url(kind: str, tmp_path: Path) -> str:
    """A fresh store's URL: a new SQLite file, or a Redis prefix no other test uses."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'online.db'}"
    separator = "&" if "?" in REDIS_URL else "?"
    return f"{REDIS_URL}{separator}prefix=steward_test_{uuid.uuid4().hex[:12]}:"


def purge(url: str) -> None:
    """Remove every key under the Redis URL's prefix."""
    import redis

    base, _, query = url.partition("?")
    prefix = dict(part.split("=", 1) for part in query.split("&"))["prefix"]
    client = redis.Redis.from_url(base)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1_000))
        for start in range(0, len(keys), 500):
            client.unlink(*keys[start : start + 500])
    finally:
        client.close()


@contextmanager
def open_store(kind: str, tmp_path: Path, url: str | None = None) -> Iterator[OnlineStore]:
    """Open a store of ``kind`` (at ``url`` when given); purge Redis keys afterwards."""
    url = url or store_url(kind, tmp_path)
    try:
        store = open_online_store(url)
    except BackendUnavailableError as exc:
        redis_unavailable(f"Redis is not reachable at {REDIS_URL}: {exc}")
    try:
        yield store
    finally:
        store.close()
        if kind == "redis":
            purge(url)
