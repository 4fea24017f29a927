"""The client object: one steward home, its services, one place to start from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from steward.core import Clock, Principal, load_settings
from steward.features import FeatureSettings, FeatureStore
from steward.governance import (
    GovernanceAuthorizer,
    GovernanceRetentionGuard,
    GovernanceSettings,
    IdentityService,
    PromotionGate,
    PromotionService,
    TokenService,
    authenticated_store,
)
from steward.registry import RegistryService, RegistrySettings
from steward.sdk._runs import ModelRun, adopt_run
from steward.store import Store, StoreSettings
from steward.tracking import TrackingService

__all__ = ["Steward", "connect"]


class Steward:
    """A connection to one steward home (embedded: straight to the services).

    Example:
        >>> st = connect(home="/tmp/demo")  # doctest: +SKIP
        >>> with st.start_run("fraud", params={"model": "hgb"}) as run:  # doctest: +SKIP
        ...     run.log_metric("auc", 0.91)
        ...     run.register_model(model, name="fraud", sample_input=x[:100])
        >>> st.registry.load("fraud@champion").predict(x_new)  # doctest: +SKIP
        >>> training = st.features.get_historical(entities, service="fraud")  # doctest: +SKIP
    """

    def __init__(
        self,
        store: Store,
        *,
        capture_environment: bool = True,
        registry_settings: RegistrySettings | None = None,
        governance: GovernanceSettings | None = None,
        feature_settings: FeatureSettings | None = None,
    ) -> None:
        if store.retention_guard is None:  # deletions below governance honour legal holds
            store = store.with_retention_guard(GovernanceRetentionGuard(store))
        self.store = store
        self.tracking = TrackingService(store, capture_environment=capture_environment)
        self.identities = IdentityService(store, settings=governance)
        self.tokens = TokenService(store, settings=governance)
        self.features = FeatureStore(store, feature_settings)
        self.registry = RegistryService(
            store,
            self.tracking,
            registry_settings or load_settings(RegistrySettings),
            gate=PromotionGate(),
        )
        authorizer = store.authorizer
        self.promotions = PromotionService(
            store,
            self.registry,
            roles_of=authorizer.roles_for if isinstance(authorizer, GovernanceAuthorizer) else None,
        )

    @property
    def principal(self) -> Principal:
        """Who this client acts as."""
        return self.store.principal

    def start_run(self, experiment: str = "default", **kwargs: Any) -> ModelRun:
        """Start a run (see :meth:`TrackingService.start_run`); it can register models."""
        return adopt_run(self.tracking.start_run(experiment, **kwargs), self.registry)

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
    token: str | None = None,
    clock: Clock | None = None,
    capture_environment: bool = True,
    **settings: Any,
) -> Steward:
    """Connect to a steward home: ``STEWARD_HOME`` (default ``./.steward``) or ``home``.

    ``token`` (default ``STEWARD_TOKEN``) is a steward token or a JWT; without one
    the client acts as the local identity, unless ``STEWARD_AUTH=required``.
    Keyword settings override the environment, e.g. ``database_url=...``.

    Example:
        >>> st = connect(token=os.environ["CI_STEWARD_TOKEN"])  # doctest: +SKIP
        >>> st.principal.name  # doctest: +SKIP
        'ci-deployer'

    Raises:
        ConfigurationError: a setting is malformed or a location not writable.
        BackendUnavailableError: a configured server cannot be reached.
        AuthenticationError: the token is refused, or none was given where one is required.
    """
    if home is not None:
        settings["home"] = Path(home)
    store_settings = load_settings(StoreSettings, **_known(StoreSettings, settings))
    governance = load_settings(GovernanceSettings, **_known(GovernanceSettings, settings))
    store = Store.open(store_settings, clock=clock)
    try:
        bound = authenticated_store(store, token, settings=governance)
    except BaseException:
        store.close()
        raise
    return Steward(bound, capture_environment=capture_environment, governance=governance)


def _known(cls: type[Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Return the keyword settings that ``cls`` declares (each context takes its own)."""
    return {k: v for k, v in settings.items() if k in cls.model_fields}
