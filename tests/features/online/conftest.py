"""The online store contract suite runs every test against every backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.features.online._backends import BACKENDS, open_store, store_url

from steward.features._online import OnlineStore


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test: ``sqlite`` or ``redis``."""
    kind: str = request.param
    return kind


@pytest.fixture
def url(backend: str, tmp_path: Path) -> str:
    """The URL of a fresh, empty store of the backend under test."""
    return store_url(backend, tmp_path)


@pytest.fixture
def store(backend: str, url: str, tmp_path: Path) -> Iterator[OnlineStore]:
    """An open, empty store of the backend under test."""
    with open_store(backend, tmp_path, url) as opened:
        yield opened
