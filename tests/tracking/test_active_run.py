"""A run's handle: ending (and retrying a failed end), input checks, flushing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from steward.core import ConflictError, InvalidInputError, NotFoundError
from steward.sdk import connect
from steward.tracking import ActiveRun, Metric, RunStatus, TrackingService
from steward.tracking import _runs as runs_module


class DiskFullError(RuntimeError):
    """Stands for a write that fails (disk full, lost connection)."""


def fail_once(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Make the prepared statement ``name`` of run writes raise on its next call only."""
    real: Callable[..., Any] = getattr(runs_module, name)
    calls: list[int] = []

    def flaky(conn: Any, values: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise DiskFullError(f"{name} failed")
        return real(conn, values)

    monkeypatch.setattr(runs_module, name, flaky)
    return calls


def _history(tracking: TrackingService, run_id: str, key: str) -> list[tuple[float, int]]:
    return [(m.value, m.step) for m in tracking.metric_history(run_id, key)]


@pytest.mark.parametrize(
    ("statement", "written_first"),
    [
        # the start still in memory: the end inserts the run already ended
        ("INSERT_RUN", False),
        ("INSERT_METRICS", False),
        ("INSERT_LATEST_METRICS", False),
        # the start written by an earlier flush: the end updates the run
        ("END_RUN", True),
        ("INSERT_METRICS", True),
        ("UPSERT_LATEST_METRICS", True),
    ],
)
def test_end_failure_loses_nothing_and_can_be_retried(
    tracking: TrackingService, monkeypatch: pytest.MonkeyPatch, statement: str, written_first: bool
) -> None:
    run = tracking.start_run("fraud")
    if written_first:
        assert run.flush() == 0  # writes the start alone
    for step, (auc, loss) in enumerate([(0.8, 1.0), (0.81, 0.9), (0.82, 0.8)]):
        run.log_metrics({"auc": auc, "loss": loss}, step=step)
    fail_once(monkeypatch, statement)
    with pytest.raises(DiskFullError):
        run.end()
    assert tracking.get_run(run.id).status is RunStatus.RUNNING  # rolled back as a whole
    run.log_metric("auc", 0.9, step=3)  # still open after the failed end
    run.end()
    stored = tracking.get_run(run.id)
    assert stored.status is RunStatus.FINISHED
    assert _history(tracking, run.id, "auc") == [(0.8, 0), (0.81, 1), (0.82, 2), (0.9, 3)]
    assert _history(tracking, run.id, "loss") == [(1.0, 0), (0.9, 1), (0.8, 2)]
    assert stored.metrics == {"auc": 0.9, "loss": 0.8}


def test_failed_end_in_with_block_keeps_status_for_retry(
    tracking: TrackingService, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_once(monkeypatch, "INSERT_RUN")  # the end writes the start too: both fail
    with pytest.raises(DiskFullError), tracking.start_run("fraud") as run:
        run.log_metric("auc", 0.7)
    run.end(RunStatus.FAILED, error="retried")
    stored = tracking.get_run(run.id)
    assert (stored.status, stored.error, stored.metrics) == (
        RunStatus.FAILED,
        "retried",
        {"auc": 0.7},
    )


def test_flush_failing_while_the_run_ends_loses_nothing(
    tracking: TrackingService, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = runs_module.INSERT_METRICS
    entered, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def blocked_then_failing(conn: Any, values: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:  # the flush: hold the write until end() was called, then fail
            entered.set()
            release.wait(10)
            raise DiskFullError("flush failed")
        return real(conn, values)

    monkeypatch.setattr(runs_module, "INSERT_METRICS", blocked_then_failing)
    run = tracking.start_run("fraud")
    run.log_metrics({"auc": 0.9, "loss": 0.1}, step=0)

    def flush_and_fail() -> None:
        with suppress(DiskFullError):
            run.flush()

    flusher = threading.Thread(target=flush_and_fail)
    flusher.start()
    assert entered.wait(10)
    ender = threading.Thread(target=run.end)
    ender.start()
    time.sleep(0.2)  # let end() reach the write; it must wait for the flush to settle
    release.set()
    flusher.join(10)
    ender.join(10)
    assert tracking.get_run(run.id).status is RunStatus.FINISHED
    assert _history(tracking, run.id, "auc") == [(0.9, 0)]
    assert _history(tracking, run.id, "loss") == [(0.1, 0)]


def test_second_handle_cannot_overwrite_an_ended_run(tracking: TrackingService) -> None:
    run = tracking.start_run("fraud")
    other = ActiveRun(tracking, run.id)
    run.end(RunStatus.FINISHED)
    with pytest.raises(ConflictError, match=f"run {run.id} is already finished"):
        other.end(RunStatus.FAILED, error="late")
    stored = tracking.get_run(run.id)
    assert (stored.status, stored.error) == (RunStatus.FINISHED, None)
    run.end(RunStatus.KILLED)  # the same handle ending again stays harmless
    assert tracking.get_run(run.id).status is RunStatus.FINISHED


def test_ending_an_unknown_run_is_not_found(tracking: TrackingService) -> None:
    with pytest.raises(NotFoundError, match="run 'missing' does not exist"):
        ActiveRun(tracking, "missing").end()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (("auc", 0.9, "a"), "metric 'auc': step must be an integer, got str 'a'"),
        (("auc", 0.9, 1.5), "metric 'auc': step must be an integer, got float 1.5"),
        (("auc", 0.9, True), "metric 'auc': step must be an integer, got bool True"),
        (("auc", 0.9), r"\(key, value, step\) tuple, got \('auc', 0.9\)"),
        ("auc", "a Metric or a .* tuple, got 'auc'"),
        (Metric("auc", 0.9, 0, "x"), "metric 'auc': timestamp_ms must be an integer, got str 'x'"),  # type: ignore[arg-type]
        (Metric("auc", 0.9, 2**63, 0), "step 9223372036854775808 is out of the 64-bit range"),
        (("bad\nkey", 0.9, 0), "forbidden characters"),
    ],
)
def test_log_batch_bad_entry(tracking: TrackingService, entry: object, message: str) -> None:
    with tracking.start_run("fraud") as run:
        with pytest.raises(InvalidInputError, match=message):
            run.log_batch([("ok", 1.0, 0), entry])  # type: ignore[list-item]
    assert tracking.get_run(run.id).metrics == {}  # a bad entry keeps the whole batch out


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"step": 1.5}, "metric 'auc': step must be an integer, got float 1.5"),
        ({"step": "3"}, "metric 'auc': step must be an integer, got str '3'"),
        ({"timestamp_ms": "x"}, "metric 'auc': timestamp_ms must be an integer, got str 'x'"),
        ({"timestamp_ms": 1.7e12}, "timestamp_ms must be an integer, got float"),
    ],
)
def test_log_metric_bad_step_or_time(
    tracking: TrackingService, kwargs: dict[str, Any], message: str
) -> None:
    with tracking.start_run("fraud") as run:
        with pytest.raises(InvalidInputError, match=message):
            run.log_metric("auc", 0.9, **kwargs)
        with pytest.raises(InvalidInputError, match=message):
            run.log_metrics({"auc": 0.9, "loss": 0.1}, **kwargs)
    assert tracking.get_run(run.id).metrics == {}


