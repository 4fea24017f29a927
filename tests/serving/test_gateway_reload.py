"""Deployment changes reaching a running gateway: the background poller, and in-flight requests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from tests.serving._deploy_support import Home, open_home, record
from tests.serving._gateway_process import wait_until

from steward.serving import GatewaySettings, Variant, create_app

# The poller runs every second: a change shows within about 1 s plus a model load.
# The deadline is generous for a busy machine; timing is for benchmarks.
DEADLINE_S = 5.0


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = open_home(tmp_path / "home")
    # A model call may wait long on a busy machine; a timeout there is not what is tested.
    h.deployments.create(
        "fraud-api", [Variant("champion", "fraud@champion")], settings={"timeout_ms": 30_000}
    )
    yield h
    h.store.close()


def _client(home: Home, **overrides: object) -> TestClient:
    values: dict[str, object] = {"home": home.path, "gateway_insecure_local": True}
    values.update(overrides)
    settings = GatewaySettings(**values)  # type: ignore[arg-type]
    return TestClient(create_app(settings, store=home.store))


def _served(client: TestClient) -> tuple[int, str]:
    response = client.post("/v1/deployments/fraud-api/predict", json={"inputs": record()})
    assert response.status_code == 200, response.text
    body = response.json()
    return body["revision"], body["model_version"]


def test_rollback_reaches_a_running_gateway_through_its_poller(home: Home) -> None:
    with _client(home, gateway_poll_interval=1.0) as client:
        assert _served(client) == (1, "fraud:1")
        home.deployments.update("fraud-api", [Variant("challenger", "fraud:2")])
        wait_until(lambda: _served(client) == (2, "fraud:2"), DEADLINE_S, "the update")
        home.deployments.rollback("fraud-api", 1, reason="challenger misbehaves")
        wait_until(lambda: _served(client) == (3, "fraud:1"), DEADLINE_S, "the rollback")
        status = client.get("/v1/deployments/fraud-api").json()
        assert status["revision"] == 3
        assert [v["name"] for v in status["variants"]] == ["champion"]


def test_request_waiting_during_a_swap_is_served_by_the_new_revision(home: Home) -> None:
    """A request admitted after the swap runs on the new revision, not on the closed old one."""
    entered, release = threading.Event(), threading.Event()
    with _client(home, gateway_poll_interval=60.0, gateway_max_in_flight=1) as client:
        worker: Any = client.app.state.worker  # type: ignore[attr-defined]
        old = worker.runtimes["fraud-api"].variants["champion"].batcher
        model = old.fn

        def held(blocks: list[object]) -> list[object]:
            entered.set()
            release.wait(timeout=30)
            result: list[object] = model(blocks)
            return result

        old.fn = held
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(_post, client)
            assert entered.wait(timeout=30)
            second = pool.submit(_post, client)  # waits for the one slot
            wait_until(lambda: worker.admission.snapshot().queued == 1, 30, "a queued request")
            home.deployments.update("fraud-api", [Variant("challenger", "fraud:2")])
            client.portal.call(worker.refresh)  # swaps in revision 2, retires revision 1
            client.portal.call(asyncio.sleep, 0.05)  # let the old revision start closing
            release.set()
            answers = [first.result(timeout=30), second.result(timeout=30)]
    assert [(a.status_code, a.json().get("revision")) for a in answers] == [(200, 1), (200, 2)]


def _post(client: TestClient) -> httpx.Response:
    return client.post("/v1/deployments/fraud-api/predict", json={"inputs": record()})
