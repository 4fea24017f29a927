"""Per-caller rate limits, the shadow cap, and what the gateway's metrics count, through HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.testclient import TestClient
from tests.governance._support import token_for
from tests.serving._deploy_support import Home, gateway_settings, open_home, query_log, record

from steward.governance import GovernanceSettings, IdentityService
from steward.serving import GatewaySettings, Variant, create_app

URL = "/v1/deployments/fraud-api/predict"
_JSON = "application/json"
ROOT = GovernanceSettings(user="root")


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = open_home(tmp_path / "home")
    h.deployments.create("fraud-api", [Variant("champion", "fraud@champion")])
    yield h
    h.store.close()


settings = gateway_settings


def metrics(client: TestClient) -> set[str]:
    return set(client.get("/metrics").text.splitlines())


def requests_line(status: int, variant: str, value: float, deployment: str = "fraud-api") -> str:
    labels = f'deployment="{deployment}",status="{status}",variant="{variant}"'
    return f"steward_gateway_requests_total{{{labels}}} {value}"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_gateway_rate_limit_answers_429_with_retry_after(home: Home) -> None:
    # Burst 2, then one request per 100 s: the third request in a row is refused.
    options = settings(home, gateway_rate_limit=0.01, gateway_rate_burst=2)
    with TestClient(create_app(options, store=home.store)) as client:
        served = [client.post(URL, json={"inputs": record()}) for _ in range(2)]
        assert [r.status_code for r in served] == [200, 200]
        refused = client.post(URL, json={"inputs": record()})
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"] == "retry_later"
        message = refused.json()["message"]
        assert "address:testclient" in message
        assert "rate limit of 0.01 requests/s (burst 2)" in message
        assert 90 <= int(refused.headers["Retry-After"]) <= 100
        # The caller's own budget: other endpoints stay open.
        assert client.get("/v1/deployments/fraud-api").status_code == 200
        seen = metrics(client)
    assert 'steward_gateway_rate_limited_total{deployment="fraud-api"} 1.0' in seen
    assert requests_line(429, "-", 1.0) in seen
    assert requests_line(200, "champion", 2.0) in seen


def test_gateway_rate_limit_is_per_caller_identity(home: Home) -> None:
    identities = IdentityService(home.store, settings=ROOT)
    for name in ("app-a", "app-b"):
        identities.create_service_account(name, roles=["ml-engineer"])
    first = bearer(token_for(home.store, "app-a", scopes=["predict:fraud-api"]))
    second = bearer(token_for(home.store, "app-a", scopes=["predict:fraud-api"]))
    other = bearer(token_for(home.store, "app-b", scopes=["predict:fraud-api"]))
    options = GatewaySettings(home=home.path, gateway_rate_limit=0.01)  # type: ignore[call-arg]
    with TestClient(create_app(options, store=home.store, governance=ROOT)) as client:
        assert client.post(URL, json={"inputs": record()}, headers=first).status_code == 200
        # A second token of the same identity shares its budget.
        refused = client.post(URL, json={"inputs": record()}, headers=second)
        assert refused.status_code == 429
        assert "identity:app-a" in refused.json()["message"]
        assert client.post(URL, json={"inputs": record()}, headers=other).status_code == 200


def test_gateway_test_traffic_and_errors_are_counted_apart(home: Home) -> None:
    with TestClient(create_app(settings(home), store=home.store)) as client:
        assert client.post(URL, json={"inputs": record()}).status_code == 200
        override = {"X-Steward-Variant": "champion"}
        test = client.post(URL, json={"inputs": record()}, headers=override)
        assert test.json()["test"] is True
        wrong_type = client.post(URL, json={"inputs": {**record(), "x1": "high"}})
        assert wrong_type.status_code == 422
        not_json = client.post(URL, content=b"{not json", headers={"content-type": _JSON})
        assert not_json.status_code == 422
        unknown = client.post("/v1/deployments/nope/predict", json={"inputs": record()})
        assert unknown.status_code == 404
        view = client.get("/v1/deployments/fraud-api").json()["variants"][0]
        seen = metrics(client)
    assert (view["requests"], view["test_requests"], view["traffic_share"]) == (1, 1, 1.0)
    test_labels = 'deployment="fraud-api",status="200",variant="champion"'
    assert f"steward_gateway_test_requests_total{{{test_labels}}} 1.0" in seen
    assert requests_line(200, "champion", 1.0) in seen  # the test request is not in it
    assert requests_line(422, "champion", 1.0) in seen  # refused by the variant's signature
    assert requests_line(422, "-", 1.0) in seen  # refused before a variant was chosen
    assert requests_line(404, "-", 1.0, deployment="-") in seen
    latency = 'steward_gateway_request_latency_seconds_count{deployment="fraud-api",'
    assert f'{latency}variant="champion"}} 2.0' in seen  # the 200 and the 422, not the test


def test_gateway_shadows_over_the_cap_are_dropped_and_counted(home: Home) -> None:
    home.deployments.update(
        "fraud-api",
        [Variant("champion", "fraud:1"), Variant("next", "fraud:2", role="shadow")],
    )
    release = threading.Event()
    options = settings(home, gateway_max_shadow_in_flight=1)
    with TestClient(create_app(options, store=home.store)) as client:
        shadow = client.app.state.worker.runtimes["fraud-api"].variants["next"]  # type: ignore[attr-defined]
        real = shadow.batcher.fn

        def stuck(blocks: list[Any]) -> Any:
            release.wait(10)
            return real(blocks)

        shadow.batcher.fn = stuck
        try:
            answers = [client.post(URL, json={"inputs": record()}) for _ in range(3)]
            assert [r.status_code for r in answers] == [200, 200, 200]
            assert {r.json()["variant"] for r in answers} == {"champion"}
            seen = metrics(client)
        finally:
            release.set()
    shadow_labels = 'deployment="fraud-api",outcome="dropped",variant="next"'
    assert f"steward_gateway_shadow_requests_total{{{shadow_labels}}} 2.0" in seen
    shadows = query_log(home.path, "SELECT request_id FROM predictions WHERE shadow")
    # The one shadow call in flight finished (and was logged) when the gateway stopped.
    assert [s["request_id"] for s in shadows] == [answers[0].json()["request_id"]]


def test_gateway_holds_a_caller_that_retries_before_its_retry_after(home: Home) -> None:
    # One slot and no queue: while a request holds the slot, the next is refused
    # (503, Retry-After: 1). Coming straight back on the same connection as the
    # same caller gets that request held (here at most 0.3 s) and refused with 429.
    home.deployments.update("fraud-api", settings={"timeout_ms": 30_000})
    identities = IdentityService(home.store, settings=ROOT)
    for name in ("app-a", "app-b"):
        identities.create_service_account(name, roles=["ml-engineer"])
    alice = bearer(token_for(home.store, "app-a", scopes=["predict:fraud-api"]))
    bob = bearer(token_for(home.store, "app-b", scopes=["predict:fraud-api"]))
    options = GatewaySettings(  # type: ignore[call-arg]
        home=home.path,
        gateway_max_in_flight=1,
        gateway_max_queued=0,
        gateway_early_retry_hold_s=0.3,
    )
    entered, release = threading.Event(), threading.Event()
    with TestClient(create_app(options, store=home.store, governance=ROOT)) as client:
        variant = client.app.state.worker.runtimes["fraud-api"].variants["champion"]  # type: ignore[attr-defined]
        real = variant.batcher.fn

        def held(blocks: list[Any]) -> Any:
            entered.set()
            release.wait(10)
            return real(blocks)

        variant.batcher.fn = held
        with ThreadPoolExecutor(1) as pool:
            try:
                first = pool.submit(client.post, URL, json={"inputs": record()}, headers=alice)
                assert entered.wait(10)
                refused = client.post(URL, json={"inputs": record()}, headers=alice)
                started = time.monotonic()
                early = client.post(URL, json={"inputs": record()}, headers=alice)
                held_s = time.monotonic() - started
                other = client.post(URL, json={"inputs": record()}, headers=bob)
            finally:
                release.set()
            assert first.result(timeout=10).status_code == 200
        assert (refused.status_code, refused.headers["Retry-After"]) == (503, "1"), refused.text
        assert "at capacity" in refused.json()["message"]
        assert (early.status_code, early.headers["Retry-After"]) == (429, "0"), early.text
        assert "asked to wait 0.3 s before retrying" in early.json()["message"]
        assert held_s >= 0.25
        assert other.status_code == 503, other.text  # another caller is not held for alice
        variant.batcher.fn = real
        # The early retry was answered: alice's next request goes through.
        assert client.post(URL, json={"inputs": record()}, headers=alice).status_code == 200
        seen = metrics(client)
    errors = 'steward_gateway_errors_total{deployment="fraud-api",kind="%s"} %s'
    assert errors % ("OverloadedError", "2.0") in seen
    assert errors % ("EarlyRetryError", "1.0") in seen
    assert requests_line(429, "-", 1.0) in seen


@pytest.mark.parametrize("value", [-1, 61, "soon", float("nan")])
def test_gateway_early_retry_hold_setting_is_checked(home: Home, value: object) -> None:
    with pytest.raises(ValidationError, match="gateway_early_retry_hold_s"):
        GatewaySettings(home=home.path, gateway_early_retry_hold_s=value)  # type: ignore[call-arg]
