"""Fuzzing the predict body: any bytes, any JSON, near-valid records: never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient
from tests.serving._deploy_support import Home, open_home
from tests.serving.test_gateway import logged_ids

from steward.serving import GatewaySettings, Variant, create_app

URL = "/v1/deployments/fraud-api/predict"
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
near_records = st.fixed_dictionaries(
    {"x0": scalars, "x1": scalars},
    optional={"x2": scalars, "x9": scalars, "": scalars},
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    json_values.map(lambda v: json.dumps({"inputs": v}).encode()),
    near_records.map(lambda r: json.dumps({"inputs": r}).encode()),
    st.lists(near_records, max_size=5).map(lambda r: json.dumps({"inputs": r}).encode()),
    st.dictionaries(st.sampled_from(["x0", "x1", "x2", "z"]), st.lists(scalars, max_size=3)).map(
        lambda c: json.dumps({"inputs": c}).encode()
    ),
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Home]]:
    home = open_home(Path(tmp_path_factory.mktemp("fuzz")) / "home")
    home.deployments.create("fraud-api", [Variant("champion", "fraud@champion")])
    gateway = GatewaySettings(home=home.path, gateway_insecure_local=True)  # type: ignore[call-arg]
    with TestClient(create_app(gateway, store=home.store)) as client:
        yield client, home
    home.store.close()


answered: set[str] = set()


@FUZZ
@given(body=bodies)
def test_gateway_fuzz_predict_body_never_500(served: tuple[TestClient, Home], body: bytes) -> None:
    client, _ = served
    response = client.post(URL, content=body, headers={"content-type": "application/json"})
    assert response.status_code in (200, 413, 422), (response.status_code, response.text, body)
    payload = response.json()
    if response.status_code == 200:
        answered.add(payload["request_id"])
    else:
        assert payload["message"]


def test_gateway_fuzz_every_answered_request_is_logged(served: tuple[TestClient, Home]) -> None:
    client, home = served
    for amount in (0.1, 0.2, 0.3):
        response = client.post(URL, json={"inputs": {"x0": amount, "x1": 0.0, "x2": 1}})
        answered.add(response.json()["request_id"])
    assert answered <= logged_ids(home)
