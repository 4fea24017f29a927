"""A steward home with small registered scikit-learn models, for deployment and gateway tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from steward.registry import RegistryService
from steward.serving import DeploymentService, GatewaySettings
from steward.serving._predlog import PredictionLog
from steward.store import Store, StoreSettings


@dataclass
class Home:
    store: Store
    registry: RegistryService
    deployments: DeploymentService
    path: Path


def fitted(seed: int) -> tuple[LogisticRegression, np.ndarray]:
    """A small classifier on three float features (plain array input)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.3, size=200) > 0).astype(int)
    return LogisticRegression().fit(x, y), x


def open_home(path: Path, database_url: str | None = None) -> Home:
    """Initialize a home with fraud:1 (production, @champion) and fraud:2 (staging)."""
    overrides = {"home": path}
    if database_url is not None:
        overrides["database_url"] = database_url
    store = Store.open(StoreSettings(**overrides))  # type: ignore[arg-type]
    store.initialize()
    registry = RegistryService(store)
    for seed in (1, 2):
        model, x = fitted(seed)
        registry.register(model, name="fraud", sample_input=x[:20], signature=None)
    registry.transition("fraud:1", "production", aliases=["champion"])
    registry.transition("fraud:2", "staging")
    return Home(store, registry, DeploymentService(store, registry), path)


def record(amount: float = 0.5, hour: float = 1.0, age: float = -0.2) -> dict[str, float]:
    """One valid input record."""
    return {"x0": amount, "x1": hour, "x2": age}


def gateway_settings(home: Home, **overrides: object) -> GatewaySettings:
    """Settings of an insecure-local gateway on ``home`` that does not poll during a test."""
    values: dict[str, object] = {
        "home": home.path,
        "gateway_insecure_local": True,
        "gateway_poll_interval": 30.0,
    }
    values.update(overrides)
    return GatewaySettings(**values)  # type: ignore[arg-type]


def query_log(home: Path, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    """Rows of DuckDB SQL over the prediction log of the home at ``home``, read apart."""
    log = PredictionLog(home / "prediction-log", worker_id="reader")
    try:
        rows: list[dict[str, Any]] = log.query(sql, params).to_pylist()
        return rows
    finally:
        log.close()
