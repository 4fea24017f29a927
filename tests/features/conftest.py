"""Fixtures of the feature-store tests: a feature store on SQLite and PostgreSQL homes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from steward.core import load_settings
from steward.features import FeatureSettings, FeatureStore
from steward.store import Store, StoreSettings


@pytest.fixture
def feature_store(database_url: str, tmp_path: Path) -> Iterator[FeatureStore]:
    """A feature store on a fresh home (metadata on SQLite and on PostgreSQL)."""
    home = tmp_path / "home"
    store = Store.open(load_settings(StoreSettings, home=home, database_url=database_url))
    features = FeatureStore(store, load_settings(FeatureSettings, home=home))
    yield features
    features.close()
    store.close()
