"""Retention end to end: plans with reasons, audited deletion, holds and references respected."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.governance._support import amounts, register_fraud_model

from steward.core import (
    ConflictError,
    FrozenClock,
    NotFoundError,
    PermissionDeniedError,
    Principal,
)
from steward.governance import (
    HoldService,
    LegalHoldError,
    RetentionService,
    parse_rules,
)
from steward.sdk import Steward

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RULES = parse_rules(["runs: archived for 90d", "dataset_versions: unreferenced for 180d"])


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def retention(st: Steward) -> RetentionService:
    return RetentionService(st.store, st.registry)


def _run(st: Steward, tmp_path: Path, content: str, *, name: str, register: bool = False) -> str:
    """A finished run with one artifact and one dataset; optionally a registered model."""
    path = tmp_path / f"{name}.txt"
    path.write_text(content, encoding="utf-8")
    with st.start_run("fraud", name=name) as run:
        run.log_artifact(path)
        run.log_dataset(amounts(), name=f"data-{name}")
        if register:
            register_fraud_model(run)
        return str(run.id)


def _archive(st: Steward, *run_ids: str) -> None:
    for run_id in run_ids:
        st.tracking.set_run_archived(run_id, True)


def _digest_of(st: Steward, run_id: str) -> str:
    return str(st.tracking.list_artifacts(run_id)[0]["digest"])


def test_plan_lists_reasons_and_changes_nothing(
    st: Steward, retention: RetentionService, tmp_path: Path, clock: FrozenClock
) -> None:
    old = _run(st, tmp_path, "old", name="old")
    produced = _run(st, tmp_path, "model run", name="prod", register=True)
    _archive(st, old, produced)
    clock.advance(days=100)
    young = _run(st, tmp_path, "young", name="young")
    _archive(st, young)

    plan = retention.plan(RULES)

    runs = {i.id: i for i in plan.items if i.kind == "run"}
    assert runs[old].action == "delete"
    assert "archived on 2026-01-05" in runs[old].reason
    assert runs[produced].action == "keep"
    assert "produced fraud:1 (registered)" in runs[produced].reason
    assert young not in runs  # within its period
    assert st.tracking.get_run(old).id == old  # nothing deleted


def test_apply_deletes_runs_blobs_and_is_idempotent(
    st: Steward, retention: RetentionService, tmp_path: Path, clock: FrozenClock
) -> None:
    old = _run(st, tmp_path, "only mine", name="old")
    shared_a = _run(st, tmp_path, "shared", name="a")
    shared_b = _run(st, tmp_path, "shared", name="b")
    _archive(st, old, shared_a)
    digest_old, digest_shared = _digest_of(st, old), _digest_of(st, shared_a)
    clock.advance(days=91)

    plan = retention.apply(RULES)

    assert plan.deleted["runs"] == 2
    assert plan.deleted["artifacts"] == 1
    assert not st.store.artifacts.exists(digest_old)
    assert st.store.artifacts.exists(digest_shared)  # run b still uses the same bytes
    assert st.tracking.get_run(shared_b).id == shared_b
    with pytest.raises(NotFoundError, match=old):
        st.tracking.get_run(old)
    kinds = [e.action for e in st.store.audit.list_events(limit=10)]
    assert "retention.delete" in kinds
    assert "retention.apply" in kinds
    again = retention.apply(RULES)
    assert set(again.deleted.values()) == {0}
    assert st.store.audit.verify().ok


def test_unreferenced_datasets_go_after_their_runs(
    st: Steward, retention: RetentionService, tmp_path: Path, clock: FrozenClock
) -> None:
    old = _run(st, tmp_path, "x", name="old")
    kept = _run(st, tmp_path, "y", name="kept")
    _archive(st, old)
    clock.advance(days=200)

    plan = retention.apply(RULES)

    datasets = {i.label.split("@")[0]: i for i in plan.items if i.kind == "dataset_version"}
    assert datasets["data-old"].action == "delete"
    assert datasets["data-kept"].action == "keep"
    assert f"used by run {kept}" in datasets["data-kept"].reason
    assert plan.deleted["dataset_versions"] == 1


def test_production_model_artifacts_are_never_collected(
    st: Steward, retention: RetentionService, tmp_path: Path, clock: FrozenClock
) -> None:
    produced = _run(st, tmp_path, "prod", name="prod", register=True)
    st.registry.transition("fraud:1", "production", reason="go live")
    _archive(st, produced)
    clock.advance(days=1000)

    plan = retention.apply(RULES)

    item = next(i for i in plan.items if i.id == produced)
    assert item.action == "keep"
    assert "fraud:1 (production)" in item.reason
    assert plan.deleted["runs"] == 0
    assert st.registry.load("fraud:1") is not None


def test_held_runs_are_kept_and_named(
    st: Steward, retention: RetentionService, tmp_path: Path, clock: FrozenClock
) -> None:
    run_id = _run(st, tmp_path, "held", name="held")
    st.tracking.set_tags(run_id, {"subject": "cust-42"})
    _archive(st, run_id)
    hold = HoldService(st.store).place("subject", "cust-42", reason="DSAR 2026-7")
    clock.advance(days=365)

    plan = retention.apply(RULES)

    item = next(i for i in plan.items if i.id == run_id)
    assert item.action == "keep"
    assert item.hold_id == hold.id
    assert "DSAR 2026-7" in item.reason
    assert st.tracking.get_run(run_id).id == run_id


def test_delete_run_under_hold_is_refused_and_audited(
    st: Steward, retention: RetentionService, tmp_path: Path
) -> None:
    run_id = _run(st, tmp_path, "held", name="held")
    HoldService(st.store).place(
        "runs", start=datetime(2026, 1, 1, tzinfo=UTC), reason="litigation hold"
    )
    before = st.store.audit.head()

    with pytest.raises(LegalHoldError, match="litigation hold"):
        retention.delete_run(run_id, reason="cleanup")

    assert st.tracking.get_run(run_id).id == run_id
    event = st.store.audit.list_events(limit=1)[0]
    assert event.action == "retention.refused"
    assert event.object_id == run_id
    assert before is not None


def test_delete_run_of_a_model_version_is_refused(
    st: Steward, retention: RetentionService, tmp_path: Path
) -> None:
    run_id = _run(st, tmp_path, "m", name="m", register=True)
    with pytest.raises(ConflictError, match=r"produced fraud:1"):
        retention.delete_run(run_id, reason="cleanup")
    assert st.tracking.get_run(run_id).id == run_id


def test_retention_needs_admin(st: Steward, tmp_path: Path) -> None:
    store = st.store.as_principal(Principal.of("eve", roles=["viewer"], scopes=["models:read"]))
    with pytest.raises(PermissionDeniedError):
        RetentionService(store, st.registry).apply(RULES)
    assert st.store.audit.list_events(limit=1)[0].action == "access.denied"


def test_parent_and_children_go_together_or_stay_together(
    st: Steward, retention: RetentionService, tmp_path: Path, clock: FrozenClock
) -> None:
    with st.start_run("hpo", name="parent") as parent:
        with st.start_run("hpo", name="kept-child", parent=parent.id) as child:
            kept_child = child.id
        with st.start_run("hpo", name="gone-child", parent=parent.id) as child:
            gone_child = child.id
    with st.start_run("hpo", name="parent2") as parent2:
        with st.start_run("hpo", name="child2", parent=parent2.id) as child:
            child2 = child.id
    _archive(st, parent.id, gone_child, parent2.id, child2)
    clock.advance(days=91)

    plan = retention.apply(RULES)

    runs = {i.id: i for i in plan.items if i.kind == "run"}
    assert runs[parent.id].action == "keep"
    assert f"parent of run {kept_child}" in runs[parent.id].reason
    assert runs[gone_child].action == "delete"
    assert runs[parent2.id].action == runs[child2].action == "delete"
    assert plan.deleted["runs"] == 3
    assert st.tracking.get_run(parent.id).id == parent.id


def test_subject_hold_keeps_the_dataset_named_after_the_subject(
    st: Steward, retention: RetentionService, tmp_path: Path, clock: FrozenClock
) -> None:
    run_id = _run(st, tmp_path, "x", name="cust-7")  # its dataset is named data-cust-7
    _archive(st, run_id)
    HoldService(st.store).place("subject", "data-cust-7", reason="DSAR 12")
    clock.advance(days=365)

    plan = retention.apply(RULES)

    dataset = next(i for i in plan.items if i.kind == "dataset_version")
    assert dataset.action == "keep"
    assert "DSAR 12" in dataset.reason
    assert plan.deleted["dataset_versions"] == 0
    assert plan.deleted["runs"] == 1  # the run itself was not held


def test_a_hold_placed_then_released_lets_retention_proceed(
    st: Steward, retention: RetentionService, tmp_path: Path, clock: FrozenClock
) -> None:
    run_id = _run(st, tmp_path, "x", name="x")
    _archive(st, run_id)
    holds = HoldService(st.store)
    hold = holds.place("runs", start=START, reason="audit")
    clock.advance(days=91)
    assert retention.apply(RULES).deleted["runs"] == 0
    holds.release(hold.id, reason="audit done")
    assert retention.apply(RULES).deleted["runs"] == 1
