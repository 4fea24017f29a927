from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from steward.core import FrozenClock
from steward.governance import GovernanceSettings, IdentityService, TokenService
from steward.sdk import Steward, connect
from steward.store import Store, StoreSettings

_ENV = (
    "STEWARD_AUTH",
    "STEWARD_TOKEN",
    "STEWARD_APPROVER_ROLES",
    "STEWARD_CUSTOM_ROLES",
    "STEWARD_TOKEN_DEFAULT_EXPIRY",
    "STEWARD_TOKEN_MAX_EXPIRY",
    "STEWARD_AUTH_CACHE_SECONDS",
    "STEWARD_CONFIG",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("STEWARD_JWT_") or name in _ENV:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray steward.toml


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def store(database_url: str, tmp_path: Path, clock: FrozenClock) -> Iterator[Store]:
    """The home as its operator (the local identity 'root'), on SQLite and PostgreSQL."""
    opened = Store.open(
        StoreSettings(home=tmp_path / "home", database_url=database_url, user="root"),
        clock=clock,
    )
    opened.initialize()
    yield opened
    opened.close()


@pytest.fixture
def client_user() -> str:
    """Who ``st`` acts as; a module overrides this fixture to act as someone else."""
    return "dana"


@pytest.fixture
def st(
    tmp_path: Path, database_url: str, clock: FrozenClock, client_user: str
) -> Iterator[Steward]:
    """An SDK client on a fresh home at ``clock``'s time (a module may override ``clock``)."""
    client = connect(
        home=tmp_path / "home",
        database_url=database_url,
        clock=clock,
        capture_environment=False,
        user=client_user,
    )
    yield client
    client.close()


@pytest.fixture
def settings() -> GovernanceSettings:
    return GovernanceSettings(user="root")


@pytest.fixture
def identities(store: Store, settings: GovernanceSettings) -> IdentityService:
    return IdentityService(store, settings=settings)


@pytest.fixture
def tokens(store: Store, settings: GovernanceSettings) -> TokenService:
    return TokenService(store, settings=settings)
