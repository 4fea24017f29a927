"""Pin each context's public surface: a change here is a change users see."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "steward.core": [
        "ADMIN_SCOPE",
        "Authorizer",
        "BackendUnavailableError",
        "BaseStewardSettings",
        "Clock",
        "ConfigurationError",
        "ConflictError",
        "CoreSettings",
        "EncryptionKeyError",
        "FrozenClock",
        "IntegrityError",
        "InvalidInputError",
        "NotFoundError",
        "PermissionDeniedError",
        "Principal",
        "PrincipalKind",
        "SchemaVersionError",
        "ScopeAuthorizer",
        "StewardError",
        "SystemClock",
        "canonical_json",
        "config_file",
        "load_settings",
        "new_id",
        "scope_covers",
        "sha256_file",
        "sha256_hex",
        "sha256_stream",
        "utc_now",
    ],
    "steward.cli": ["app", "main"],
    "steward.store": [
        "ArtifactInfo",
        "ArtifactSource",
        "ArtifactStore",
        "AuditEvent",
        "AuditLog",
        "ChainAnchor",
        "ContentAddressedStore",
        "Database",
        "KeyProvider",
        "KeyRing",
        "SchemaStatus",
        "Store",
        "StoreSettings",
        "UTCDateTime",
        "UnitOfWork",
        "VerificationResult",
        "big_id",
        "download_artifact",
        "key_id_of",
        "metadata",
        "open_artifact_store",
        "open_database",
        "open_key_provider",
        "unit_of_work",
    ],
    "steward.tracking": [
        "ActiveRun",
        "DatasetColumn",
        "DatasetDescription",
        "DatasetVersion",
        "EnvironmentChange",
        "EnvironmentSnapshot",
        "Experiment",
        "FilterSyntaxError",
        "Metric",
        "Page",
        "ParamValue",
        "Run",
        "RunStatus",
        "TrackingService",
        "capture_environment",
        "describe_dataset",
        "diff_environments",
        "seed_everything",
    ],
    "steward.quality": [
        "CategoricalProfile",
        "ColumnDrift",
        "ColumnSchema",
        "CostMatrix",
        "DataQualityError",
        "DriftDetector",
        "DriftReport",
        "FairnessReport",
        "GroupMetrics",
        "Histogram",
        "Issue",
        "NotFittedError",
        "NumericProfile",
        "ProfileSettings",
        "ProxyAssociation",
        "ProxyReport",
        "QualityError",
        "ReferenceProfile",
        "Schema",
        "SchemaChange",
        "SchemaDiff",
        "SegmentMetrics",
        "SegmentReport",
        "ValidationReport",
        "detect_proxies",
        "evaluate_fairness",
        "evaluate_segments",
    ],
    "steward.features": [
        "Aggregation",
        "Definitions",
        "Entity",
        "EntityFrameError",
        "Feature",
        "FeatureDefinitionError",
        "FeatureRef",
        "FeatureService",
        "FeatureSettings",
        "FeatureStoreError",
        "FeatureView",
        "FileSource",
        "QuerySource",
        "Source",
        "SourceSchemaError",
        "UnknownFeatureError",
        "load_definitions",
        "window_label",
    ],
    "steward.sdk": [
        "Steward",
        "active_run",
        "connect",
        "end_run",
        "log_artifact",
        "log_dataset",
        "log_metric",
        "log_metrics",
        "log_param",
        "log_params",
        "set_tag",
        "start_run",
    ],
    "steward.demo": ["DemoReport", "run_demo"],
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_public_api_is_pinned(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(PUBLIC[module_name])
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{module_name}.{name} is exported but missing"


def test_public_api_top_level_sdk_shortcuts() -> None:
    import steward

    assert steward.start_run is importlib.import_module("steward.sdk").start_run
    assert "connect" in dir(steward)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = steward.nope  # type: ignore[attr-defined]
