"""The module-level shortcuts: ``steward.start_run``, ``steward.log_metric``, ..."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import steward
from steward.core import NotFoundError
from steward.sdk import Steward, _fluent
from steward.tracking import RunStatus


@pytest.fixture
def default_client(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Steward]:
    """Point the default client at a fresh home for one test."""
    monkeypatch.setenv("STEWARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STEWARD_DATABASE_URL", database_url)
    monkeypatch.delenv("STEWARD_ARTIFACT_URI", raising=False)
    monkeypatch.setattr(_fluent, "_client", None)
    monkeypatch.setattr(_fluent, "_state", type(_fluent._state)())
    client = _fluent._default_client()
    yield client
    client.close()


def test_shortcuts_log_on_the_innermost_run(default_client: Steward) -> None:
    with steward.start_run("fraud", params={"model": "hgb"}) as outer:
        steward.log_metric("auc", 0.8)
        with steward.start_run("fraud") as trial:
            assert steward.active_run() is trial
            steward.log_metric("auc", 0.9, step=3)
            steward.log_metrics({"loss": 0.2})
            steward.log_param("depth", 4)
            steward.set_tag("team", "risk")
        assert steward.active_run() is outer
    assert steward.active_run() is None
    tracking = default_client.tracking
    stored_outer, stored_trial = tracking.get_run(outer.id), tracking.get_run(trial.id)
    assert stored_trial.parent_run_id == outer.id
    assert stored_outer.parent_run_id is None
    assert stored_outer.metrics == {"auc": 0.8}
    assert (stored_trial.metrics, stored_trial.params, stored_trial.tags) == (
        {"auc": 0.9, "loss": 0.2},
        {"depth": 4},
        {"team": "risk"},
    )
    assert [m.step for m in tracking.metric_history(trial.id, "auc")] == [3]
    assert {stored_outer.status, stored_trial.status} == {RunStatus.FINISHED}


def test_end_run_ends_the_innermost_run(default_client: Steward) -> None:
    outer = steward.start_run("fraud")
    inner = steward.start_run("fraud")
    steward.end_run(RunStatus.KILLED)
    assert steward.active_run() is outer
    steward.end_run()
    tracking = default_client.tracking
    assert tracking.get_run(inner.id).status is RunStatus.KILLED
    assert tracking.get_run(outer.id).status is RunStatus.FINISHED
    assert steward.active_run() is None


def test_shortcuts_without_an_active_run_say_so(default_client: Steward) -> None:
    for call in (
        lambda: steward.log_metric("auc", 0.9),
        lambda: steward.log_param("lr", 0.1),
        steward.end_run,
    ):
        with pytest.raises(NotFoundError, match=r"no active run; call steward.start_run\(\) first"):
            call()
