"""Feature store: definitions, point-in-time retrieval, window aggregates, online serving.

Definitions are plain Python objects registered with ``steward features apply``;
training sets are built point-in-time correct with DuckDB ASOF joins over
Parquet; the same definitions are materialized into an online store.

Example:
    >>> from datetime import timedelta
    >>> from steward.features import Entity, Feature, FeatureView, FileSource
    >>> view = FeatureView(
    ...     "customer_profile",
    ...     entities=Entity("customer", ["customer_id"]),
    ...     source=FileSource("profiles", "profiles/*.parquet", timestamp_field="ts"),
    ...     features=[Feature("age", "int64"), Feature("email", "string", pii=True)],
    ...     ttl=timedelta(days=30),
    ... )
    >>> view.feature_names
    ('age', 'email')
"""

from steward.features._definitions import (
    Aggregation,
    Definitions,
    Entity,
    Feature,
    FeatureRef,
    FeatureService,
    FeatureView,
    FileSource,
    QuerySource,
    Source,
    window_label,
)
from steward.features._errors import (
    EntityFrameError,
    FeatureDefinitionError,
    FeatureStoreError,
    SourceSchemaError,
    UnknownFeatureError,
)
from steward.features._loader import load_definitions
from steward.features._materialize import MaterializeReport, ViewMaterialization
from steward.features._online import (
    OnlineColumns,
    OnlineRecord,
    OnlineRow,
    OnlineStore,
    OnlineTransaction,
    RedisOnlineStore,
    SqliteOnlineStore,
    open_online_store,
)
from steward.features._plan import ApplyPlan, Change
from steward.features._pushlog import offline_push_log_path
from steward.features._service import FeatureStore
from steward.features._serving import FeatureStatus, OnlineFeatures
from steward.features._settings import FeatureSettings
from steward.features._status import Freshness, ViewProfile, ViewStatus
from steward.features._windows import compute_window_aggregates

__all__ = [
    "Aggregation",
    "ApplyPlan",
    "Change",
    "Definitions",
    "Entity",
    "EntityFrameError",
    "Feature",
    "FeatureDefinitionError",
    "FeatureRef",
    "FeatureService",
    "FeatureSettings",
    "FeatureStatus",
    "FeatureStore",
    "FeatureStoreError",
    "FeatureView",
    "FileSource",
    "Freshness",
    "MaterializeReport",
    "OnlineColumns",
    "OnlineFeatures",
    "OnlineRecord",
    "OnlineRow",
    "OnlineStore",
    "OnlineTransaction",
    "QuerySource",
    "RedisOnlineStore",
    "Source",
    "SourceSchemaError",
    "SqliteOnlineStore",
    "UnknownFeatureError",
    "ViewMaterialization",
    "ViewProfile",
    "ViewStatus",
    "compute_window_aggregates",
    "load_definitions",
    "offline_push_log_path",
    "open_online_store",
    "window_label",
]
