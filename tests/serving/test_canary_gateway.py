"""Canaries driven by the gateway: windows fed per request, decisions by the workers' controller."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.serving._deploy_support import Home, open_home, query_log, record

from steward.serving import (
    CanaryPlan,
    CanaryService,
    DeploymentService,
    GatewaySettings,
    Variant,
    create_app,
)
from steward.serving._canary import Decision
from steward.serving._canary_controller import CanaryController
from steward.store import Store, StoreSettings

# Real latencies on a shared machine are noise: the latency check is tested with
# synthetic windows elsewhere, and left out here with a ratio nothing reaches.
PLAN = CanaryPlan(
    steps=(50, 100),
    min_requests=30,
    min_prediction_samples=30,
    psi_bins=5,
    max_psi=1.0,
    max_p95_latency_ratio=1e9,
    min_step_seconds=0,
    shadow_first=True,
)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = open_home(tmp_path / "home")
    h.deployments.create(
        "fraud-api",
        {
            "variants": [{"name": "champion", "model": "fraud@champion"}],
            "strategy": "sticky",
            "sticky_key": {"source": "header", "name": "X-Customer"},
        },
    )
    yield h
    h.store.close()


def _settings(home: Home) -> GatewaySettings:
    return GatewaySettings(  # type: ignore[call-arg]
        home=home.path,
        gateway_insecure_local=True,
        gateway_poll_interval=30.0,
        gateway_canary_interval=300.0,  # the test runs the rounds itself
    )


@pytest.fixture
def client(home: Home) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(home), store=home.store)) as c:
        yield c


def _worker(client: TestClient) -> Any:
    return client.app.state.worker  # type: ignore[attr-defined]


def _refresh(client: TestClient) -> None:
    client.portal.call(_worker(client).refresh)  # type: ignore[union-attr]


def _round(client: TestClient) -> list[Decision]:
    """Finish the shadow calls in flight, then run one canary round of this worker."""

    async def settle() -> None:
        for runtime in _worker(client).runtimes.values():
            await asyncio.gather(*list(runtime.shadow_tasks))

    client.portal.call(settle)  # type: ignore[union-attr]
    decisions: list[Decision] = _worker(client).canaries.tick()
    return decisions


def _send(client: TestClient, start: int, count: int, **headers: str) -> list[dict[str, Any]]:
    bodies = []
    for i in range(start, start + count):
        row = record(amount=(i % 17) / 4 - 2, hour=(i % 5) / 2 - 1)
        response = client.post(
            "/v1/deployments/fraud-api/predict",
            json={"inputs": row},
            headers={"X-Customer": f"c{i}", **headers},
        )
        bodies.append({"status": response.status_code, **response.json()})
    return bodies


def test_canary_gateway_feeds_windows_and_completes_a_healthy_candidate(
    client: TestClient, home: Home
) -> None:
    canaries = CanaryService(home.deployments)
    canaries.start("fraud-api", "fraud:2", plan=PLAN)
    _refresh(client)
    # The worker learns of the canary; without traffic there is nothing to decide yet.
    assert [d.kind for d in _round(client)] == ["hold"]

    shadowed = _send(client, 0, 40)
    assert {b["variant"] for b in shadowed} == {"champion"}
    first = _round(client)
    assert [d.kind for d in first] == ["promote_step"]
    assert first[0].metrics is not None
    assert (first[0].metrics.canary_requests, first[0].metrics.baseline_requests) == (40, 40)

    _refresh(client)
    split = _send(client, 40, 120)
    tests = _send(client, 1000, 10, **{"X-Steward-Variant": "canary"})
    assert {b["test"] for b in tests} == {True}
    on_canary = sum(b["variant"] == "canary" for b in split)
    assert 30 <= on_canary <= 90
    done = _round(client)
    assert [d.kind for d in done] == ["complete"]
    assert done[0].metrics is not None
    assert done[0].metrics.canary_requests == on_canary  # test traffic did not count
    assert done[0].metrics.baseline_requests == 120 - on_canary

    _refresh(client)
    after = _send(client, 200, 5)
    assert {(b["variant"], b["model_version"], b["revision"]) for b in after} == {
        ("canary", "fraud:2", 4)
    }
    report = canaries.status("fraud-api")
    assert [d.kind for d in report.decisions] == ["promote_step", "complete"]
    assert report.decisions[0].details["source"] == "gateway (1 worker(s))"
    assert _worker(client).canaries.active == {}


def test_canary_gateway_rolls_back_a_failing_candidate_early(
    client: TestClient, home: Home
) -> None:
    plan = CanaryPlan(
        steps=(50, 100),
        min_requests=30,
        max_psi=None,
        max_p95_latency_ratio=1e9,
        min_step_seconds=0,
    )
    CanaryService(home.deployments).start("fraud-api", "fraud:2", plan=plan)
    _refresh(client)
    _round(client)

    def broken(blocks: list[object]) -> list[object]:
        raise RuntimeError("model exploded")

    _worker(client).runtimes["fraud-api"].variants["canary"].batcher.fn = broken
    answers = _send(client, 0, 12)
    failed = [b for b in answers if b["status"] == 503]
    assert failed and all(b["variant"] != "canary" for b in answers if b["status"] == 200)
    decisions = _round(client)
    assert [d.kind for d in decisions] == ["rollback"]
    assert decisions[0].metrics is not None
    assert decisions[0].metrics.canary_errors == len(failed) < 30

    _refresh(client)
    back = _send(client, 100, 5)
    assert {(b["status"], b["variant"]) for b in back} == {(200, "champion")}
    rows = query_log(
        home.path,
        "SELECT count(*) AS n FROM predictions WHERE variant = 'canary' AND error LIKE "
        "'%model exploded%' AND NOT fallback AND outputs = 'null'",
    )
    assert rows == [{"n": len(failed)}]  # failed requests are logged too


def test_canary_workers_merge_windows_and_only_one_decides(
    database_url: str, tmp_path: Path
) -> None:
    home = open_home(tmp_path / "home", database_url)
    try:
        home.deployments.create("fraud-api", [Variant("champion", "fraud@champion")])
        CanaryService(home.deployments).start("fraud-api", "fraud:2", plan=PLAN)
        stores = [
            Store.open(StoreSettings(home=home.path, database_url=database_url))  # type: ignore[call-arg]
            for _ in range(4)
        ]
        controllers = [
            CanaryController(
                CanaryService(DeploymentService(store, home.registry)),
                worker_id=f"w{i}",
                decide=i >= 2,  # w0 and w1 serve traffic; w2 and w3 decide
            )
            for i, store in enumerate(stores)
        ]
        feeders, deciders = controllers[:2], controllers[2:]
        for controller in controllers:
            controller.tick()
        for n, feeder in enumerate(feeders):
            for i in range(25):
                score = ((i * 7 + n) % 25) / 25
                output = [{"label": 0, "probabilities": {"0": 1 - score, "1": score}}]
                feeder.observe("fraud-api", "champion", 3.0, outputs=output)
                feeder.observe("fraud-api", "canary", 3.5, shadow=True, outputs=output)
                feeder.observe("fraud-api", "canary", 9.0, test=True, error=True)  # never counts
            feeder.tick()

        barrier = threading.Barrier(2)
        results: dict[str, list[Decision]] = {}

        def decide(controller: CanaryController) -> None:
            barrier.wait()
            results[controller.worker_id] = controller.tick()

        threads = [threading.Thread(target=decide, args=(c,)) for c in deciders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        applied = [d for ds in results.values() for d in ds if d.kind != "hold"]
        assert [d.kind for d in applied] == ["promote_step"]
        assert applied[0].metrics is not None
        assert (applied[0].metrics.canary_requests, applied[0].metrics.baseline_requests) == (
            50,
            50,
        )
        assert home.deployments.get("fraud-api").revision == 3
        report = CanaryService(home.deployments).status("fraud-api")
        assert [d.kind for d in report.decisions] == ["promote_step"]
        assert report.decisions[0].details["source"] == "gateway (2 worker(s))"
        for store in stores:
            store.close()
    finally:
        home.store.close()
