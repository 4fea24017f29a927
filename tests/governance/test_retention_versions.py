"""Retention of archived model versions: bytes go, the record stays, holds and users are kept."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from tests.governance._support import register_fraud_model

from steward.core import FrozenClock, NotFoundError
from steward.governance import (
    HoldService,
    RetentionItem,
    RetentionService,
    build_report,
    parse_rules,
)
from steward.sdk import Steward
from steward.serving import (
    DeploymentService,
    PredictionArchive,
    PredictionLog,
    PredictionLogSettings,
    PredictionRecord,
    Variant,
)

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RULES = parse_rules(["model_versions: archived for 7y"])
RULE = "model_versions: archived for 2555d"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def retention(st: Steward) -> RetentionService:
    return RetentionService(st.store, st.registry)


def _register(st: Steward, c: float) -> str:
    """Register a version from a run; each ``c`` gives different model bytes."""
    with st.start_run("fraud") as run:
        version = register_fraud_model(run, c=c)
    return version.ref


def _blobs(st: Steward, ref: str) -> list[str]:
    """The manifest's digest, then each file's: what a purge of ``ref`` deletes."""
    version = st.registry.get_version(ref)
    manifest = json.loads(st.store.artifacts.get(version.artifact_digest))
    files = [str(entry["digest"]) for entry in manifest["files"].values()]
    return [version.artifact_digest, *files]


def _version(plan_items: tuple[RetentionItem, ...], ref: str) -> RetentionItem:
    return next(i for i in plan_items if i.kind == "model_version" and i.label == ref)


def test_an_old_archived_version_loses_its_bytes_and_keeps_its_record(
    st: Steward, retention: RetentionService, clock: FrozenClock
) -> None:
    old, current = _register(st, 1.0), _register(st, 0.5)
    st.registry.archive(old, reason="replaced")
    clock.advance(days=3000)
    blobs = _blobs(st, old)
    example = st.registry.get_version(old).example_digest

    plan = retention.plan(RULES)
    assert _version(plan.items, old).action == "delete"
    assert {i.action for i in plan.items if i.kind == "model_artifact"} == {"delete"}
    assert all(st.store.artifacts.exists(d) for d in blobs)  # a plan changes nothing

    done = retention.apply(RULES)

    assert done.deleted["model_versions"] == 1
    assert done.deleted["model_artifacts"] == len(blobs) >= 2
    assert not any(st.store.artifacts.exists(d) for d in blobs)
    assert example is not None and st.store.artifacts.exists(example)
    with pytest.raises(NotFoundError) as caught:
        st.registry.load(old)
    purged_on = (START + timedelta(days=3000)).date().isoformat()
    assert str(caught.value).startswith(
        f"fraud:1's artifacts were deleted by retention rule '{RULE}' on {purged_on}"
    )
    record = st.registry.get_version(old)
    assert (record.stage.value, record.purged_by_rule) == ("archived", RULE)
    estimator = st.registry.card(old).generated["overview"]["estimator"]
    assert estimator
    edited = st.registry.update_card(old, {"caveats": "retired in 2026"})
    assert edited.generated["overview"]["estimator"] == estimator
    assert st.registry.lineage(old).nodes
    assert "fraud:1" in build_report(st.store, st.promotions, old).to_markdown()
    assert st.registry.load(current) is not None
    event = st.store.audit.list_events(action="retention.apply", limit=1)[0]
    assert event.details["model_versions_purged"] == [old]
    again = retention.apply(RULES)
    assert (again.deleted["model_versions"], again.deleted["model_artifacts"]) == (0, 0)
    assert not [i for i in again.items if i.kind == "model_version"]


def test_a_purged_version_leaves_run_retention_working(
    st: Steward, retention: RetentionService, clock: FrozenClock
) -> None:
    old = _register(st, 1.0)
    st.registry.archive(old, reason="replaced")
    clock.advance(days=3000)
    retention.apply(RULES)
    run_id = st.registry.get_version(old).run_id
    assert run_id is not None
    st.tracking.set_run_archived(run_id, True)

    plan = retention.plan(parse_rules(["runs: archived for 0d"]))

    item = next(i for i in plan.items if i.id == run_id)
    assert item.action == "keep" and "produced fraud:1" in item.reason
    assert not [i for i in plan.items if "could not be read" in i.reason]


def test_a_held_version_is_kept(
    st: Steward, retention: RetentionService, clock: FrozenClock
) -> None:
    old = _register(st, 1.0)
    st.registry.archive(old, reason="replaced")
    hold = HoldService(st.store).place("version", old, reason="case 114")
    clock.advance(days=3000)

    done = retention.apply(RULES)

    item = _version(done.items, old)
    assert (item.action, item.hold_id) == ("keep", hold.id)
    assert "case 114" in item.reason
    assert done.deleted["model_versions"] == 0
    assert st.registry.load(old) is not None


def test_a_version_a_deployment_routed_to_is_kept(
    st: Steward, retention: RetentionService, clock: FrozenClock
) -> None:
    old, current = _register(st, 1.0), _register(st, 0.5)
    deployments = DeploymentService(st.store, st.registry)
    deployments.create("fraud-api", [Variant("champion", old)])
    deployments.update("fraud-api", [Variant("champion", current)], reason="new model")
    st.registry.archive(old, reason="replaced")
    clock.advance(days=3000)

    done = retention.apply(RULES)

    item = _version(done.items, old)
    assert item.action == "keep"
    assert "deployment fraud-api revision 1 (a rollback target)" in item.reason
    assert st.registry.load(old) is not None


def test_a_recently_archived_version_is_kept(
    st: Steward, retention: RetentionService, clock: FrozenClock
) -> None:
    old = _register(st, 1.0)
    st.registry.archive(old, reason="replaced")
    clock.advance(days=365)

    done = retention.apply(RULES)

    assert not [i for i in done.items if i.kind == "model_version"]
    assert st.registry.load(old) is not None


def test_a_blob_a_kept_run_shares_is_kept(
    st: Steward, retention: RetentionService, clock: FrozenClock, tmp_path: Path
) -> None:
    old = _register(st, 1.0)
    blobs = _blobs(st, old)
    shared = blobs[1]  # a model file, not the manifest
    path = tmp_path / "copy.bin"
    path.write_bytes(st.store.artifacts.get(shared))
    with st.start_run("fraud", name="keeper") as run:
        run.log_artifact(path)
        keeper = str(run.id)
    st.registry.archive(old, reason="replaced")
    clock.advance(days=3000)

    done = retention.apply(RULES)

    item = next(i for i in done.items if i.kind == "model_artifact" and i.id == shared)
    assert (item.action, item.reason) == ("keep", f"also used by run {keeper}")
    assert st.store.artifacts.exists(shared)
    assert not st.store.artifacts.exists(blobs[0])
    assert done.deleted["model_versions"] == 1


def _predictions(home: Path) -> None:
    """Two compacted days of fraud-api predictions: 2024-01-10 and 2024-01-11."""
    settings = PredictionLogSettings(home=home)
    log = PredictionLog.from_settings(settings, worker_id="t")
    try:
        for day in range(2):
            log.append(
                PredictionRecord(
                    request_id=f"r{day}",
                    ts=datetime(2024, 1, 10 + day, 12, tzinfo=UTC),
                    deployment="fraud-api",
                    revision=1,
                    variant="champion",
                    model_version="fraud/1",
                    inputs={"amount": 1.0},
                    outputs={"score": 0.1},
                    latency_ms=1.0,
                )
            )
        log.rotate()
    finally:
        log.close()
    PredictionArchive.from_settings(settings).compact()


def test_the_service_purges_prediction_partitions_outside_holds(
    st: Steward, retention: RetentionService, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    _predictions(home)
    archive = PredictionArchive.from_settings(PredictionLogSettings(home=home))
    hold = HoldService(st.store).place(
        "predictions",
        "fraud-api",
        start=datetime(2024, 1, 11, tzinfo=UTC),
        end=datetime(2024, 1, 11, 23, tzinfo=UTC),
        reason="case 9",
    )
    rules = parse_rules(["predictions: older than 400d"])

    plan = retention.plan(rules, predictions=archive)
    assert [(p.day.isoformat(), p.action, p.hold_id) for p in plan.predictions] == [
        ("2024-01-10", "delete", None),
        ("2024-01-11", "keep", hold.id),
    ]
    assert len(archive.partitions(date(2025, 1, 1))) == 2  # a plan changes nothing
    done = retention.apply(rules, predictions=archive)

    assert done.deleted["prediction_partitions"] == 1
    assert archive.partitions(date(2025, 1, 1)) == [("fraud-api", date(2024, 1, 11))]
    event = st.store.audit.list_events(action="retention.predictions", limit=1)[0]
    assert (event.object_id, event.details["deleted"]) == ("fraud-api", ["2024-01-10"])
    assert retention.apply(rules, predictions=archive).deleted["prediction_partitions"] == 0
