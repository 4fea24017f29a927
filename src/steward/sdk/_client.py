"""The client object: one steward home, its services, one place to start from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from steward.core import Clock, load_settings
from steward.features import FeatureSettings, FeatureStore
from steward.store import Store, StoreSettings
from steward.tracking import ActiveRun, TrackingService

__all__ = ["Steward", "connect"]


class Steward:
    """A connection to one steward home (embedded: straight to the services).

    Example:
        >>> st = connect(home="/tmp/demo")  # doctest: +SKIP
        >>> with st.start_run("fraud", params={"model": "hgb"}) as run:  # doctest: +SKIP
        ...     run.log_metric("auc", 0.91)
        >>> training = st.features.get_historical(entities, service="fraud")  # doctest: +SKIP
    """

    def __init__(
        self,
        store: Store,
        *,
        capture_environment: bool = True,
        feature_settings: FeatureSettings | None = None,
    ) -> None:
        self.store = store
        self.tracking = TrackingService(store, capture_environment=capture_environment)
        self.features = FeatureStore(store, feature_settings)

    def start_run(self, experiment: str = "default", **kwargs: Any) -> ActiveRun:
        """Start a run (see :meth:`TrackingService.start_run`)."""
        return self.tracking.start_run(experiment, **kwargs)

    def close(self) -> None:
        """Release database connections and the feature store's query engine."""
        self.features.close()
        self.store.close()

    def __enter__(self) -> Steward:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    home: str | Path | None = None,
    *,
    clock: Clock | None = None,
    capture_environment: bool = True,
    **settings: Any,
) -> Steward:
    """Connect to a steward home: ``STEWARD_HOME`` (default ``./.steward``) or ``home``.

    Keyword settings override the environment, e.g. ``database_url=...``.

    Raises:
        ConfigurationError: a setting is malformed or a location not writable.
        BackendUnavailableError: a configured server cannot be reached.
    """
    if home is not None:
        settings["home"] = Path(home)
    store = Store.open(load_settings(StoreSettings, **settings), clock=clock)
    return Steward(
        store,
        capture_environment=capture_environment,
        feature_settings=load_settings(FeatureSettings, **settings),
    )
