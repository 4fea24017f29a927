"""A model that hangs or raises, through HTTP: timeouts, fallbacks, the breaker and its recovery."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.serving._deploy_support import Home, gateway_settings, open_home, query_log, record

from steward.serving import Variant, create_app

URL = "/v1/deployments/fraud-api/predict"


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = open_home(tmp_path / "home")
    h.deployments.create("fraud-api", [Variant("champion", "fraud@champion")])
    yield h
    h.store.close()


settings = gateway_settings


def champion(client: TestClient) -> Any:
    return client.app.state.worker.runtimes["fraud-api"].variants["champion"]  # type: ignore[attr-defined]


def refresh(client: TestClient) -> None:
    client.portal.call(client.app.state.worker.refresh)  # type: ignore[union-attr,attr-defined]


def hanging(release: threading.Event, real: Callable[[list[Any]], Any]) -> Callable[..., Any]:
    """A batch function that blocks until ``release`` is set, then answers like ``real``."""

    def run(blocks: list[Any]) -> Any:
        release.wait(10)
        return real(blocks)

    return run


def broken(blocks: list[Any]) -> list[Any]:
    raise RuntimeError("model exploded")


def metric_lines(client: TestClient, name: str) -> list[str]:
    return [line for line in client.get("/metrics").text.splitlines() if line.startswith(name)]


def test_gateway_timeout_without_fallback_is_504_then_fallback_when_declared(home: Home) -> None:
    # The deployment-wide timeout (10 s) would let the hung model answer; the
    # variant's own 50 ms override is what times it out.
    home.deployments.update(
        "fraud-api", settings={"timeout_ms": 10_000, "variant_timeout_ms": {"champion": 50}}
    )
    release = threading.Event()
    with TestClient(create_app(settings(home), store=home.store)) as client:
        variant = champion(client)
        variant.batcher.fn = hanging(release, variant.batcher.fn)
        try:
            timed_out = client.post(URL, json={"inputs": record()})
            assert timed_out.status_code == 504, timed_out.text
            body = timed_out.json()
            assert body["error"] == "model_timeout"
            assert "variant 'champion'" in body["message"]
            assert "did not answer within 0.05 s" in body["message"]

            home.deployments.update(
                "fraud-api", settings={"fallback": {"kind": "constant", "value": "review"}}
            )
            refresh(client)
            variant = champion(client)
            variant.batcher.fn = hanging(release, variant.batcher.fn)
            served = client.post(URL, json={"inputs": record()})
            assert served.status_code == 200, served.text
            assert served.json()["fallback"] is True
            assert served.json()["outputs"] == ["review"]
            request_id = served.json()["request_id"]
            lines = metric_lines(client, "steward_gateway_requests_total")
        finally:
            release.set()
    assert any('status="504",variant="champion"' in line for line in lines), lines
    rows = query_log(
        home.path, "SELECT fallback, error FROM predictions WHERE request_id = ?", [request_id]
    )
    assert rows[0]["fallback"] is True
    assert "ModelTimeoutError" in rows[0]["error"]


def test_gateway_breaker_opens_with_retry_after_then_a_probe_recovers(home: Home) -> None:
    options = settings(home, gateway_breaker_failures=3, gateway_breaker_cooldown_s=2.0)
    with TestClient(create_app(options, store=home.store)) as client:
        variant = champion(client)
        working = variant.batcher.fn
        variant.batcher.fn = broken
        failures = [client.post(URL, json={"inputs": record()}) for _ in range(3)]
        assert [r.status_code for r in failures] == [503, 503, 503]
        assert all("model exploded" in r.json()["message"] for r in failures)
        assert all("Retry-After" not in r.headers for r in failures)

        refused = client.post(URL, json={"inputs": record()})
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "retry_later"
        assert "circuit breaker" in refused.json()["message"]
        assert "no fallback" in refused.json()["message"]
        # The header is the rest of the breaker's cool-down, in whole seconds.
        assert 1 <= int(refused.headers["Retry-After"]) <= 2
        assert variant.batcher.stats().batches == 3  # the open breaker spared the model
        status = client.get("/v1/deployments/fraud-api").json()
        assert status["variants"][0]["breaker"] == "open"

        variant.batcher.fn = working
        time.sleep(2.1)  # wait out the cool-down; the next calls are half-open probes
        assert client.get("/v1/deployments/fraud-api").json()["variants"][0]["breaker"] == (
            "half_open"
        )
        probes = [client.post(URL, json={"inputs": record()}) for _ in range(2)]
        assert [r.status_code for r in probes] == [200, 200]
        status = client.get("/v1/deployments/fraud-api").json()
        assert status["variants"][0]["breaker"] == "closed"
        lines = metric_lines(client, "steward_gateway_requests_total")
    counted = (
        'steward_gateway_requests_total{deployment="fraud-api",status="%s",variant="champion"}'
    )
    assert f"{counted % 503} 4.0" in lines
    assert f"{counted % 200} 2.0" in lines


def test_gateway_open_breaker_serves_the_declared_fallback(home: Home) -> None:
    home.deployments.update(
        "fraud-api", settings={"fallback": {"kind": "constant", "value": "review"}}
    )
    options = settings(home, gateway_breaker_failures=2, gateway_breaker_cooldown_s=60.0)
    with TestClient(create_app(options, store=home.store)) as client:
        variant = champion(client)
        variant.batcher.fn = broken
        answers = [client.post(URL, json={"inputs": record()}) for _ in range(4)]
        assert [r.status_code for r in answers] == [200] * 4
        assert all(r.json()["fallback"] for r in answers)
        assert variant.batcher.stats().batches == 2  # calls 3 and 4 never reached the model
        view = client.get("/v1/deployments/fraud-api").json()["variants"][0]
        assert (view["breaker"], view["fallbacks"]) == ("open", 4)
