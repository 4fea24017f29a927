"""Small fitted models and held-out samples for the ONNX compilation tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

FEATURES = 30
TRAIN = 1_500
HELD_OUT = 300
EPOCH = 1.7e9  # Unix seconds: float32 keeps steps of 128 s here


def matrix(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(TRAIN + HELD_OUT, FEATURES))
    y = (X[:, 0] + X[:, 1] ** 2 - X[:, 2] * X[:, 3] > 0.5).astype(np.int64)
    return X, y


def hgb_classifier() -> tuple[HistGradientBoostingClassifier, np.ndarray]:
    X, y = matrix()
    model = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X[:TRAIN], y[:TRAIN])
    return model, X[TRAIN:]


def scaled_logistic() -> tuple[Pipeline, pd.DataFrame]:
    X, y = matrix(1)
    frame = pd.DataFrame(X[:, :8], columns=[f"f{i}" for i in range(8)])
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame[:TRAIN], y[:TRAIN])
    return model, frame[TRAIN:].reset_index(drop=True)


def transactions(seed: int = 2, rows: int = TRAIN + HELD_OUT) -> tuple[pd.DataFrame, np.ndarray]:
    """Mixed columns: a float, an int, and two strings, one with missing values."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 50.0, rows),
            "age": rng.integers(18, 90, rows),
            "country": rng.choice(np.array(["FR", "DE", "US", None], dtype=object), rows),
            "merchant": rng.choice(["grocery", "travel", "online"], rows),
        }
    )
    y = ((frame["amount"] > 100) ^ (frame["country"] == "US")).to_numpy().astype(np.int64)
    return frame, y


def column_pipeline() -> tuple[Pipeline, pd.DataFrame]:
    frame, y = transactions()
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["amount", "age"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["country", "merchant"]),
        ]
    )
    model = Pipeline([("prep", prep), ("clf", LogisticRegression())]).fit(frame[:TRAIN], y[:TRAIN])
    return model, frame[TRAIN:].reset_index(drop=True)


def hgb_regressor(scale: float = 1.0) -> tuple[HistGradientBoostingRegressor, np.ndarray]:
    X, _ = matrix(3)
    target = scale * (X[:, 0] * 3 + np.sin(X[:, 1]))
    model = HistGradientBoostingRegressor(max_iter=30, random_state=0)
    return model.fit(X[:TRAIN], target[:TRAIN]), X[TRAIN:]


def timestamps(seed: int = 4) -> tuple[pd.DataFrame, np.ndarray]:
    """A Unix-seconds feature spread over 1,000 s: float32 cannot tell its rows apart."""
    rng = np.random.default_rng(seed)
    rows = TRAIN + HELD_OUT
    frame = pd.DataFrame({"ts": EPOCH + rng.uniform(0, 1_000, rows), "x": rng.normal(size=rows)})
    y = (frame["ts"] > EPOCH + 500).to_numpy().astype(np.int64)
    return frame, y


def fitted(model: Any, frame: pd.DataFrame, y: np.ndarray) -> tuple[Any, pd.DataFrame]:
    return model.fit(frame[:TRAIN], y[:TRAIN]), frame[TRAIN:].reset_index(drop=True)
