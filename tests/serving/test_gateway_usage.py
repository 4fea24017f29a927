"""Cost and memory in the gateway: CPU seconds per variant, model memory, the memory budget."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient
from tests.serving._deploy_support import Home, gateway_settings, open_home, record

from steward.core import BackendUnavailableError
from steward.serving import Variant, create_app
from steward.serving._residency import ModelResidency, ModelSlot, measure_load, resident_bytes

MiB = 1024 * 1024


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = open_home(tmp_path / "home")
    yield h
    h.store.close()


settings = gateway_settings


def expected(home: Home, ref: str, rows: list[dict[str, float]]) -> list[float]:
    model = home.registry.load(ref)
    matrix = np.array([[r["x0"], r["x1"], r["x2"]] for r in rows])
    return model.predict_proba(matrix)[:, 1].tolist()  # type: ignore[no-any-return]


def positive(response: Any) -> list[float]:
    assert response.status_code == 200, response.text
    return [row["probabilities"]["1"] for row in response.json()["outputs"]]


def metric(text: str, name: str, deployment: str, variant: str = "champion") -> float:
    prefix = f'{name}{{deployment="{deployment}",variant="{variant}"}} '
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    assert lines, f"no {prefix!r} in the metrics"
    return float(lines[0][len(prefix) :])


def test_cpu_seconds_requests_and_cost_per_1k_in_status_and_metrics(home: Home) -> None:
    home.deployments.create("fraud-api", [Variant("champion", "fraud@champion")])
    rows = [record(amount=i / 10) for i in range(10)]
    with TestClient(create_app(settings(home, gateway_cpu_hour_price=0.05), store=home.store)) as c:
        for _ in range(5):
            assert positive(c.post("/v1/deployments/fraud-api/predict", json={"inputs": rows}))
        status = c.get("/v1/deployments/fraud-api").json()
        metrics = c.get("/metrics").text
    (variant,) = status["variants"]
    assert variant["requests"] == 5
    assert variant["predictions"] == 50
    assert 1 <= variant["model_calls"] <= 5
    assert variant["cpu_seconds"] > 0
    cost = variant["cpu_seconds"] / 50 * 1000 * 0.05 / 3600
    assert variant["cost_per_1k_predictions"] == pytest.approx(cost, rel=0.01)
    assert variant["loaded"] is True
    assert variant["memory_bytes"] >= 0
    assert variant["charged_bytes"] >= home.registry.get_version("fraud:1").artifact_size > 0
    usage = status["usage"]
    assert (usage["requests"], usage["predictions"]) == (5, 50)
    assert usage["cost_per_1k_predictions"] == pytest.approx(cost, rel=0.01)
    cpu = metric(metrics, "steward_gateway_model_cpu_seconds_total", "fraud-api")
    assert cpu == pytest.approx(variant["cpu_seconds"], abs=1e-6)
    assert metric(metrics, "steward_gateway_model_predictions_total", "fraud-api") == 50
    per_1k = metric(metrics, "steward_gateway_cost_per_1k_predictions", "fraud-api")
    assert per_1k == pytest.approx(cost, rel=0.01)
    assert metric(metrics, "steward_gateway_model_loaded", "fraud-api") == 1


def test_a_tiny_memory_budget_unloads_idle_models_and_reloads_them_on_demand(home: Home) -> None:
    home.deployments.create("a", [Variant("champion", "fraud:1")])
    home.deployments.create("b", [Variant("champion", "fraud:2")])
    rows = [record(), record(amount=-2.0, hour=0.3)]
    want = {"a": expected(home, "fraud:1", rows), "b": expected(home, "fraud:2", rows)}
    assert want["a"] != want["b"]
    app = create_app(settings(home, gateway_memory_budget_mb=0.001), store=home.store)
    with TestClient(app) as c:

        def status(name: str) -> dict[str, Any]:
            variant: dict[str, Any] = c.get(f"/v1/deployments/{name}").json()["variants"][0]
            return variant

        def predict(name: str) -> list[float]:
            return positive(c.post(f"/v1/deployments/{name}/predict", json={"inputs": rows}))

        # Each model alone is over the budget: both were unloaded once loaded; still ready.
        assert [status(n)["loaded"] for n in "ab"] == [False, False]
        assert c.get("/readyz").status_code == 200
        assert predict("a") == pytest.approx(want["a"])
        assert predict("b") == pytest.approx(want["b"])  # its reload unloads the idle "a"
        a, b = status("a"), status("b")
        assert (a["loaded"], a["unloads"], a["reloads"]) == (False, 2, 1)
        assert (b["loaded"], b["unloads"], b["reloads"]) == (True, 1, 1)
        with ThreadPoolExecutor(4) as pool:
            names = list("abab" * 5)
            for name, got in zip(names, pool.map(predict, names), strict=True):
                assert got == pytest.approx(want[name])
        metrics = c.get("/metrics").text
        assert metric(metrics, "steward_gateway_model_reloads_total", "a") >= 2
        assert metric(metrics, "steward_gateway_model_unloads_total", "b") >= 1
        assert "steward_gateway_memory_budget_bytes 1048.0" in metrics
        assert status("a")["cost_per_1k_predictions"] is None  # no price configured


def test_a_model_that_cannot_be_reloaded_answers_503(home: Home) -> None:
    home.deployments.create("a", [Variant("champion", "fraud:1")])
    app = create_app(settings(home, gateway_memory_budget_mb=0.0), store=home.store)
    with TestClient(app) as c:
        version = home.registry.get_version("fraud:1")
        for path in (home.path / "artifacts").rglob("*"):
            if path.is_file() and version.artifact_digest in path.name:
                path.write_bytes(b"tampered")
        response = c.post("/v1/deployments/a/predict", json={"inputs": record()})
        assert response.status_code == 503, response.text
        assert "could not be loaded again" in response.json()["message"]
        assert c.get("/readyz").status_code == 200


def _slot(home: Home, ref: str, last_used: float) -> ModelSlot:
    slot = ModelSlot(
        ref,
        home.registry.load(ref),
        load=lambda: home.registry.load(ref),
        memory_bytes=10 * MiB,
        load_seconds=0.0,
    )
    slot.last_used = last_used
    return slot


def test_residency_unloads_the_least_recently_used_idle_slot(home: Home) -> None:
    slots = [_slot(home, "fraud:1", 1.0), _slot(home, "fraud:2", 2.0), _slot(home, "fraud:1", 3.0)]
    residency = ModelResidency(25 * MiB, lambda: slots)
    slots[0].in_use = 1  # busy: never unloaded
    assert residency.enforce() == [slots[1]]
    assert residency.loaded_bytes() == 20 * MiB
    assert slots[1].model.model is None  # its metadata stays for request checks and status
    assert slots[1].model.signature == slots[0].model.signature
    slots[0].in_use = 0

    async def use_second() -> None:
        async with residency.use(slots[1]):
            assert slots[1].loaded

    asyncio.run(use_second())
    assert (slots[1].reloads, slots[0].loaded, slots[0].unloads) == (1, False, 1)
    assert slots[0].current() is not None and slots[0].reloads == 1  # the batch thread's path
    assert ModelResidency(None, lambda: slots).enforce() == []


def test_reload_failures_name_the_model(home: Home) -> None:
    def broken() -> Any:
        raise BackendUnavailableError("artifact store away")

    slot = ModelSlot(
        "fraud:1", home.registry.load("fraud:1"), load=broken, memory_bytes=0, load_seconds=0
    )
    assert slot.unload() and not slot.unload()
    with pytest.raises(BackendUnavailableError, match=r"fraud:1 .* artifact store away"):
        slot.current()


def test_measure_load_sees_resident_growth() -> None:
    assert resident_bytes() > 0
    _, grown, seconds = measure_load(lambda: b"x" * (64 * MiB))  # type: ignore[arg-type,return-value]
    assert grown >= 32 * MiB
    assert seconds >= 0
