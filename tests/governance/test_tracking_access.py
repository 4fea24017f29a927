"""Tracking under governance: who may read runs, who may record them, who may collect."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.governance._support import acting_as, tiny_classifier

from steward.core import Authorizer, PermissionDeniedError, Principal, ScopeAuthorizer
from steward.governance import IdentityService
from steward.registry import RegistryService, RegistrySettings
from steward.store import Store
from steward.tracking import ActiveRun, TrackingService


@pytest.fixture
def recorded(store: Store, tmp_path: Path) -> tuple[str, str]:
    """A finished run with a param, a metric, a tag and an artifact, recorded by the operator."""
    tracking = TrackingService(store, capture_environment=False)
    (tmp_path / "report.txt").write_text("auc 0.91")
    with tracking.start_run("fraud", params={"lr": 0.1}) as run:
        run.log_metric("auc", 0.91)
        run.set_tag("team", "risk")
        run.log_artifact(tmp_path / "report.txt")
    return run.id, "fraud"


def _denied(store: Store) -> list[tuple[str, str | None]]:
    return [
        (e.details["scope"], e.details["resource"])
        for e in store.audit.list_events(action="access.denied", newest_first=False)
    ]


def test_a_viewer_reads_runs(
    identities: IdentityService, store: Store, recorded: tuple[str, str]
) -> None:
    run_id, experiment = recorded
    identities.create_user("vic", roles=["viewer"])
    viewer = TrackingService(acting_as(store, "vic"), capture_environment=False)
    assert viewer.get_run(run_id).params == {"lr": 0.1}
    assert viewer.get_experiment(experiment).name == "fraud"
    assert [e.name for e in viewer.list_experiments()] == ["fraud"]
    assert [r.id for r in viewer.search_runs(experiment).items] == [run_id]
    assert [m.value for m in viewer.metric_history(run_id, "auc")] == [0.91]
    assert [a["path"] for a in viewer.list_artifacts(run_id)] == ["report.txt"]
    assert viewer.run_datasets(run_id) == []
    assert viewer.reproduction(run_id)["params"] == {"lr": 0.1}
    assert _denied(store) == []


def test_a_viewer_is_refused_every_change_and_each_refusal_is_audited(
    identities: IdentityService, store: Store, recorded: tuple[str, str], tmp_path: Path
) -> None:
    run_id, _ = recorded
    identities.create_user("vic", roles=["viewer"])
    viewer = TrackingService(acting_as(store, "vic"), capture_environment=False)
    before = store.audit.head()
    refused = [
        lambda: viewer.start_run("fraud"),
        lambda: viewer.create_experiment("churn"),
        lambda: viewer.set_experiment_archived("fraud", True),
        lambda: viewer.set_run_archived(run_id, True),
        lambda: viewer.set_tags(run_id, {"team": "growth"}),
        lambda: viewer.add_note(run_id, "looks good"),
        lambda: viewer.log_artifact(run_id, tmp_path / "report.txt"),
        lambda: ActiveRun(viewer, run_id),  # a handle on someone else's run is a write
    ]
    for attempt in refused:
        with pytest.raises(PermissionDeniedError, match=r"'vic' lacks the scope 'models:write'"):
            attempt()
    with pytest.raises(PermissionDeniedError, match=r"'vic' lacks the scope 'admin'"):
        viewer.collect_garbage(older_than_days=0, dry_run=False)
    assert _denied(store) == [
        ("models:write", "experiment:fraud"),
        ("models:write", "experiment:churn"),
        ("models:write", "experiment:fraud"),
        *[("models:write", f"run:{run_id}")] * 5,
        ("admin", None),
    ]
    events = store.audit.list_events(newest_first=False, limit=None)
    assert {e.action for e in events if before is None or e.seq > before.seq} == {"access.denied"}
    run = TrackingService(store).get_run(run_id)
    assert run.archived_at is None and run.tags == {"team": "risk"} and run.notes == ""
    assert store.audit.verify().ok


def test_a_data_scientist_tracks_runs(identities: IdentityService, store: Store) -> None:
    identities.create_user("dana", roles=["data-scientist"])
    dana = TrackingService(acting_as(store, "dana"), capture_environment=False)
    with dana.start_run("fraud", params={"lr": 0.1}) as run:
        run.log_metrics({"auc": 0.9, "loss": 0.3}, step=1)
        run.log_param("depth", 3)
        run.set_tag("stage", "trial")
        run.note("first try")
    dana.set_run_archived(run.id, True)
    found = dana.get_run(run.id)
    assert found.user == "dana" and found.metrics == {"auc": 0.9, "loss": 0.3}
    assert found.archived_at is not None
    with pytest.raises(PermissionDeniedError, match="'admin'"):
        dana.collect_garbage()  # deleting bytes is an administrator's call
    ml = "ml-engineer"
    identities.create_user("mel", roles=[ml])
    with TrackingService(acting_as(store, "mel"), capture_environment=False).start_run("x") as r:
        r.log_metric("auc", 0.8)


def test_a_token_narrower_than_its_owner_caps_tracking(
    identities: IdentityService, store: Store
) -> None:
    identities.create_user("dana", roles=["data-scientist"])
    read_only = TrackingService(
        acting_as(store, "dana", scopes=["models:read"]), capture_environment=False
    )
    with pytest.raises(PermissionDeniedError, match="token in use carries only models:read"):
        read_only.start_run("fraud")
    assert read_only.list_experiments() == []


def test_a_grant_on_a_model_covers_the_runs_that_trained_it(
    identities: IdentityService, store: Store, recorded: tuple[str, str]
) -> None:
    other, _ = recorded
    tracking = TrackingService(store, capture_environment=False)
    registry = RegistryService(store, tracking, RegistrySettings())
    model, x = tiny_classifier()
    with tracking.start_run("fraud") as run:
        run.log_metric("auc", 0.9)
    registry.register(model, name="fraud", run_id=run.id, sample_input=x)
    identities.create_user("ria")
    identities.grant_role("ria", "model-risk", resource="model:fraud")
    ria = TrackingService(acting_as(store, "ria"), capture_environment=False)
    assert ria.get_run(run.id).metrics == {"auc": 0.9}  # trained fraud:1
    with pytest.raises(
        PermissionDeniedError,
        match=rf"'ria' lacks the scope 'models:read' on run:{other}; .* grant ROLE --to ria$",
    ):
        ria.get_run(other)  # trained nothing ria may see; no `--on` hint for a run
    with pytest.raises(PermissionDeniedError, match="'models:write'"):
        ria.set_tags(run.id, {"ok": "yes"})  # model-risk reads, it does not write
    with pytest.raises(PermissionDeniedError, match="'models:read'"):
        ria.search_runs("fraud")  # listing needs a global grant


class _CountingAuthorizer:
    """Grants what the principal holds and counts the checks (a real Authorizer, not a mock)."""

    def __init__(self) -> None:
        self.checks: list[tuple[str, str | None]] = []
        self._inner: Authorizer = ScopeAuthorizer()

    def check(self, principal: Principal, scope: str, *, resource: str | None = None) -> None:
        self.checks.append((scope, resource))
        self._inner.check(principal, scope, resource=resource)


def test_metric_values_cost_no_check_only_the_handle_and_each_flush_do(store: Store) -> None:
    counting = _CountingAuthorizer()
    tracking = TrackingService(store.with_authorizer(counting), capture_environment=False)
    run = tracking.start_run("fraud")
    for step in range(2_000):
        run.log_metric("loss", 1.0 / (step + 1))
    assert len(counting.checks) == 2  # start (experiment) + the handle (run)
    run.flush()
    run.end()
    assert counting.checks == [
        ("models:write", "experiment:fraud"),
        ("models:write", f"run:{run.id}"),
        ("models:write", f"run:{run.id}"),  # the flush
        ("models:write", f"run:{run.id}"),  # the end
    ]
    assert len(tracking.metric_history(run.id, "loss")) == 2_000
