"""The gateway compacts its own prediction log: sealed segments become Parquet partitions."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.serving._deploy_support import Home, gateway_settings, open_home, record

from steward.serving import GatewaySettings, Variant, create_app
from steward.serving._predlog import PredictionArchive
from steward.serving._predlog._compaction import LOCK_NAME, sealed_segments

ROWS = 400  # one request of this many rows is about a third of a 64 KiB segment


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = open_home(tmp_path / "home")
    h.deployments.create(
        "fraud-api", [Variant("champion", "fraud@champion")], settings={"timeout_ms": 30_000}
    )
    yield h
    h.store.close()


def settings(home: Home, **overrides: object) -> GatewaySettings:
    # 64 KiB: the smallest segment allowed, so a few requests rotate segments
    return gateway_settings(home, **{"prediction_log_segment_max_bytes": 64 * 1024, **overrides})


def predict(client: TestClient, rows: int = ROWS) -> str:
    response = client.post(
        "/v1/deployments/fraud-api/predict", json={"inputs": [record(float(rows))] * rows}
    )
    assert response.status_code == 200, response.text
    request_id: str = response.json()["request_id"]
    return request_id


def logged(archive: PredictionArchive) -> Counter[str]:
    """How many times each request id appears to a query (segments and partitions alike)."""
    table = archive.query("SELECT request_id FROM predictions")
    return Counter(table.column("request_id").to_pylist())


def parquet_parts(s: GatewaySettings) -> list[Path]:
    return sorted(Path(s.resolved_predictions_uri()).glob("deployment=fraud-api/date=*/*.parquet"))


def manifest_count(s: GatewaySettings) -> int:
    return len(list(Path(s.resolved_predictions_uri()).glob("manifests/*.json")))


def wait_for(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("the gateway did not compact in time")
        time.sleep(0.05)


def status(client: TestClient) -> dict[str, Any]:
    view: dict[str, Any] = client.get("/v1/deployments/fraud-api").json()["log_compaction"]
    return view


def test_gateway_compacts_rotated_segments_without_a_command(home: Home) -> None:
    s = settings(home, gateway_compact_interval_s=0.1)
    archive = PredictionArchive.from_settings(s)
    with TestClient(create_app(s, store=home.store)) as client:
        assert status(client)["last_compaction_at"] is None
        ids = [predict(client) for _ in range(8)]
        assert logged(archive) == Counter(ids)  # every id once, from segments or parts
        wait_for(lambda: not sealed_segments(s.resolved_prediction_log_dir()) and parquet_parts(s))
        view = status(client)
        metrics = client.get("/metrics").text
        later = status(client)  # a round may run between the two reads
        # the segment being written is never taken: it stays open through later rounds
        manifests = manifest_count(s)
        ids.append(predict(client, rows=1))
        rounds = status(client)["rounds"]
        wait_for(lambda: status(client)["rounds"] >= rounds + 2)
        assert list(s.resolved_prediction_log_dir().glob("*.open"))
        assert manifest_count(s) == manifests
    assert logged(archive) == Counter(ids)
    assert view["interval_s"] == 0.1
    assert view["last_compaction_at"] is not None
    assert view["records_compacted"] >= 2
    assert view["last_error"] is None
    assert 'steward_gateway_log_compactions_total{outcome="ok"}' in metrics
    compacted = [
        line for line in metrics.splitlines() if line.startswith("steward_gateway_log_compacted_")
    ]
    assert compacted
    counted = float(compacted[0].split()[-1])
    assert view["records_compacted"] <= counted <= later["records_compacted"]
    assert archive.verify().ok


def test_gateway_skips_a_round_while_another_process_compacts(home: Home) -> None:
    s = settings(home, gateway_compact_interval_s=0)
    archive = PredictionArchive.from_settings(s)
    with TestClient(create_app(s, store=home.store)) as client:
        worker = client.app.state.worker  # type: ignore[attr-defined]
        ids = [predict(client) for _ in range(8)]
        folder = s.resolved_prediction_log_dir()
        sealed = len(sealed_segments(folder))
        assert sealed >= 2
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # another compactor at work
            busy = client.portal.call(worker.compactor.run_once)
            assert busy.busy and busy.segments == 0
            assert len(sealed_segments(folder)) == sealed
        finally:
            os.close(fd)
        done = client.portal.call(worker.compactor.run_once)
        metrics = client.get("/metrics").text
    assert done.segments == sealed and not done.busy
    assert 'steward_gateway_log_compactions_total{outcome="busy"} 1.0' in metrics
    assert 'steward_gateway_log_compactions_total{outcome="ok"} 1.0' in metrics
    assert logged(archive) == Counter(ids)


def test_concurrent_compactors_neither_lose_nor_duplicate_records(home: Home) -> None:
    s = settings(home, gateway_compact_interval_s=0.02, prediction_log_segment_max_age=0.02)
    archive = PredictionArchive.from_settings(s)
    other = PredictionArchive.from_settings(s)  # a second compactor on the same folders
    stop = threading.Event()
    reports = []

    def compact_meanwhile() -> None:
        while not stop.is_set():
            reports.append(other.compact())

    rival = threading.Thread(target=compact_meanwhile)
    with TestClient(create_app(s, store=home.store)) as client:
        rival.start()
        try:
            ids = [predict(client, rows=50) for _ in range(40)]
            assert logged(archive) == Counter(ids)
        finally:
            stop.set()
            rival.join()
        wait_for(lambda: status(client)["rounds"] > 0)
        compactor = client.app.state.worker.compactor  # type: ignore[attr-defined]
    final = archive.compact()
    assert not sealed_segments(s.resolved_prediction_log_dir())
    assert logged(archive) == Counter(ids)
    # every record was compacted by exactly one of the compactors
    rival_records = sum(r.records for r in reports)
    assert rival_records > 0
    assert rival_records + compactor.records + final.records == len(ids)
    assert archive.verify().ok


def test_failed_compaction_is_counted_and_retried(home: Home) -> None:
    s = settings(home, gateway_compact_interval_s=0)
    root = Path(s.resolved_predictions_uri())
    archive = PredictionArchive.from_settings(s)
    with TestClient(create_app(s, store=home.store)) as client:
        worker = client.app.state.worker  # type: ignore[attr-defined]
        ids = [predict(client) for _ in range(8)]
        sealed = len(sealed_segments(s.resolved_prediction_log_dir()))
        root.rmdir()
        root.write_bytes(b"not a folder")  # the Parquet root cannot be written
        try:
            assert client.portal.call(worker.compactor.run_once) is None
            failed = status(client)
            metrics = client.get("/metrics").text
        finally:
            root.unlink()
            root.mkdir()
        retried = client.portal.call(worker.compactor.run_once)
        recovered = status(client)
    assert failed["last_error"] and failed["last_compaction_at"] is None
    assert 'steward_gateway_log_compactions_total{outcome="failed"} 1.0' in metrics
    assert len(sealed_segments(s.resolved_prediction_log_dir())) == 0
    assert retried.segments == sealed
    assert recovered["last_error"] is None and recovered["last_compaction_at"] is not None
    assert logged(archive) == Counter(ids)
