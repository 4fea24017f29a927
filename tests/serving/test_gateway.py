"""The gateway over a real registry on a temporary home: predict, feedback, status, reloads."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from starlette.testclient import TestClient
from tests.serving._deploy_support import Home, fitted, open_home, query_log, record

from steward.serving import GatewaySettings, Variant, create_app


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = open_home(tmp_path / "home")
    h.deployments.create("fraud-api", [Variant("champion", "fraud@champion")])
    yield h
    h.store.close()


def settings(home: Home, **overrides: object) -> GatewaySettings:
    values: dict[str, object] = {
        "home": home.path,
        "gateway_insecure_local": True,
        "gateway_poll_interval": 30.0,
        "gateway_max_body_bytes": 64 * 1024,
    }
    values.update(overrides)
    return GatewaySettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def client(home: Home) -> Iterator[TestClient]:
    with TestClient(create_app(settings(home), store=home.store)) as c:
        yield c


def refresh(client: TestClient) -> None:
    """Run one poll of the deployments now (what the background poller does every second)."""
    client.portal.call(client.app.state.worker.refresh)  # type: ignore[union-attr,attr-defined]


def logged_ids(home: Home) -> set[str]:
    rows = query_log(home.path, "SELECT request_id FROM predictions WHERE NOT shadow")
    return {row["request_id"] for row in rows}


def test_gateway_predicts_one_record_a_batch_and_columns(client: TestClient, home: Home) -> None:
    one = client.post("/v1/deployments/fraud-api/predict", json={"inputs": record()})
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["model_version"] == "fraud:1"
    assert body["variant"] == "champion"
    assert body["fallback"] is False
    assert len(body["outputs"]) == 1
    assert body["outputs"][0]["label"] in (0, 1)
    assert set(body["outputs"][0]["probabilities"]) == {"0", "1"}
    batch = client.post(
        "/v1/deployments/fraud-api/predict", json={"inputs": [record(), record(amount=-3.0)]}
    )
    assert batch.status_code == 200
    assert len(batch.json()["outputs"]) == 2
    columns = client.post(
        "/v1/deployments/fraud-api/predict",
        json={"inputs": {"x0": [0.5, -3.0], "x1": [1.0, 1.0], "x2": [-0.2, -0.2]}},
    )
    assert columns.status_code == 200
    assert columns.json()["outputs"] == batch.json()["outputs"]
    ids = {r.json()["request_id"] for r in (one, batch, columns)}
    assert ids <= logged_ids(home)


@pytest.mark.parametrize(
    ("inputs", "field", "words"),
    [
        ({"x0": 1.0, "x1": 2.0}, "x2", "missing"),
        ({**record(), "extra": 1}, "extra", "unexpected"),
        ({**record(), "x1": "high"}, "x1", "expected a number"),
        ({**record(), "x1": True}, "x1", "expected a number"),
        ({**record(), "x0": None}, "x0", "not nullable"),
    ],
)
def test_gateway_bad_records_get_422_naming_the_field(
    client: TestClient, inputs: dict[str, object], field: str, words: str
) -> None:
    response = client.post("/v1/deployments/fraud-api/predict", json={"inputs": inputs})
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert any(e["field"] == field and words in e["message"] for e in errors), errors


def test_gateway_infinity_gets_422_naming_the_field(client: TestClient) -> None:
    body = b'{"inputs": {"x0": 1e999, "x1": 1.0, "x2": -1e999}}'
    response = client.post(
        "/v1/deployments/fraud-api/predict",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    # msgspec refuses numbers out of float range while decoding, naming the path.
    assert "Number out of range" in response.json()["message"]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"inputs": NaN}',
        b'{"records": []}',
        b'{"inputs": 3}',
        b'{"inputs": []}',
        b'{"inputs": [1, 2]}',
        b'{"inputs": {"x0": [1.0], "x1": 2.0, "x2": [1.0]}}',
        b'{"inputs": {"x0": [1.0, 2.0], "x1": [2.0], "x2": [1.0]}}',
        b"",
    ],
)
def test_gateway_malformed_bodies_get_422(client: TestClient, body: bytes) -> None:
    response = client.post(
        "/v1/deployments/fraud-api/predict",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["message"]


def test_gateway_huge_payload_gets_413(client: TestClient) -> None:
    rows = [record()] * 5000
    response = client.post("/v1/deployments/fraud-api/predict", json={"inputs": rows})
    assert response.status_code == 413
    assert "STEWARD_GATEWAY_MAX_BODY_BYTES" in response.json()["message"]


def test_gateway_unknown_deployment_is_404_listing_deployments(client: TestClient) -> None:
    response = client.post("/v1/deployments/nope/predict", json={"inputs": record()})
    assert response.status_code == 404
    assert "fraud-api" in response.json()["message"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/deployments/fraud-api/predict", 405),
        ("PUT", "/v1/deployments/fraud-api/predict", 405),
        ("POST", "/v1/deployments//predict", 404),
        ("POST", "/v1/deployments/fraud-api/x/predict", 404),
        ("POST", "/v1/deployments/fraud-api/predict/", 307),  # Starlette's slash redirect
    ],
)
def test_gateway_paths_near_predict_are_refused_like_any_other_route(
    client: TestClient, method: str, path: str, status: int
) -> None:
    response = client.request(method, path, json={"inputs": record()}, follow_redirects=False)
    assert response.status_code == status


def test_gateway_predict_answers_on_the_fast_path_with_the_full_handler(
    client: TestClient,
) -> None:
    # Bad input on the predict path still gets the handler's own errors, not Starlette's.
    bad = client.post(
        "/v1/deployments/fraud-api/predict",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert bad.status_code == 422
    assert bad.json()["error"] == "invalid_input"
    good = client.post("/v1/deployments/fraud-api/predict", json={"inputs": record()})
    assert good.status_code == 200 and good.json()["deployment"] == "fraud-api"


def test_gateway_health_ready_status_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["deployments"] == {"fraud-api": 1}
    client.post("/v1/deployments/fraud-api/predict", json={"inputs": record()})
    status = client.get("/v1/deployments/fraud-api").json()
    assert status["revision"] == 1
    assert status["variants"][0]["requests"] == 1
    assert status["variants"][0]["traffic_share"] == 1.0
    metrics = client.get("/metrics").text
    wanted = 'deployment="fraud-api",status="200",variant="champion"'
    assert f"steward_gateway_requests_total{{{wanted}}} 1.0" in metrics
    assert "steward_gateway_request_latency_seconds_bucket" in metrics
    assert "steward_gateway_batch_requests_bucket" in metrics


def test_gateway_rollback_takes_effect_on_the_next_poll(client: TestClient, home: Home) -> None:
    home.deployments.update("fraud-api", [Variant("challenger", "fraud:2")])
    refresh(client)
    after = client.post("/v1/deployments/fraud-api/predict", json={"inputs": record()}).json()
    assert (after["revision"], after["model_version"]) == (2, "fraud:2")
    home.deployments.rollback("fraud-api", 1)
    refresh(client)
    back = client.post("/v1/deployments/fraud-api/predict", json={"inputs": record()}).json()
    assert (back["revision"], back["model_version"], back["variant"]) == (3, "fraud:1", "champion")


def test_gateway_broken_revision_keeps_the_old_one_serving(client: TestClient, home: Home) -> None:
    home.deployments.update("fraud-api", [Variant("challenger", "fraud:2")])
    # Break the new version's artifact: its bytes no longer match the digest.
    version = home.registry.get_version("fraud:2")
    for path in (home.path / "artifacts").rglob("*"):
        if path.is_file() and version.artifact_digest in path.name:
            path.write_bytes(b"tampered")
    refresh(client)
    response = client.post("/v1/deployments/fraud-api/predict", json={"inputs": record()})
    assert response.status_code == 200
    assert response.json()["revision"] == 1
    status = client.get("/v1/deployments/fraud-api").json()
    assert status["load_error"] and "revision 2" in status["load_error"]


def test_gateway_falls_back_when_the_model_fails(home: Home) -> None:
    home.deployments.update(
        "fraud-api", settings={"fallback": {"kind": "constant", "value": "review"}}
    )
    with TestClient(create_app(settings(home), store=home.store)) as client:
        runtime = client.app.state.worker.runtimes["fraud-api"]  # type: ignore[attr-defined]
        variant = runtime.variants["champion"]

        def broken(blocks: list[object]) -> list[object]:
            raise RuntimeError("model exploded")

        variant.batcher.fn = broken
        response = client.post("/v1/deployments/fraud-api/predict", json={"inputs": record()})
        assert response.status_code == 200
        body = response.json()
        assert body["fallback"] is True
        assert body["outputs"] == ["review"]
        request_id = body["request_id"]
    rows = query_log(
        home.path, "SELECT fallback, error FROM predictions WHERE request_id = ?", [request_id]
    )
    assert rows[0]["fallback"] is True
    assert "model exploded" in rows[0]["error"]


def test_gateway_model_failure_without_fallback_is_503(client: TestClient) -> None:
    runtime = client.app.state.worker.runtimes["fraud-api"]  # type: ignore[attr-defined]

    def broken(blocks: list[object]) -> list[object]:
        raise RuntimeError("model exploded")

    runtime.variants["champion"].batcher.fn = broken
    response = client.post("/v1/deployments/fraud-api/predict", json={"inputs": record()})
    assert response.status_code == 503
    assert "no fallback" in response.json()["message"]


def test_gateway_shadow_is_logged_never_returned(home: Home) -> None:
    home.deployments.update(
        "fraud-api",
        [Variant("champion", "fraud:1"), Variant("next", "fraud:2", role="shadow")],
    )
    with TestClient(create_app(settings(home), store=home.store)) as client:
        response = client.post("/v1/deployments/fraud-api/predict", json={"inputs": record()})
        assert response.json()["variant"] == "champion"
        request_id = response.json()["request_id"]
    rows = query_log(
        home.path,
        "SELECT variant, shadow FROM predictions WHERE request_id = ? ORDER BY shadow",
        [request_id],
    )
    assert rows == [
        {"variant": "champion", "shadow": False},
        {"variant": "next", "shadow": True},
    ]


def test_a_variant_whose_model_takes_the_columns_in_another_order_gets_them_so(
    home: Home,
) -> None:
    """Requests are checked against the primary's signature as they are decoded; a
    shadow (or canary) that takes the same columns in another order gets its own matrix."""
    model, x = fitted(3)
    frame = pd.DataFrame(x[:, [2, 0, 1]], columns=["x2", "x0", "x1"])
    model = LogisticRegression().fit(frame, model.predict(x))
    home.registry.register(model, name="fraud", sample_input=frame[:20])  # fraud:3
    home.deployments.update(
        "fraud-api",
        [Variant("champion", "fraud:1"), Variant("reordered", "fraud:3", role="shadow")],
    )
    rows = [record(0.5, 1.0, -0.2), record(-1.5, 0.25, 2.0)]
    columns = {name: [r[name] for r in rows] for name in ("x0", "x1", "x2")}
    with TestClient(create_app(settings(home), store=home.store)) as client:
        ids = []
        for inputs in (rows, columns):
            response = client.post("/v1/deployments/fraud-api/predict", json={"inputs": inputs})
            assert response.status_code == 200, response.text
            assert response.json()["variant"] == "champion"
            ids.append(response.json()["request_id"])
    expected = model.predict_proba(
        pd.DataFrame([[r["x2"], r["x0"], r["x1"]] for r in rows], columns=["x2", "x0", "x1"])
    )
    for request_id in ids:
        logged = query_log(
            home.path,
            "SELECT outputs, error FROM predictions WHERE request_id = ? AND shadow",
            [request_id],
        )
        assert len(logged) == 1 and logged[0]["error"] is None
        outputs = json.loads(logged[0]["outputs"])
        got = [[o["probabilities"]["0"], o["probabilities"]["1"]] for o in outputs]
        assert np.allclose(got, expected, rtol=0, atol=1e-9)


def test_gateway_feedback_is_logged(client: TestClient, home: Home) -> None:
    rid = client.post("/v1/deployments/fraud-api/predict", json={"inputs": record()}).json()[
        "request_id"
    ]
    ok = client.post(
        "/v1/feedback", json={"request_id": rid, "deployment": "fraud-api", "label": 1}
    )
    assert ok.status_code == 200, ok.text
    missing = client.post("/v1/feedback", json={"request_id": rid, "deployment": "fraud-api"})
    assert missing.status_code == 422
    unknown = client.post("/v1/feedback", json={"request_id": rid, "deployment": "x", "label": 1})
    assert unknown.status_code == 404
    labels = query_log(home.path, "SELECT label FROM feedback WHERE request_id = ?", [rid])
    assert len(labels) == 1


def test_gateway_override_header_needs_the_scope_and_marks_test(client: TestClient) -> None:
    response = client.post(
        "/v1/deployments/fraud-api/predict",
        json={"inputs": record()},
        headers={"X-Steward-Variant": "champion"},
    )
    assert response.status_code == 200
    assert response.json()["test"] is True
    unknown = client.post(
        "/v1/deployments/fraud-api/predict",
        json={"inputs": record()},
        headers={"X-Steward-Variant": "ghost"},
    )
    assert unknown.status_code == 422


def test_gateway_freezes_the_collector_only_when_asked(home: Home) -> None:
    gc.unfreeze()
    try:
        with TestClient(create_app(settings(home), store=home.store)) as client:
            assert client.get("/readyz").status_code == 200
            assert gc.get_freeze_count() == 0  # an embedding process is left alone
        with TestClient(create_app(settings(home), store=home.store, freeze_gc=True)) as client:
            assert client.get("/readyz").status_code == 200
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
