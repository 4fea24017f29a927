"""Bandit deployments through HTTP: rewards reach the arm whichever worker served; policies."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.serving._deploy_support import Home, open_home, record

from steward.serving import GatewaySettings, RoutingSpec, Variant, create_app

PREDICT = "/v1/deployments/offers/predict"
ARMS = (Variant("a", "fraud:1"), Variant("b", "fraud:2"))


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = open_home(tmp_path / "home")
    yield h
    h.store.close()


def settings(home: Home) -> GatewaySettings:
    return GatewaySettings(  # type: ignore[call-arg]
        home=home.path, gateway_insecure_local=True, gateway_poll_interval=30.0
    )


def reward(client: TestClient, request_id: str, value: Any, deployment: str = "offers") -> Any:
    return client.post(
        "/v1/feedback", json={"request_id": request_id, "deployment": deployment, "reward": value}
    )


def test_gateway_rewards_requests_that_another_worker_served(home: Home) -> None:
    home.deployments.create("offers", RoutingSpec(variants=ARMS, strategy="bandit"))
    with TestClient(create_app(settings(home), store=home.store)) as first:
        served = [first.post(PREDICT, json={"inputs": record()}).json() for _ in range(6)]
        test = first.post(
            PREDICT, json={"inputs": record()}, headers={"X-Steward-Variant": "a"}
        ).json()
    # The second worker routed none of these requests: it finds them in the prediction log.
    with TestClient(create_app(settings(home), store=home.store)) as second:
        credited = [reward(second, s["request_id"], 1) for s in served]
        assert all(r.status_code == 200 for r in credited)
        assert [r.json()["bandit_arm"] for r in credited] == [s["variant"] for s in served]
        again = reward(second, served[0]["request_id"], 1)
        assert (again.status_code, again.json()["bandit_arm"]) == (200, None)
        assert reward(second, test["request_id"], 1).json()["bandit_arm"] is None
        unknown = reward(second, "no-such-request", 0)
        assert (unknown.status_code, unknown.json()["bandit_arm"]) == (200, None)
        bandit = second.get("/v1/deployments/offers").json()["bandit"]
    wanted = Counter(s["variant"] for s in served)
    assert {arm: bandit["arms"][arm]["trials"] for arm in ("a", "b")} == {
        arm: wanted[arm] for arm in ("a", "b")
    }


def test_gateway_bandit_policy_comes_from_the_deployment_settings(home: Home) -> None:
    home.deployments.create(
        "offers",
        RoutingSpec(variants=ARMS, strategy="bandit"),
        settings={"bandit_policy": "epsilon_greedy", "bandit_epsilon": 0.2},
    )
    home.deployments.create("clicks", RoutingSpec(variants=ARMS, strategy="bandit"))
    with TestClient(create_app(settings(home), store=home.store)) as client:
        offers = client.get("/v1/deployments/offers").json()
        assert offers["bandit"]["policy"] == "EpsilonGreedy"
        assert offers["settings"]["bandit_epsilon"] == 0.2
        assert client.get("/v1/deployments/clicks").json()["bandit"]["policy"] == (
            "ThompsonSampling"
        )
        served = client.post(PREDICT, json={"inputs": record()}).json()
        money = reward(client, served["request_id"], 12.5)  # a real-valued reward
        assert money.status_code == 200, money.text
        assert money.json()["bandit_arm"] == served["variant"]
        clicked = client.post("/v1/deployments/clicks/predict", json={"inputs": record()}).json()
        refused = reward(client, clicked["request_id"], 12.5, deployment="clicks")
        assert refused.status_code == 422
        assert "binary rewards" in refused.json()["message"]
