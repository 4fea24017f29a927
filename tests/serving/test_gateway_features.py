"""Online features in the gateway: a real features.py, a materialized SQLite store, the real app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from starlette.testclient import TestClient
from tests.serving._deploy_support import query_log

from steward.core import FrozenClock, InvalidInputError
from steward.features import FeatureStore, load_definitions
from steward.registry import RegistryService
from steward.serving import (
    DeploymentService,
    DeploymentSettings,
    GatewaySettings,
    Variant,
    create_app,
)
from steward.serving._online_features import FeatureBinding, FetchedFeatures
from steward.store import Store, StoreSettings

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")

FEATURES_PY = """
from datetime import timedelta
from steward.features import Entity, Feature, FeatureService, FeatureView, FileSource

customer = Entity("customer", ["customer_id"])
profiles = FileSource("profiles", "data/profiles.parquet", "ts")
profile = FeatureView(
    "profile",
    customer,
    profiles,
    [Feature("score", "float64"), Feature("email", "string", pii=True)],
    ttl=timedelta(days=1),
)
scoring = FeatureService("scoring", ["profile:score"])
contact = FeatureService("contact", ["profile:score", "profile:email"])
"""


class Home:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.store = Store.open(StoreSettings(home=path))
        self.store.initialize()
        self.store.clock = FrozenClock(T0)
        self.registry = RegistryService(self.store)
        self.deployments = DeploymentService(self.store, self.registry)


def _write_repo(repo: Path) -> Path:
    rows = [
        {"customer_id": 1, "ts": T0 - timedelta(hours=1), "score": 2.0, "email": "a@x.org"},
        {"customer_id": 2, "ts": T0 - timedelta(days=2), "score": -2.0, "email": "b@x.org"},
        {"customer_id": 3, "ts": T0 - timedelta(hours=2), "score": None, "email": "c@x.org"},
    ]
    schema = pa.schema(
        [("customer_id", pa.int64()), ("ts", TS), ("score", pa.float64()), ("email", pa.string())]
    )
    (repo / "data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), repo / "data" / "profiles.parquet")
    (repo / "features.py").write_text(FEATURES_PY)
    return repo / "features.py"


def _credit_model() -> tuple[LogisticRegression, pd.DataFrame]:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"amount": rng.normal(size=300), "score": rng.normal(size=300)})
    y = (frame["amount"] - frame["score"] > 0).astype(int)
    return LogisticRegression().fit(frame, y), frame


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = Home(tmp_path / "home")
    features = FeatureStore(h.store)
    features.apply(load_definitions(_write_repo(tmp_path / "repo")))
    features.materialize(progress=False)
    features.close()
    model, frame = _credit_model()
    h.registry.register(model, name="credit", sample_input=frame[:20])
    h.registry.register(model, name="credit", sample_input=frame[:20])
    h.deployments.create(
        "credit-api",
        [Variant("champion", "credit:1"), Variant("shadow", "credit:2", role="shadow")],
        settings={"feature_service": "scoring"},
    )
    yield h
    h.store.close()


def _settings(home: Home) -> GatewaySettings:
    return GatewaySettings(home=home.path, gateway_insecure_local=True, gateway_poll_interval=30.0)  # type: ignore[call-arg]


@pytest.fixture
def client(home: Home) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(home), store=home.store)) as c:
        yield c


def _predict(client: TestClient, inputs: Any, name: str = "credit-api") -> Any:
    return client.post(f"/v1/deployments/{name}/predict", json={"inputs": inputs})


def _logged(home: Home, request_id: str) -> list[dict[str, Any]]:
    return query_log(
        home.path,
        "SELECT variant, shadow, features FROM predictions WHERE request_id = ? ORDER BY shadow",
        [request_id],
    )


def test_features_are_fetched_merged_into_the_input_and_logged(home: Home) -> None:
    with TestClient(create_app(_settings(home), store=home.store)) as client:
        inputs = [{"customer_id": 1, "amount": 0.5}, {"customer_id": 2, "amount": 0.5}]
        response = _predict(client, inputs)
        assert response.status_code == 200, response.text
        body = response.json()
        status = client.get("/v1/deployments/credit-api").json()
    model = home.registry.load("credit:1")
    expected = model.predict_proba(pd.DataFrame({"amount": [0.5, 0.5], "score": [2.0, -2.0]}))
    got = [row["probabilities"]["1"] for row in body["outputs"]]
    assert got == pytest.approx(expected[:, 1].tolist())
    assert status["features"]["service"] == "scoring"
    assert status["features"]["statuses"] == {"outside_ttl": 1, "present": 1}
    records = _logged(home, body["request_id"])
    assert [(r["variant"], r["shadow"]) for r in records] == [("champion", False), ("shadow", True)]
    logged = json.loads(records[0]["features"])
    assert logged["service"] == "scoring"
    assert logged["read_at"] == T0.isoformat()
    assert logged["rows"] == [
        {"score": {"value": 2.0, "status": "present", "age_s": 3600.0}},
        {"score": {"value": -2.0, "status": "outside_ttl", "age_s": 172800.0}},
    ]
    assert json.loads(records[1]["features"]) == logged  # the shadow saw the same features


def test_a_missing_entity_key_is_422_naming_the_field(client: TestClient) -> None:
    response = _predict(client, [{"customer_id": 1, "amount": 0.5}, {"amount": 1.0}])
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert errors == [
        {
            "row": 1,
            "field": "customer_id",
            "message": "missing: the entity key 'customer_id' of feature service 'scoring'",
        }
    ]
    bad_key = _predict(client, {"customer_id": [1], "amount": 0.5})
    assert bad_key.status_code == 422


def test_a_field_the_service_serves_cannot_be_sent(client: TestClient) -> None:
    response = _predict(client, {"customer_id": 1, "amount": 0.5, "score": 9.0})
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["field"] == "score"
    assert "served by feature service 'scoring'" in error["message"]


def test_an_entity_without_a_value_is_422_when_the_model_needs_one(client: TestClient) -> None:
    unknown = _predict(client, {"customer_id": 99, "amount": 0.5})
    assert unknown.status_code == 422, unknown.text
    assert "customer_id=99" in unknown.json()["message"]
    assert "not_found" in unknown.json()["errors"][0]["message"]
    null = _predict(client, {"customer_id": 3, "amount": 0.5})
    assert null.status_code == 422
    assert "(status null)" in null.json()["errors"][0]["message"]


def test_concurrent_requests_share_one_online_read(client: TestClient) -> None:
    runtime = client.app.state.worker.runtimes["credit-api"]  # type: ignore[attr-defined]

    async def fetch_many() -> list[Any]:
        calls = [runtime.features.fetch([{"customer_id": k % 2 + 1}]) for k in range(8)]
        return list(await asyncio.gather(*calls))

    before = runtime.features.reads
    fetched = client.portal.call(fetch_many)  # type: ignore[union-attr]
    assert runtime.features.reads == before + 1
    assert [f.values[0]["score"] for f in fetched] == [2.0, -2.0] * 4


def test_entity_keys_map_join_keys_to_request_fields(home: Home) -> None:
    home.deployments.update(
        "credit-api",
        [Variant("champion", "credit:1")],
        settings={"entity_keys": {"customer_id": "customer"}},
    )
    with TestClient(create_app(_settings(home), store=home.store)) as client:
        response = _predict(client, {"customer": 1, "amount": 0.5})
        assert response.status_code == 200, response.text
        missing = _predict(client, {"customer_id": 1, "amount": 0.5})
    assert missing.status_code == 422
    assert [e["field"] for e in missing.json()["errors"]] == ["customer"]


def test_a_revision_that_cannot_bind_its_features_never_takes_traffic(
    client: TestClient, home: Home
) -> None:
    for service, words in (("nope", "no feature service 'nope'"), ("contact", "'email'")):
        home.deployments.update("credit-api", settings={"feature_service": service})
        client.portal.call(client.app.state.worker.refresh)  # type: ignore[union-attr,attr-defined]
        status = client.get("/v1/deployments/credit-api").json()
        assert status["revision"] == 1
        assert words in status["load_error"], status["load_error"]
        served = _predict(client, {"customer_id": 1, "amount": 0.5})
        assert served.status_code == 200 and served.json()["revision"] == 1
    assert client.get("/readyz").status_code == 200


def test_pii_feature_values_stay_out_of_the_log() -> None:
    binding = FeatureBinding(
        "contact", (("customer_id", "customer_id"),), ("score", "email"), frozenset({"email"}),
        {}, {},
    )  # fmt: skip
    fetched = FetchedFeatures(
        binding,
        [{"score": 1.0, "email": "a@x.org"}],
        [{"score": "present", "email": "present"}],
        [{"score": 5.0, "email": 5.0}],
        T0,
        1,
    )
    assert fetched.log_entry()["rows"] == [
        {
            "score": {"value": 1.0, "status": "present", "age_s": 5.0},
            "email": {"status": "present", "age_s": 5.0, "pii": True},
        }
    ]
    records = fetched.model_records("any", [{"customer_id": 1}])
    assert records == [{"customer_id": 1, "score": 1.0, "email": "a@x.org"}]


def test_deployment_settings_check_the_feature_settings() -> None:
    listed = DeploymentSettings(feature_service="scoring", entity_keys=["customer_id"])  # type: ignore[arg-type]
    assert listed.entity_keys == {"customer_id": "customer_id"}
    assert DeploymentSettings.from_dict(listed.to_dict()) == listed
    with pytest.raises(InvalidInputError, match="without a feature_service"):
        DeploymentSettings(entity_keys={"customer_id": "c"})
    with pytest.raises(InvalidInputError, match="must map join keys"):
        DeploymentSettings(feature_service="scoring", entity_keys={"customer_id": 3})  # type: ignore[dict-item]
    with pytest.raises(InvalidInputError, match="must name a feature service"):
        DeploymentSettings(feature_service=" ")
