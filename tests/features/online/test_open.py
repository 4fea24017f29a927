"""Choosing and opening an online store by URL; bad URLs name what to write instead."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.features.online._backends import REDIS_URL, open_store, redis_unavailable

from steward.core import BackendUnavailableError, ConfigurationError
from steward.features._online import (
    OnlineRow,
    RedisOnlineStore,
    SqliteOnlineStore,
    open_online_store,
)


def test_sqlite_urls_relative_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_online_store("sqlite:///sub/online.db")
    absolute = open_online_store(f"sqlite:///{tmp_path / 'abs.db'}?synchronous=NORMAL")
    try:
        assert isinstance(relative, SqliteOnlineStore) and isinstance(absolute, SqliteOnlineStore)
        assert (tmp_path / "sub" / "online.db").is_file()
        assert (tmp_path / "abs.db").is_file()
    finally:
        relative.close()
        absolute.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://x/y", "unknown scheme 'postgres://'"),
        ("online.db", "unknown scheme"),
        ("sqlite://", "no file path"),
        ("sqlite:///:memory:", "names no file"),
        ("sqlite:///x.db?cache=shared", "unknown options"),
        ("sqlite:///x.db?synchronous=SOMETIMES", "synchronous"),
    ],
)
def test_malformed_urls_are_configuration_errors(
    url: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match=message):
        open_online_store(url)


def test_unwritable_sqlite_location_is_a_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigurationError, match="cannot open the online store"):
        open_online_store(f"sqlite:///{blocker / 'online.db'}")


def test_a_closed_sqlite_store_says_so(tmp_path: Path) -> None:
    store = open_online_store(f"sqlite:///{tmp_path / 'o.db'}")
    store.close()
    with pytest.raises(BackendUnavailableError, match="closed"):
        store.read("v", [("k",)], ["x"])


def test_unreachable_redis_is_backend_unavailable() -> None:
    with pytest.raises(BackendUnavailableError, match=r"127\.0\.0\.1:1/0") as info:
        open_online_store("redis://:secret@127.0.0.1:1/0?prefix=x:")
    assert "secret" not in str(info.value)


@pytest.mark.redis
def test_redis_prefix_comes_from_the_url() -> None:
    try:
        store = open_online_store(f"{REDIS_URL}?prefix=team_a:")
    except BackendUnavailableError as exc:
        redis_unavailable(str(exc))
    try:
        assert isinstance(store, RedisOnlineStore) and store.prefix == "team_a:"
    finally:
        store.close()


@pytest.mark.redis
def test_redis_reloads_its_script_when_the_server_lost_it(tmp_path: Path) -> None:
    with open_store("redis", tmp_path) as store:
        assert isinstance(store, RedisOnlineStore)
        store._write_sha = "0" * 40  # as after a server restart or SCRIPT FLUSH
        at = datetime(2024, 1, 1, tzinfo=UTC)
        assert store.write("v", [OnlineRow(("k",), {"x": 1}, at)]) == 1
        (record,) = store.read("v", [("k",)], ["x"])
        assert record is not None and record.values == {"x": 1}
