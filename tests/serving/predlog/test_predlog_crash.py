"""Real processes: SIGKILL under durable load, and two writers sharing one folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from steward.serving._predlog import PredictionArchive, PredictionLog, open_partition_store

# Appends from many threads; prints each id only after append() returned (= acknowledged).
WRITER = textwrap.dedent(
    """
    import os, sys, threading
    from datetime import UTC, datetime
    from steward.serving._predlog import PredictionLog, PredictionRecord

    folder, worker, threads, per_thread, max_bytes = sys.argv[1:6]
    log = PredictionLog(folder, worker_id=worker, segment_max_bytes=int(max_bytes),
                        predictions=os.path.join(folder, "parquet"))

    def run(t):
        for i in range(int(per_thread)):
            rid = f"{worker}-{t}-{i}"
            log.append(PredictionRecord(
                request_id=rid, ts=datetime.now(UTC), deployment="fraud", revision=1,
                variant="champion", model_version="fraud/7",
                inputs={"amount": i * 1.5, "rows": list(range(t % 5))},
                outputs={"score": 0.5}, latency_ms=1.0))
            os.write(1, (rid + "\\n").encode())  # one write per line: never interleaved

    workers = [threading.Thread(target=run, args=(t,)) for t in range(int(threads))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    log.close()
    """
)


def _start(
    folder: Path, worker: str, threads: int, per_thread: int, max_bytes: int
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            WRITER,
            str(folder),
            worker,
            str(threads),
            str(per_thread),
            str(max_bytes),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _complete_lines(data: bytes) -> list[str]:
    lines = data.split(b"\n")
    return [line.decode() for line in lines[:-1]]  # the last piece may be cut by the kill


@pytest.mark.slow
def test_sigkill_under_load_loses_no_acknowledged_record(tmp_path: Path) -> None:
    folder = tmp_path / "segments"
    child = _start(folder, "victim", threads=24, per_thread=100_000, max_bytes=256 * 1024)
    assert child.stdout is not None
    seen = bytearray()
    deadline = time.monotonic() + 120
    while seen.count(b"\n") < 2000:  # kill it mid-way, under load
        chunk = os.read(child.stdout.fileno(), 65536)
        assert chunk, f"writer exited early: {child.stderr.read().decode() if child.stderr else ''}"
        seen += chunk
        assert time.monotonic() < deadline, "writer too slow to reach the kill point"
    child.send_signal(signal.SIGKILL)
    rest, _ = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    acknowledged = _complete_lines(bytes(seen + rest))
    assert len(acknowledged) >= 2000

    log = PredictionLog(folder, predictions=folder / "parquet", worker_id="after")
    try:
        assert log.recovery.corrupt == []
        assert [s.path.suffix for s in log.recovery.segments] == [".seg"]  # the one left open
        assert log.archive.verify().ok
        stored = log.query("SELECT request_id FROM predictions").column("request_id").to_pylist()
        assert not set(acknowledged) - set(stored)  # every 200 is in the log
        assert max(Counter(stored).values()) == 1
        report = log.compact()
        assert report.corrupt == [] and report.segments >= 2
        after = log.query("SELECT request_id FROM predictions").column("request_id").to_pylist()
        assert sorted(after) == sorted(stored)
    finally:
        log.close()


@pytest.mark.slow
def test_two_processes_share_one_folder_while_it_is_compacted(tmp_path: Path) -> None:
    folder = tmp_path / "segments"
    folder.mkdir()
    children = [
        _start(folder, name, threads=4, per_thread=80, max_bytes=32 * 1024) for name in ("a", "b")
    ]
    archive = PredictionArchive(folder, open_partition_store(str(folder / "parquet")))
    while any(child.poll() is None for child in children):
        report = archive.compact()  # alongside two live writers
        assert report.corrupt == [] and report.recovery.segments == []
        time.sleep(0.2)
    acknowledged = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err.decode()
        acknowledged += _complete_lines(out)
    assert len(acknowledged) == 2 * 4 * 80
    archive.compact()
    assert list(folder.glob("*.seg")) == [] and list(folder.glob("*.open")) == []
    stored = archive.query("SELECT request_id FROM predictions").column("request_id").to_pylist()
    assert sorted(stored) == sorted(acknowledged)
    assert archive.verify().ok
