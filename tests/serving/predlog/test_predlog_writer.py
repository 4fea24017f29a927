"""The writer: durable and async appends, group commit, rotation, failures, settings."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.serving.predlog._factories import count, feedback, prediction, request_ids

from steward.core import BackendUnavailableError, InvalidInputError
from steward.serving._predlog import PredictionLog, PredictionLogClosedError, PredictionLogSettings
from steward.serving._predlog import _writer as writer_module
from steward.serving._predlog._recovery import STALE_STAGING_S, recover_segments
from steward.serving._predlog._segment import scan_segment


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


class SyncGate:
    """Makes the writer's data syncs wait until released, to observe batching."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.open = threading.Event()
        self.entered = threading.Event()
        real = writer_module.sync_file

        def gated(fd: int) -> None:
            self.entered.set()
            self.open.wait()
            real(fd)

        monkeypatch.setattr(writer_module, "sync_file", gated)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[SyncGate]:
    gate = SyncGate(monkeypatch)
    yield gate
    gate.open.set()


def _open_records(log_dir: Path) -> list[str]:
    return [r.request_id for p in log_dir.glob("*.open") for r in scan_segment(p, "live").records]


def test_durable_append_has_written_the_record_when_it_returns(
    open_log: Callable[..., PredictionLog], log_dir: Path
) -> None:
    log = open_log()
    log.append(prediction(1))
    assert _open_records(log_dir) == ["req-000001"]
    log.append(feedback(1))
    assert _open_records(log_dir) == ["req-000001", "req-000001"]


def test_concurrent_appends_share_one_sync(
    open_log: Callable[..., PredictionLog], gate: SyncGate
) -> None:
    gate.open.set()
    log = open_log()
    log.append(prediction(0))  # the segment exists: every later sync is a batch's
    batches = log.stats.batches
    gate.open.clear()
    gate.entered.clear()
    first = threading.Thread(target=log.append, args=(prediction(1),))
    first.start()
    gate.entered.wait(10)  # the writer is syncing record 1
    rest = [threading.Thread(target=log.append, args=(prediction(i),)) for i in range(2, 12)]
    for thread in rest:
        thread.start()
    _wait_until(lambda: len(log._writer._batch.frames) == 10, "ten queued appends")
    gate.open.set()
    for thread in [first, *rest]:
        thread.join(10)
    assert log.stats.batches - batches == 2  # record 1 alone, then the other ten together
    assert count(log) == 12


