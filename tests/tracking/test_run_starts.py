"""A run's start waits in memory until the run's first write, at most ``flush_interval``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from steward.core import NotFoundError
from steward.sdk import Steward, connect
from steward.tracking import RunStatus, TrackingService


def stored_status(client: Steward, run_id: str) -> str | None:
    """The run's status as the database holds it (a plain read: writes nothing)."""
    with client.store.database.read() as conn:
        status = conn.execute(
            sa.text("SELECT status FROM runs WHERE id = :id"), {"id": run_id}
        ).scalar()
    return None if status is None else str(status)


def actions(client: Steward, run_id: str) -> list[str]:
    events = client.store.audit.list_events(object_id=run_id, newest_first=False)
    return [e.action for e in events]


def test_start_is_written_with_the_first_write(tracking: TrackingService, client: Steward) -> None:
    run = tracking.start_run("fraud", params={"lr": 0.1}, flush_interval=600)
    assert stored_status(client, run.id) is None  # waits in memory
    run.log_param("depth", 3)
    assert stored_status(client, run.id) == "running"
    assert actions(client, run.id) == ["run.start", "run.params.log"]
    run.end()
    assert tracking.get_run(run.id).params == {"depth": 3, "lr": 0.1}


def test_a_short_run_is_written_once_at_its_end(tracking: TrackingService, client: Steward) -> None:
    with tracking.start_run("fraud", params={"lr": 0.1}, tags={"team": "risk"}) as run:
        run.log_metrics({"auc": 0.9, "loss": 0.2})
        assert stored_status(client, run.id) is None
    stored = tracking.get_run(run.id)
    assert (stored.status, stored.params, stored.tags) == (
        RunStatus.FINISHED,
        {"lr": 0.1},
        {"team": "risk"},
    )
    assert stored.metrics == {"auc": 0.9, "loss": 0.2}
    start, end = client.store.audit.list_events(object_id=run.id, newest_first=False)
    assert (start.action, end.action, end.seq) == ("run.start", "run.end", start.seq + 1)
    # the event is stamped when written; the details keep when the run started
    assert start.details["started"] == stored.start_time.isoformat(timespec="microseconds")
    assert start.ts >= stored.start_time
    assert client.store.audit.verify().ok


def test_lookups_by_id_write_the_start(tracking: TrackingService, client: Steward) -> None:
    run = tracking.start_run("fraud", flush_interval=600)
    assert tracking.get_run(run.id).status is RunStatus.RUNNING
    assert stored_status(client, run.id) == "running"
    other = tracking.start_run("fraud", flush_interval=600)
    assert tracking.metric_history(other.id, "auc") == []
    assert stored_status(client, other.id) == "running"
    run.end()
    other.end()


def test_search_finds_runs_started_in_this_process(tracking: TrackingService) -> None:
    run = tracking.start_run("fraud", params={"model": "hgb"}, flush_interval=600)
    found = tracking.search_runs("fraud", filter="params.model = 'hgb'").items
    assert [r.id for r in found] == [run.id]
    run.end()


def test_a_child_start_writes_its_parent(tracking: TrackingService, client: Steward) -> None:
    parent = tracking.start_run("hpo", flush_interval=600)
    child = tracking.start_run("hpo", parent=parent, flush_interval=600)
    assert stored_status(client, parent.id) == "running"
    assert stored_status(client, child.id) is None
    child.end()
    parent.end()
    assert tracking.get_run(child.id).parent_run_id == parent.id


def test_flusher_writes_a_waiting_start_within_the_interval(
    tracking: TrackingService, client: Steward
) -> None:
    run = tracking.start_run("fraud", flush_interval=0.05)
    deadline = time.monotonic() + 20  # generous: the machine may be busy
    while stored_status(client, run.id) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stored_status(client, run.id) == "running"
    assert actions(client, run.id) == ["run.start"]
    run.end()
    assert actions(client, run.id) == ["run.start", "run.end"]


def test_another_home_does_not_see_a_waiting_start(tmp_path: Path) -> None:
    def open_home(name: str) -> Steward:
        home = tmp_path / name
        url = f"sqlite:///{home / 'steward.db'}"
        return connect(home=home, database_url=url, capture_environment=False)

    with open_home("a") as first, open_home("b") as second:
        run = first.start_run("fraud", flush_interval=600)
        with pytest.raises(NotFoundError, match="does not exist"):
            second.tracking.set_tags(run.id, {"team": "risk"})
        with pytest.raises(NotFoundError, match="does not exist"):
            second.tracking.get_run(run.id)
        assert stored_status(first, run.id) == "running"  # written in its own home
        run.end()
        assert first.tracking.get_run(run.id).tags == {}