def test_numpy_steps_and_times_are_accepted(tracking: TrackingService) -> None:
    with tracking.start_run("fraud") as run:
        run.log_metric("auc", 0.9, step=np.int64(4), timestamp_ms=np.int64(1_700_000_000_000))
        run.log_batch([("auc", 0.95, np.int32(5))])
    history = tracking.metric_history(run.id, "auc")
    assert [(m.step, type(m.step)) for m in history] == [(4, int), (5, int)]
    assert history[0].timestamp_ms == 1_700_000_000_000


@pytest.mark.parametrize("kind", ["experiment", "run"])
def test_overlong_name_error_shows_the_value(tracking: TrackingService, kind: str) -> None:
    long = "fraud-model-" + "x" * 200
    with pytest.raises(InvalidInputError, match=rf"{kind} name 'fraud-model-xx.*is 212 characters"):
        if kind == "experiment":
            tracking.create_experiment(long)
        else:
            tracking.start_run("fraud", name=long)


@pytest.mark.parametrize("interval", [0, -1.0, float("nan"), "2", True])
def test_bad_flush_interval(tracking: TrackingService, interval: object) -> None:
    with pytest.raises(InvalidInputError, match="flush_interval must be"):
        tracking.start_run("fraud", flush_interval=interval)  # type: ignore[arg-type]


def test_keyboard_interrupt_ends_run_as_killed(tracking: TrackingService) -> None:
    with pytest.raises(KeyboardInterrupt), tracking.start_run("fraud") as run:
        run.log_metric("loss", 0.5)
        raise KeyboardInterrupt
    stored = tracking.get_run(run.id)
    assert (stored.status, stored.error) == (RunStatus.KILLED, "KeyboardInterrupt")
    assert stored.metrics == {"loss": 0.5}


def test_flusher_thread_writes_values_within_the_interval(tracking: TrackingService) -> None:
    run = tracking.start_run("fraud", flush_interval=0.05)
    run.log_metric("auc", 0.9)
    run.log_metric("auc", 0.91)
    deadline = time.monotonic() + 20  # generous: the machine may be busy
    while not tracking.metric_history(run.id, "auc") and time.monotonic() < deadline:
        time.sleep(0.05)
    stored = tracking.get_run(run.id)
    assert stored.status is RunStatus.RUNNING  # written by the flusher, not by end()
    assert _history(tracking, run.id, "auc") == [(0.9, 0), (0.91, 1)]
    assert run.flush() == 0  # nothing left waiting
    run.end()


def test_values_are_flushed_and_run_ended_at_interpreter_exit(
    database_url: str, tmp_path: Path
) -> None:
    script = textwrap.dedent(
        """
        import sys
        from steward.sdk import connect

        st = connect(home=sys.argv[1], database_url=sys.argv[2], capture_environment=False)
        run = st.start_run("fraud")
        for step in range(50):
            run.log_metrics({"auc": step / 100, "loss": 1 - step / 100}, step=step)
        print(run.id)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "home"), database_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    run_id = done.stdout.strip()
    with connect(
        home=tmp_path / "home", database_url=database_url, capture_environment=False
    ) as st:
        stored = st.tracking.get_run(run_id)
        assert stored.status is RunStatus.FINISHED
        assert len(st.tracking.metric_history(run_id, "auc")) == 50
        assert _history(st.tracking, run_id, "loss")[-1] == (0.51, 49)


def test_cpu_seconds_are_recorded(tracking: TrackingService) -> None:
    with tracking.start_run("fraud") as run:
        started = time.process_time()
        total = 0
        while time.process_time() - started < 0.05:  # busy work, measured on the CPU clock
            total += sum(range(1000))
    stored = tracking.get_run(run.id)
    assert stored.cpu_seconds is not None and stored.cpu_seconds >= 0.04
    assert stored.wall_seconds is not None and stored.wall_seconds > 0
