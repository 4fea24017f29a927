"""Artifact collection (`steward gc`) under governance: holds and model versions keep bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.governance._support import tiny_classifier

from steward.core import ConfigurationError, FrozenClock, KeepReason, RetentionGuard
from steward.governance import GovernanceRetentionGuard, HoldService
from steward.sdk import Steward
from steward.store import Store, StoreSettings
from steward.tracking import TrackingService


@pytest.fixture
def client_user() -> str:
    return "root"


def _archived_run(st: Steward, tmp_path: Path, name: str, **tags: str) -> tuple[str, str]:
    """An archived run with one artifact of its own; returns ``(run id, artifact digest)``."""
    file = tmp_path / f"{name}.txt"
    file.write_text(f"evidence of {name}")
    with st.start_run("fraud", name=name, tags=tags) as run:
        pass
    st.tracking.log_artifact(run.id, file)
    st.tracking.set_run_archived(run.id, True)
    [artifact] = st.tracking.list_artifacts(run.id)
    return run.id, artifact["digest"]


def test_a_held_run_keeps_its_artifacts_until_the_hold_is_released(
    st: Steward, tmp_path: Path
) -> None:
    held_run, held_blob = _archived_run(st, tmp_path, "a", subject="cust-42")
    free_run, free_blob = _archived_run(st, tmp_path, "b")
    hold = HoldService(st.store).place("subject", "cust-42", reason="case 114")

    report = st.tracking.collect_garbage(older_than_days=0, dry_run=False)

    assert report["runs"] == [free_run] and report["artifacts"] == [free_blob]
    reason = f"held by {hold.id} (subject cust-42): case 114"
    assert report["held"] == [{"run": held_run, "reason": reason, "hold": hold.id}]
    assert st.store.artifacts.exists(held_blob) and not st.store.artifacts.exists(free_blob)
    assert [a["digest"] for a in st.tracking.list_artifacts(held_run)] == [held_blob]
    [event] = st.store.audit.list_events(action="artifacts.gc")
    assert event.details["held"] == [{"run": held_run, "hold": hold.id}]
    assert event.details["runs"] == [free_run]

    again = st.tracking.collect_garbage(older_than_days=0, dry_run=False)
    assert again["artifacts"] == [] and again["held"][0]["run"] == held_run  # still held
    assert len(st.store.audit.list_events(action="artifacts.gc")) == 2

    HoldService(st.store).release(hold.id, reason="case closed")
    after = st.tracking.collect_garbage(older_than_days=0, dry_run=False)
    assert held_run in after["runs"] and after["artifacts"] == [held_blob]
    assert after["held"] == []
    assert not st.store.artifacts.exists(held_blob)
    assert st.store.audit.verify().ok


def test_a_version_hold_keeps_the_run_that_trained_it(
    st: Steward, tmp_path: Path, clock: FrozenClock
) -> None:
    model, x = tiny_classifier()
    file = tmp_path / "plot.txt"
    file.write_text("roc curve")
    with st.start_run("fraud") as run:
        run.log_artifact(file)
        version = run.register_model(model, name="fraud", sample_input=x)
    st.tracking.set_run_archived(run.id, True)
    hold = HoldService(st.store).place("version", version.ref, reason="model audit")
    clock.advance(seconds=timedelta(days=40).total_seconds())

    dry = st.tracking.collect_garbage()

    assert dry["dry_run"] is True and dry["runs"] == [] and dry["artifacts"] == []
    assert dry["held"][0]["hold"] == hold.id
    assert "(version fraud:1)" in dry["held"][0]["reason"]


def test_a_blob_a_model_version_uses_is_never_collected(st: Steward, tmp_path: Path) -> None:
    model, x = tiny_classifier()
    with st.start_run("fraud") as run:
        version = run.register_model(model, name="fraud", sample_input=x)
    manifest = version.artifact_digest
    copy = tmp_path / "manifest.json"
    with st.store.artifacts.open(manifest) as handle:
        copy.write_bytes(handle.read())  # the same bytes, logged by an unrelated run
    with st.start_run("scratch") as scratch:
        scratch.log_artifact(copy)
    st.tracking.set_run_archived(scratch.id, True)

    report = st.tracking.collect_garbage(older_than_days=0, dry_run=False)

    assert report["runs"] == [scratch.id] and report["artifacts"] == []
    assert report["kept_in_use"] == [
        {"digest": manifest, "reason": f"part of model version {version.ref}", "hold": None}
    ]
    assert st.store.artifacts.exists(manifest)
    assert st.registry.load(version.ref).predict(x).shape == (4,)


def test_collection_without_a_guard_refuses_to_guess(
    tmp_path: Path, database_url: str, clock: FrozenClock
) -> None:
    raw = Store.open(
        StoreSettings(home=tmp_path / "raw", database_url=database_url, user="root"), clock=clock
    )
    try:
        raw.initialize()
        with pytest.raises(ConfigurationError, match="no retention guard"):
            TrackingService(raw).collect_garbage(older_than_days=0)
    finally:
        raw.close()


def test_the_guard_is_a_retention_guard_and_asks_nothing_of_an_empty_list(st: Steward) -> None:
    guard = GovernanceRetentionGuard(st.store)
    assert isinstance(guard, RetentionGuard)
    assert guard.kept_runs([]) == {} and guard.kept_blobs([]) == {}
    assert guard.kept_blobs(["0" * 64]) == {}
    assert KeepReason("x").as_dict() == {"reason": "x", "hold": None}


def test_a_runs_hold_keeps_runs_started_in_its_range(
    st: Steward, tmp_path: Path, clock: FrozenClock
) -> None:
    early, _ = _archived_run(st, tmp_path, "early")
    clock.advance(seconds=timedelta(days=10).total_seconds())
    late, late_blob = _archived_run(st, tmp_path, "late")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    HoldService(st.store).place(
        "runs", start=start, end=clock.now() - timedelta(days=5), reason="period under review"
    )
    report = st.tracking.collect_garbage(older_than_days=0, dry_run=False)
    assert [h["run"] for h in report["held"]] == [early]
    assert report["runs"] == [late] and report["artifacts"] == [late_blob]
