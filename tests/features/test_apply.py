"""apply: plans, definitions versions, audit, docs pages; PII access on reads."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from tests.features._data import T0, TS, entity_frame, write_parquet

from steward.core import ConflictError, PermissionDeniedError, Principal
from steward.features import (
    Aggregation,
    Definitions,
    Entity,
    Feature,
    FeatureService,
    FeatureStore,
    FeatureView,
    FileSource,
)

CUSTOMER = Entity("customer", ["customer_id"])
SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("ts", TS),
        ("score", pa.float64()),
        ("age", pa.int64()),
        ("email", pa.string()),
    ]
)


@pytest.fixture
def source(tmp_path: Path) -> FileSource:
    path = write_parquet(
        tmp_path / "p.parquet",
        [{"customer_id": 1, "ts": T0, "score": 0.5, "age": 41, "email": "a@example.com"}],
        SCHEMA,
    )
    return FileSource("profiles", str(path), "ts")


def _view(source: FileSource, *features: Feature, **kwargs: object) -> FeatureView:
    chosen = features or (Feature("score", "float64"), Feature("age", "int64"))
    return FeatureView("profile", CUSTOMER, source, list(chosen), **kwargs)  # type: ignore[arg-type]


def test_first_apply_adds_everything(feature_store: FeatureStore, source: FileSource) -> None:
    plan = feature_store.apply(
        Definitions(views=[_view(source)], services=[FeatureService("fraud", ["profile:score"])])
    )
    assert plan.version == 1 and plan.previous_version is None
    assert [(c.kind, c.name, c.action) for c in plan.changes] == [
        ("entity", "customer", "add"),
        ("source", "profiles", "add"),
        ("view", "profile", "add"),
        ("service", "fraud", "add"),
    ]
    assert not plan.breaking
    assert feature_store.definitions_version() == 1
    assert [v.name for v in feature_store.list_views()] == ["profile"]
    assert feature_store.get_view("profile").feature("age").dtype == "int64"
    event = feature_store.store.audit.list_events(action="features.apply")[0]
    assert event.object_id == "1"
    assert event.details["digest"] == plan.digest
    assert "add view profile" in event.details["changes"]


def test_unchanged_apply_records_nothing(feature_store: FeatureStore, source: FileSource) -> None:
    feature_store.apply(Definitions(views=[_view(source)]))
    plan = feature_store.apply(Definitions(views=[_view(source)]))
    assert not plan.changed
    assert plan.version == 1
    assert str(plan) == "no changes"
    assert len(feature_store.store.audit.list_events(action="features.apply")) == 1


def test_changed_dtype_and_removed_feature_are_breaking(
    feature_store: FeatureStore, source: FileSource
) -> None:
    feature_store.apply(Definitions(views=[_view(source)]))
    changed = _view(source, Feature("score", "float32"), Feature("email", "string", pii=True))
    plan = feature_store.apply(Definitions(views=[changed]), dry_run=True)
    assert plan.dry_run and plan.version is None and plan.breaking
    (change,) = plan.changes
    assert change.action == "change" and change.breaking
    assert "feature 'score' dtype float64 -> float32 (breaking)" in change.details
    assert "feature 'age' removed (breaking)" in change.details
    assert "feature 'email' added (string)" in change.details
    assert feature_store.definitions_version() == 1  # a dry run records nothing
    assert "(breaking)" in str(plan)


def test_non_breaking_changes(feature_store: FeatureStore, source: FileSource) -> None:
    feature_store.apply(Definitions(views=[_view(source)]))
    plan = feature_store.apply(
        Definitions(
            views=[_view(source, ttl=timedelta(days=2), owner="risk-team", description="scores")]
        )
    )
    assert plan.version == 2 and plan.previous_version == 1
    assert not plan.breaking
    (change,) = plan.changes
    assert any(d.startswith("ttl_seconds: None -> 172800") for d in change.details)
    assert feature_store.get_view("profile").owner == "risk-team"


def test_removals_and_redefined_aggregations_are_breaking(
    feature_store: FeatureStore, source: FileSource
) -> None:
    windows = FeatureView(
        "txn",
        CUSTOMER,
        source,
        aggregations=[Aggregation("score", "sum", timedelta(hours=1), name="score_1h")],
    )
    service = FeatureService("fraud", ["profile:score", "profile:age"])
    feature_store.apply(Definitions(views=[_view(source), windows], services=[service]))
    redefined = FeatureView(
        "txn",
        CUSTOMER,
        source,
        aggregations=[Aggregation("score", "mean", timedelta(hours=1), name="score_1h")],
    )
    plan = feature_store.apply(
        Definitions(views=[redefined], services=[FeatureService("fraud", ["txn:*"])])
    )
    by_name = {c.name: c for c in plan.changes}
    assert by_name["profile"].action == "remove" and by_name["profile"].breaking
    assert by_name["txn"].breaking
    assert "aggregation 'score_1h' redefined (breaking)" in by_name["txn"].details
    assert by_name["fraud"].breaking  # lost features
    assert plan.as_dict()["removed"] == 1


def test_docs_pages_follow_the_definitions(feature_store: FeatureStore, source: FileSource) -> None:
    pii = _view(
        source,
        Feature("score", "float64", description="risk | score"),
        Feature("email", "string", pii=True),
        description="Customer profile.",
        owner="risk",
    )
    plan = feature_store.apply(Definitions(views=[pii]))
    docs = feature_store.settings.docs_dir()
    page = (docs / "profile.md").read_text()
    assert plan.docs == (str(docs / "profile.md"),)
    assert page.startswith("# profile\n\nCustomer profile.")
    assert "| `email` | string | yes |" in page
    assert "risk \\| score" in page
    assert "`features:read:pii`" in page
    assert "- **Definitions version**: 1" in page
    renamed = FeatureView("customer_profile", CUSTOMER, source, [Feature("score", "float64")])
    feature_store.apply(Definitions(views=[renamed]))
    assert sorted(p.name for p in docs.glob("*.md")) == ["customer_profile.md", "index.md"]
    assert "[customer_profile](customer_profile.md)" in (docs / "index.md").read_text()


def test_another_process_sees_a_new_version(
    feature_store: FeatureStore, source: FileSource
) -> None:
    other = FeatureStore(feature_store.store, feature_store.settings)
    assert other.definitions_version() is None
    feature_store.apply(Definitions(views=[_view(source)]))
    other._checked_at = 0.0  # as if the cache window had passed
    assert other.definitions_version() == 1
    other.close()


def test_concurrent_apply_of_the_same_version_conflicts(
    feature_store: FeatureStore, source: FileSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    feature_store.apply(Definitions(views=[_view(source)]))
    # A competitor that read the registry before version 1 landed tries to record 1 too.
    monkeypatch.setattr(feature_store, "_latest_row", lambda conn: None)
    with pytest.raises(ConflictError, match="run apply again"):
        feature_store.apply(Definitions(views=[_view(source, ttl=timedelta(days=3))]))
    monkeypatch.undo()
    assert feature_store.definitions_version() == 1


def _reader(feature_store: FeatureStore, *scopes: str) -> FeatureStore:
    principal = Principal.of("analyst", scopes=scopes)
    return FeatureStore(feature_store.store.as_principal(principal), feature_store.settings)


def test_pii_reads_need_their_scope_and_are_audited(
    feature_store: FeatureStore, source: FileSource
) -> None:
    view = _view(source, Feature("score", "float64"), Feature("email", "string", pii=True))
    feature_store.apply(Definitions(views=[view]))
    frame = entity_frame([(1, T0), (2, T0)])

    plain = _reader(feature_store, "features:read")
    assert plain.get_historical_features(frame, ["profile:score"]).num_rows == 2
    with pytest.raises(PermissionDeniedError, match="features:read:pii"):
        plain.get_historical_features(frame, ["profile:email"])
    denied = feature_store.store.audit.list_events(action="access.denied")[0]
    assert denied.details["resource"] == "feature_view:profile"
    assert not feature_store.store.audit.list_events(action="features.read_pii")

    trusted = _reader(feature_store, "features:read", "features:read:pii")
    out = trusted.get_historical_features(frame, ["profile:*"])
    assert out.column("email").to_pylist() == ["a@example.com", None]
    (event,) = feature_store.store.audit.list_events(action="features.read_pii")
    assert event.actor == "analyst"
    assert event.object_id == "profile"
    assert event.details == {
        "features": ["email"],
        "rows": 2,
        "path": "historical",
        "principal": "analyst",
    }
    assert "a@example.com" not in str(event.details)


def test_reads_need_the_read_scope(feature_store: FeatureStore, source: FileSource) -> None:
    feature_store.apply(Definitions(views=[_view(source)]))
    nobody = _reader(feature_store)
    with pytest.raises(PermissionDeniedError, match="'features:read' on feature_view:profile"):
        nobody.get_historical_features(entity_frame([(1, T0)]), ["profile:score"])
    with pytest.raises(PermissionDeniedError, match="features:write"):
        nobody.apply(Definitions(views=[_view(source, ttl=timedelta(days=1))]))
