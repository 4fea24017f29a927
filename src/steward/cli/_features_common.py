"""What every ``steward features`` command shares: opening the feature store of a home."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from steward.cli._common import open_store
from steward.core import load_settings
from steward.features import FeatureSettings, FeatureStore

__all__ = ["feature_settings", "open_feature_store"]


def feature_settings(home: Path | None = None, **overrides: Any) -> FeatureSettings:
    """Load feature settings from the environment, with ``--home`` taking precedence."""
    if home is not None:
        overrides["home"] = home
    return load_settings(FeatureSettings, **overrides)


@contextmanager
def open_feature_store(home: Path | None = None) -> Iterator[FeatureStore]:
    """Open the feature store of the home in force; close it (and the store) after use."""
    store = open_store(home)
    features = FeatureStore(store, feature_settings(home))
    try:
        yield features
    finally:
        features.close()
        store.close()
