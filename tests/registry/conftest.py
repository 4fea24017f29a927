"""Fixtures of the registry tests: a client per database backend, a tracked training run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from steward.registry import RegistryService
from steward.sdk import Steward, connect


@pytest.fixture
def client(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Steward]:
    """A client on SQLite and on PostgreSQL, with artifacts in a temp folder."""
    for name in ("STEWARD_ALLOW_UNSAFE_FLAVORS", "STEWARD_TRUSTED_TYPES", "STEWARD_EXAMPLE_ROWS"):
        monkeypatch.delenv(name, raising=False)
    st = connect(home=tmp_path / "home", database_url=database_url, capture_environment=False)
    yield st
    st.close()


@pytest.fixture
def registry(client: Steward) -> RegistryService:
    return client.registry


def fraud_frame(rows: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Transactions with a float, an integer and a string column, and a fraud label."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.lognormal(3, 1, rows),
            "hour": rng.integers(0, 24, rows),
            "country": rng.choice(["DE", "FR", "NL"], rows),
        }
    )
    label = ((frame["amount"] > 25) & (frame["hour"] > 6)).to_numpy().astype(int)
    return frame, label


@dataclass
class Trained:
    """A model fitted on numeric columns and the run that recorded it."""

    run_id: str
    model: LogisticRegression
    frame: pd.DataFrame  # the numeric input columns, named
    label: np.ndarray


@pytest.fixture
def trained(client: Steward) -> Trained:
    """A finished run: train/holdout datasets, metrics, and a model fitted on a plain array."""
    frame, label = fraud_frame()
    numeric = frame[["amount", "hour"]]
    with client.start_run("fraud", name="logreg", params={"C": 1.0}) as run:
        run.log_dataset(frame.assign(is_fraud=label)[:200], name="transactions", role="train")
        run.log_dataset(frame.assign(is_fraud=label)[200:], name="transactions", role="holdout")
        model = LogisticRegression(max_iter=500).fit(numeric.to_numpy()[:200], label[:200])
        run.log_metrics({"holdout_auc": 0.91, "holdout_auc/country:DE": 0.88, "train_loss": 0.3})
    return Trained(run.id, model, numeric, label)