def test_many_threads_lose_nothing(open_log: Callable[..., PredictionLog]) -> None:
    log = open_log(segment_max_bytes=20_000)
    threads = [
        threading.Thread(
            target=lambda k=k: [log.append(prediction(k * 100 + i)) for i in range(100)]
        )
        for k in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log.stats.records == 1600
    assert request_ids(log) == [f"req-{i:06d}" for i in range(1600)]


def test_append_async_awaits_the_commit_without_blocking_the_loop(
    open_log: Callable[..., PredictionLog], gate: SyncGate
) -> None:
    gate.open.set()
    log = open_log()
    log.append(prediction(0))
    gate.open.clear()

    async def scenario() -> int:
        ticks = 0
        appends = asyncio.gather(*(log.append_async(prediction(i)) for i in range(1, 51)))
        while not gate.entered.is_set() or ticks < 20:  # the loop runs while the sync waits
            ticks += 1
            await asyncio.sleep(0.001)
        assert not appends.done()
        gate.open.set()
        await appends
        return ticks

    assert asyncio.run(scenario()) >= 20
    assert count(log) == 51


def test_async_mode_returns_before_the_write_and_flush_waits(
    open_log: Callable[..., PredictionLog], gate: SyncGate, log_dir: Path
) -> None:
    log = open_log(mode="async", flush_interval=60)
    for i in range(5):
        log.append(prediction(i))  # returns although no sync can finish
    assert _open_records(log_dir) == []
    gate.open.set()
    log.flush()
    assert sorted(_open_records(log_dir)) == [f"req-{i:06d}" for i in range(5)]


def test_async_mode_writes_within_the_flush_interval(
    open_log: Callable[..., PredictionLog], log_dir: Path
) -> None:
    log = open_log(mode="async", flush_interval=0.01)
    log.append(prediction(1))
    _wait_until(lambda: _open_records(log_dir) == ["req-000001"], "the timed flush")


def test_async_mode_close_writes_what_is_buffered(
    open_log: Callable[..., PredictionLog], log_dir: Path
) -> None:
    log = open_log(mode="async", flush_interval=60)
    for i in range(100):
        log.append(prediction(i))
    log.close()
    assert count(log) == 100
    assert list(log_dir.glob("*.open")) == []


def test_async_append_async_returns_at_once(open_log: Callable[..., PredictionLog]) -> None:
    log = open_log(mode="async", flush_interval=60)
    asyncio.run(log.append_async(prediction(1)))
    log.flush()
    assert count(log) == 1


def test_one_log_serves_durable_and_async_records(
    open_log: Callable[..., PredictionLog], gate: SyncGate, log_dir: Path
) -> None:
    gate.open.set()
    log = open_log(mode="async", flush_interval=60)
    log.append(prediction(1), durable=True)  # a production deployment's request
    assert _open_records(log_dir) == ["req-000001"]
    asyncio.run(log.append_async(prediction(2), durable=True))
    assert _open_records(log_dir) == ["req-000001", "req-000002"]

    durable = open_log(worker_id="d", directory=log_dir / "other")
    durable.append(prediction(3))
    gate.open.clear()
    durable.append(prediction(4), durable=False)  # returns although the sync cannot finish
    asyncio.run(durable.append_async(prediction(5), durable=False))
    gate.open.set()
    durable.flush()
    assert request_ids(durable) == ["req-000003", "req-000004", "req-000005"]


def test_segments_rotate_by_size(open_log: Callable[..., PredictionLog], log_dir: Path) -> None:
    log = open_log(segment_max_bytes=2_000)
    for i in range(60):
        log.append(prediction(i))
    sealed = list(log_dir.glob("*.seg"))
    assert len(sealed) >= 3
    assert count(log) == 60


def test_segments_rotate_by_age(open_log: Callable[..., PredictionLog], log_dir: Path) -> None:
    log = open_log(segment_max_age=0.02)
    log.append(prediction(1))
    _wait_until(lambda: len(list(log_dir.glob("*.seg"))) == 1, "the age rotation")
    assert list(log_dir.glob("*.open")) == []  # an idle log starts no empty segment
    log.append(prediction(2))
    assert count(log) == 2


def test_rotate_seals_now(open_log: Callable[..., PredictionLog], log_dir: Path) -> None:
    log = open_log()
    log.append(prediction(1))
    log.rotate()
    assert len(list(log_dir.glob("*.seg"))) == 1 and list(log_dir.glob("*.open")) == []
    log.rotate()  # nothing new: no empty segment
    assert len(list(log_dir.glob("*.seg"))) == 1


def test_close_seals_and_refuses_later_appends(
    open_log: Callable[..., PredictionLog], log_dir: Path
) -> None:
    log = open_log()
    log.append(prediction(1))
    log.close()
    log.close()  # idempotent
    assert len(list(log_dir.glob("*.seg"))) == 1 and list(log_dir.glob("*.open")) == []
    with pytest.raises(PredictionLogClosedError, match="closed"):
        log.append(prediction(2))
    assert isinstance(PredictionLogClosedError("x"), BackendUnavailableError)


def test_an_unused_log_leaves_no_segment(
    open_log: Callable[..., PredictionLog], log_dir: Path
) -> None:
    open_log().close()
    assert [p.name for p in log_dir.iterdir() if p.suffix in (".seg", ".open")] == []


def test_bad_records_are_refused_before_they_reach_the_segment(
    open_log: Callable[..., PredictionLog],
) -> None:
    log = open_log(max_record_bytes=2048)
    log.append(prediction(1))
    with pytest.raises(InvalidInputError, match="latency_ms"):
        log.append(prediction(2, latency_ms=float("nan")))
    with pytest.raises(InvalidInputError, match="2,048"):
        log.append(prediction(3, inputs={"blob": "x" * 4096}))
    log.append(prediction(4))
    assert request_ids(log) == ["req-000001", "req-000004"]


@pytest.mark.parametrize("failing", ["write_all", "sync_file"])
def test_a_failed_write_fails_only_its_batch(
    open_log: Callable[..., PredictionLog],
    monkeypatch: pytest.MonkeyPatch,
    log_dir: Path,
    failing: str,
) -> None:
    log = open_log()
    log.append(prediction(1))
    real = getattr(writer_module, failing)
    calls = {"n": 0}

    def broken(*args: object) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(*args)

    monkeypatch.setattr(writer_module, failing, broken)
    with pytest.raises(BackendUnavailableError, match=r"No space left on device.*not logged"):
        log.append(prediction(2))
    log.append(prediction(3))  # the next batch goes to a fresh segment
    assert log.stats.failed_records == 1
    monkeypatch.undo()
    log.close()
    assert request_ids(log) == ["req-000001", "req-000003"]
    assert log.archive.verify().ok


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"mode": "fast"}, "mode"),
        ({"worker_id": "a.b"}, "worker id"),
        ({"segment_max_bytes": 0}, "segment_max_bytes"),
        ({"flush_interval": -1}, "flush_interval"),
        ({"max_record_bytes": 10**9}, "max_record_bytes"),
        ({"predictions": "ftp://host/x"}, "unknown scheme"),
    ],
)
def test_bad_options_are_named(
    open_log: Callable[..., PredictionLog], options: dict[str, object], named: str
) -> None:
    with pytest.raises(InvalidInputError, match=named):
        open_log(**options)


