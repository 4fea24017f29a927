"""Who may call the gateway: bearer tokens with ``predict:<deployment>``; 401 and 403 otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from tests.governance._support import token_for
from tests.serving._deploy_support import Home, open_home, record

from steward.governance import GovernanceSettings, IdentityService
from steward.serving import GatewaySettings, Variant, create_app

ROOT = GovernanceSettings(user="root")
URL = "/v1/deployments/fraud-api/predict"


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = open_home(tmp_path / "home")
    h.deployments.create("fraud-api", [Variant("champion", "fraud@champion")])
    identities = IdentityService(h.store, settings=ROOT)
    identities.create_service_account("app", roles=["ml-engineer"])
    identities.create_user("viewer", roles=["viewer"])
    yield h
    h.store.close()


@pytest.fixture
def client(home: Home) -> Iterator[TestClient]:
    settings = GatewaySettings(home=home.path)  # type: ignore[call-arg]
    with TestClient(create_app(settings, store=home.store, governance=ROOT)) as c:
        yield c


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_gateway_auth_token_with_the_predict_scope_is_served(
    client: TestClient, home: Home
) -> None:
    secret = token_for(home.store, "app", scopes=["predict:fraud-api"])
    response = client.post(URL, json={"inputs": record()}, headers=bearer(secret))
    assert response.status_code == 200, response.text
    status = client.get("/v1/deployments/fraud-api", headers=bearer(secret))
    assert status.status_code == 200


def test_gateway_auth_missing_or_bad_credentials_get_401(client: TestClient) -> None:
    missing = client.post(URL, json={"inputs": record()})
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert "Authorization: Bearer" in missing.json()["message"]
    forged = client.post(URL, json={"inputs": record()}, headers=bearer("stw_forged"))
    assert forged.status_code == 401
    junk = client.post(URL, json={"inputs": record()}, headers=bearer("x" * 10_000))
    assert junk.status_code == 401


def test_gateway_auth_without_the_scope_gets_403_and_is_audited(
    client: TestClient, home: Home
) -> None:
    other = token_for(home.store, "app", scopes=["predict:other-api"])
    assert client.post(URL, json={"inputs": record()}, headers=bearer(other)).status_code == 403
    viewer = token_for(home.store, "viewer", scopes=["models:read"])
    response = client.post(URL, json={"inputs": record()}, headers=bearer(viewer))
    assert response.status_code == 403
    assert "predict:fraud-api" in response.json()["message"]
    denied = home.store.audit.list_events(action="access.denied")
    assert {e.details["resource"] for e in denied} == {"deployment:fraud-api"}
    feedback = client.post(
        "/v1/feedback",
        json={"request_id": "r1", "deployment": "fraud-api", "label": 1},
        headers=bearer(viewer),
    )
    assert feedback.status_code == 403


def test_gateway_auth_override_header_needs_deployments_write(
    client: TestClient, home: Home
) -> None:
    header = {"X-Steward-Variant": "champion"}
    plain = token_for(home.store, "app", scopes=["predict:fraud-api"])
    refused = client.post(URL, json={"inputs": record()}, headers={**bearer(plain), **header})
    assert refused.status_code == 403
    assert "X-Steward-Variant" in refused.json()["message"]
    deployer = token_for(home.store, "app", scopes=["predict:fraud-api", "deployments:write"])
    allowed = client.post(URL, json={"inputs": record()}, headers={**bearer(deployer), **header})
    assert allowed.status_code == 200
    assert allowed.json()["test"] is True


def test_gateway_auth_feedback_needs_the_feedback_scope(client: TestClient, home: Home) -> None:
    predict_only = token_for(home.store, "app", scopes=["predict:fraud-api"])
    served = client.post(URL, json={"inputs": record()}, headers=bearer(predict_only))
    body = {"request_id": served.json()["request_id"], "deployment": "fraud-api", "label": 1}
    refused = client.post("/v1/feedback", json=body, headers=bearer(predict_only))
    assert refused.status_code == 403
    assert "feedback:fraud-api" in refused.json()["message"]
    other = token_for(home.store, "app", scopes=["feedback:other-api"])
    assert client.post("/v1/feedback", json=body, headers=bearer(other)).status_code == 403
    labeller = token_for(home.store, "app", scopes=["feedback:fraud-api"])
    accepted = client.post("/v1/feedback", json=body, headers=bearer(labeller))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["logged"] is True
    # The feedback scope does not let its holder predict.
    assert client.post(URL, json={"inputs": record()}, headers=bearer(labeller)).status_code == 403
