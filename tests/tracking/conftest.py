from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from steward.sdk import Steward, connect
from steward.tracking import TrackingService


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Iterator[Steward]:
    """A client on SQLite and on PostgreSQL, with artifacts in a temp folder."""
    st = connect(home=tmp_path / "home", database_url=database_url, capture_environment=False)
    yield st
    st.close()


@pytest.fixture
def tracking(client: Steward) -> TrackingService:
    return client.tracking
