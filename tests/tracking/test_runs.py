"""Experiments and runs: lifecycle, params, metrics, tags, notes, artifacts, audit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from steward.core import ConflictError, InvalidInputError, NotFoundError
from steward.sdk import Steward
from steward.tracking import Metric, RunStatus, TrackingService


def test_experiment_create_get_and_conflict(tracking: TrackingService) -> None:
    exp = tracking.create_experiment("fraud", description="card fraud", tags={"team": "risk"})
    assert tracking.get_experiment("fraud") == exp
    assert tracking.get_experiment(exp.id).name == "fraud"
    with pytest.raises(ConflictError, match="'fraud' already exists"):
        tracking.create_experiment("fraud")


def test_experiment_not_found_lists_existing(tracking: TrackingService) -> None:
    tracking.create_experiment("churn")
    with pytest.raises(NotFoundError, match=r"'frud' does not exist; existing: 'churn'"):
        tracking.get_experiment("frud")


def test_experiment_archive_hides_and_blocks_new_runs(tracking: TrackingService) -> None:
    tracking.create_experiment("old")
    tracking.set_experiment_archived("old", True)
    assert [e.name for e in tracking.list_experiments()] == []
    assert [e.name for e in tracking.list_experiments(include_archived=True)] == ["old"]
    with pytest.raises(ConflictError, match="archived"):
        tracking.start_run("old")
    tracking.set_experiment_archived("old", False)
    tracking.start_run("old").end()


def test_run_context_manager_finishes(tracking: TrackingService) -> None:
    with tracking.start_run(
        "fraud", name="hgb-1", params={"lr": 0.1, "depth": 3, "model": "hgb", "early": True}
    ) as run:
        run.log_metric("auc", 0.9)
    stored = tracking.get_run(run.id)
    assert stored.status is RunStatus.FINISHED
    assert stored.name == "hgb-1"
    assert stored.params == {"depth": 3, "early": True, "lr": 0.1, "model": "hgb"}
    assert isinstance(stored.params["depth"], int)
    assert stored.metrics == {"auc": 0.9}
    assert stored.end_time is not None and stored.wall_seconds is not None


def test_run_context_manager_records_failure(tracking: TrackingService) -> None:
    with pytest.raises(ZeroDivisionError):
        with tracking.start_run("fraud") as run:
            run.log_metric("loss", 1.0)
            _ = 1 / 0
    stored = tracking.get_run(run.id)
    assert stored.status is RunStatus.FAILED
    assert "ZeroDivisionError" in (stored.error or "")
    assert stored.metrics == {"loss": 1.0}  # buffered values were not lost


def test_params_are_immutable(tracking: TrackingService) -> None:
    with tracking.start_run("fraud", params={"lr": 0.1}) as run:
        run.log_param("lr", 0.1)  # same value: fine
        with pytest.raises(ConflictError, match=r"param 'lr' .* already 0.1"):
            run.log_param("lr", 0.2)
        with pytest.raises(ConflictError, match="immutable"):
            run.log_param("lr", "0.1")  # same text, other type
    assert tracking.get_run(run.id).params == {"lr": 0.1}


def test_params_conflict_detected_across_handles(tracking: TrackingService) -> None:
    run = tracking.start_run("fraud")
    run.log_param("depth", 3)
    with pytest.raises(ConflictError):
        tracking._log_params(run.id, {"depth": 4})
    run.end()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("auc", "high", "metric 'auc' must be a number, got str"),
        ("auc", None, "metric 'auc' must be a number"),
        ("auc", True, "metric 'auc' must be a number, got bool"),
        ("auc", float("nan"), "only finite"),
        ("bad\nkey", 1.0, "forbidden characters"),
        ("x" * 251, 1.0, "the limit is 250"),
        ("", 1.0, "non-empty"),
    ],
)
def test_metric_bad_input(tracking: TrackingService, key: str, value: object, message: str) -> None:
    with tracking.start_run("fraud") as run:
        with pytest.raises(InvalidInputError, match=message):
            run.log_metric(key, value)  # type: ignore[arg-type]
        run.log_metric("ok", 1.0)
    assert tracking.get_run(run.id).metrics == {"ok": 1.0}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1, 2], "must be str, int, float or bool; got list"),
        (None, "got NoneType"),
        (float("inf"), "finite"),
    ],
)
def test_param_bad_input(tracking: TrackingService, value: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        tracking.start_run("fraud", params={"p": value})


def test_numpy_values_are_accepted(tracking: TrackingService) -> None:
    with tracking.start_run("fraud", params={"n": np.int64(5), "f": np.float32(0.5)}) as run:
        run.log_metric("auc", np.float64(0.75))
    stored = tracking.get_run(run.id)
    assert stored.params == {"f": 0.5, "n": 5}
    assert stored.metrics == {"auc": 0.75}


def test_metric_history_in_order_with_auto_steps(tracking: TrackingService) -> None:
    with tracking.start_run("fraud") as run:
        for value in (0.5, 0.6, 0.7):
            run.log_metric("auc", value)
        run.log_metric("auc", 0.1, step=10)
        run.log_batch([("loss", 2.0, 0), Metric("loss", 1.0, 1, 5)])
    history = tracking.metric_history(run.id, "auc")
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 0.6), (2, 0.7), (10, 0.1)]
    assert tracking.get_run(run.id).metrics == {"auc": 0.1, "loss": 1.0}


def test_metric_history_unknown_run(tracking: TrackingService) -> None:
    with pytest.raises(NotFoundError, match="run 'nope' does not exist"):
        tracking.metric_history("nope", "auc")


def test_unknown_run_id(tracking: TrackingService) -> None:
    with pytest.raises(NotFoundError, match="run 'missing' does not exist"):
        tracking.get_run("missing")


def test_ended_run_refuses_values(tracking: TrackingService) -> None:
    run = tracking.start_run("fraud")
    run.end()
    with pytest.raises(ConflictError, match="has ended"):
        run.log_metric("auc", 1.0)
    run.end()  # ending twice is harmless
    assert tracking.get_run(run.id).status is RunStatus.FINISHED


def test_tags_are_mutable_and_notes_append(tracking: TrackingService) -> None:
    with tracking.start_run("fraud", tags={"team": "risk"}) as run:
        run.set_tag("team", "fraud-ops")
        run.note("first try")
        run.note("second")
    stored = tracking.get_run(run.id)
    assert stored.tags == {"team": "fraud-ops"}
    assert stored.notes == "first try\nsecond"


def test_nested_runs(tracking: TrackingService) -> None:
    with tracking.start_run("hpo") as parent:
        with tracking.start_run("hpo", parent=parent) as child:
            child.log_metric("auc", 0.8)
    assert tracking.get_run(child.id).parent_run_id == parent.id
    with pytest.raises(NotFoundError, match="parent run"):
        tracking.start_run("hpo", parent="ghost")


def test_seed_is_recorded_and_applied(tracking: TrackingService) -> None:
    with tracking.start_run("fraud", seed=42) as run:
        first = np.random.random()
    with tracking.start_run("fraud", seed=42):
        second = np.random.random()
    assert first == second
    assert tracking.get_run(run.id).seed == 42


def test_artifacts_file_and_folder(
    tracking: TrackingService, client: Steward, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"w" * 100)
    (folder / "sub" / "config.json").write_text("{}")
    single = tmp_path / "report.txt"
    single.write_text("ok")
    with tracking.start_run("fraud") as run:
        assert run.log_artifact(folder) == ["model/sub/config.json", "model/weights.bin"]
        run.log_artifact(single, name="reports/summary.txt")
    listed = {a["path"]: a for a in tracking.list_artifacts(run.id)}
    assert set(listed) == {"model/sub/config.json", "model/weights.bin", "reports/summary.txt"}
    assert client.store.artifacts.get(listed["reports/summary.txt"]["digest"]) == b"ok"
    with pytest.raises(NotFoundError, match="does not exist"):
        tracking.log_artifact(run.id, tmp_path / "missing")


def test_every_mutation_is_audited(tracking: TrackingService, client: Steward) -> None:
    with tracking.start_run("fraud", params={"lr": 0.1}) as run:
        run.log_param("depth", 2)
        run.set_tag("team", "risk")
        run.log_metric("auc", 0.9)
        run.log_metric("loss", 0.3)
        run.log_metric("auc", 0.91)
    tracking.set_run_archived(run.id, True)
    events = client.store.audit.list_events(object_id=run.id, newest_first=False)
    assert [e.action for e in events] == [
        "run.start",
        "run.params.log",
        "run.tags.set",
        "run.end",  # the values written with the end are counted in its event
        "run.archive",
    ]
    assert events[0].details["params"] == {"lr": "0.1"}
    assert events[3].details["metrics"] == {"values": 3, "keys": ["auc", "loss"]}
    assert client.store.audit.verify().ok


def test_flushed_metrics_are_audited_per_flush(tracking: TrackingService, client: Steward) -> None:
    with tracking.start_run("fraud") as run:
        run.log_metrics({"auc": 0.9, "loss": 0.3})
        assert run.flush() == 2
    events = client.store.audit.list_events(object_id=run.id, newest_first=False)
    assert [e.action for e in events] == ["run.start", "run.metrics.log", "run.end"]
    assert events[1].details == {"values": 2, "keys": ["auc", "loss"]}
    assert "metrics" not in events[2].details


def test_compare_runs_marks_differences(tracking: TrackingService) -> None:
    with tracking.start_run("fraud", params={"model": "hgb", "lr": 0.1}) as a:
        a.log_metric("auc", 0.9)
    with tracking.start_run("fraud", params={"model": "hgb", "lr": 0.2}) as b:
        b.log_metric("auc", 0.8)
    table = tracking.compare_runs([a.id, b.id])
    params = {row["key"]: row for row in table["params"]}
    assert params["lr"]["differs"] and not params["model"]["differs"]
    assert table["metrics"][0]["values"] == [0.9, 0.8]
    with pytest.raises(NotFoundError, match="ghost"):
        tracking.compare_runs([a.id, "ghost"])
    with pytest.raises(InvalidInputError, match="at least two"):
        tracking.compare_runs([a.id])


def test_dataset_logged_by_two_runs_is_one_version(tracking: TrackingService) -> None:
    import pyarrow as pa

    table = pa.table({"amount": [1.0, 2.5, None, 4.0], "city": ["a", "b", "a", None]})
    with tracking.start_run("fraud") as first:
        one = first.log_dataset(table, name="tx", role="train")
    with tracking.start_run("fraud") as second:
        two = second.log_dataset(table, name="tx", role="holdout")
    assert one.id == two.id
    assert one.digest.startswith("sha256:")
    assert (one.num_rows, one.num_columns) == (4, 2)
    assert [c["name"] for c in one.schema] == ["amount", "city"]
    assert set(tracking.runs_using_dataset(one.digest)) == {first.id, second.id}
    assert [d.role for d in tracking.run_datasets(second.id)] == ["holdout"]
    changed = pa.table({"amount": [1.0, 2.5, None, 4.5], "city": ["a", "b", "a", None]})
    with tracking.start_run("fraud") as third:
        other = third.log_dataset(changed, name="tx", role="train")
    assert other.digest != one.digest


def test_dataset_bad_input(tracking: TrackingService, tmp_path: Path) -> None:
    with tracking.start_run("fraud") as run:
        with pytest.raises(InvalidInputError):
            run.log_dataset(object(), name="tx")
        with pytest.raises((InvalidInputError, NotFoundError)):
            run.log_dataset(tmp_path / "missing.parquet", name="tx")