def test_from_settings_uses_the_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STEWARD_PREDICTION_LOG_MODE", "async")
    log = PredictionLog.from_settings(worker_id="w")
    try:
        assert log.directory == tmp_path / "home" / "prediction-log"
        assert log.mode == "async"
        log.append(prediction(1))
        log.rotate()
        log.compact()
    finally:
        log.close()
    assert list((tmp_path / "home" / "predictions").glob("deployment=fraud/date=*/part-*.parquet"))
    settings = PredictionLogSettings(home=tmp_path, predictions_uri="s3://bucket/p")
    assert settings.resolved_predictions_uri() == "s3://bucket/p"


def test_auto_compact_compacts_sealed_segments(
    open_log: Callable[..., PredictionLog], tmp_path: Path, log_dir: Path
) -> None:
    log = open_log(auto_compact=True, segment_max_bytes=2_000)
    for i in range(40):
        log.append(prediction(i))
    parts = tmp_path / "parquet"
    _wait_until(
        lambda: not list(log_dir.glob("*.seg")) and bool(list(parts.glob("manifests/*.json"))),
        "the background compaction",
    )
    assert list(parts.glob("deployment=fraud/*/*.parquet"))
    assert count(log) == 40


def test_two_logs_in_one_folder_write_their_own_segments(
    open_log: Callable[..., PredictionLog], log_dir: Path
) -> None:
    a, b = open_log(worker_id="a"), open_log(worker_id="b")
    a.append(prediction(1))
    b.append(prediction(2))
    assert len(list(log_dir.glob("a.*.open"))) == 1 and len(list(log_dir.glob("b.*.open"))) == 1
    assert request_ids(a) == request_ids(b) == ["req-000001", "req-000002"]


def test_recovery_racing_segment_creation_cannot_remove_a_live_segment(
    open_log: Callable[..., PredictionLog], log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process recovers the folder at the worst moment: the new segment's
    # file exists and its lock is not yet taken.
    real = writer_module.try_lock

    def recover_first(fd: int) -> bool:
        assert not recover_segments(log_dir).segments
        return real(fd)

    monkeypatch.setattr(writer_module, "try_lock", recover_first)
    log = open_log()
    log.append(prediction(1))
    log.append(prediction(2))
    monkeypatch.setattr(writer_module, "try_lock", real)
    assert _open_records(log_dir) == ["req-000001", "req-000002"]
    assert not recover_segments(log_dir).segments  # the live writer still holds it
    log.rotate()
    assert request_ids(log) == ["req-000001", "req-000002"]


def test_recovery_removes_only_stale_unlocked_staging_files(log_dir: Path) -> None:
    log_dir.mkdir()
    fresh = log_dir / f"w0.{'a' * 32}.open.new"
    stale = log_dir / f"w0.{'b' * 32}.open.new"
    fresh.write_bytes(b"")
    stale.write_bytes(b"")
    old = time.time() - STALE_STAGING_S - 5
    os.utime(stale, (old, old))
    assert not recover_segments(log_dir).segments
    assert fresh.exists() and not stale.exists()
