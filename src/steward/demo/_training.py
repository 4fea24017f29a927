"""Train a few scikit-learn models on the fraud data as tracked runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from steward.core import ConfigurationError
from steward.demo._fraud import FEATURES, LABEL
from steward.sdk import Steward
from steward.tracking import Run

__all__ = ["TrainedModel", "features", "train_models"]

EXPERIMENT = "card-fraud"


@dataclass
class TrainedModel:
    """A fitted estimator and the run that recorded it."""

    run: Run
    estimator: Any


def features(table: pa.Table) -> np.ndarray:
    """Return the model's input matrix (the protected attribute is never an input)."""
    return np.column_stack([table[c].to_numpy().astype(np.float64) for c in FEATURES])


def _matrix(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    return features(table), table[LABEL].to_numpy()


def _require_sklearn() -> None:
    try:
        import sklearn  # noqa: F401
    except ModuleNotFoundError:
        raise ConfigurationError(
            "the demo trains scikit-learn models; install them with: pip install 'steward[ml]'"
        ) from None


def _candidates(seed: int) -> dict[str, tuple[Callable[[], Any], dict[str, Any]]]:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "logreg": (
            lambda: make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=500)),
            {"model": "logreg", "C": 1.0},
        ),
        "hgb": (
            lambda: HistGradientBoostingClassifier(
                max_iter=150, learning_rate=0.08, max_depth=4, random_state=seed
            ),
            {"model": "hgb", "max_iter": 150, "learning_rate": 0.08, "max_depth": 4},
        ),
        "forest": (
            lambda: RandomForestClassifier(
                n_estimators=60, max_depth=8, random_state=seed, n_jobs=1
            ),
            {"model": "forest", "n_estimators": 60, "max_depth": 8},
        ),
    }


def train_models(
    st: Steward, early: pa.Table, *, seed: int = 7, say: Callable[[str], None] = lambda _: None
) -> list[TrainedModel]:
    """Split ``early`` by time (first 75% train), train each candidate as a tracked run."""
    _require_sklearn()
    from sklearn.metrics import accuracy_score, average_precision_score, recall_score, roc_auc_score

    cut = int(early.num_rows * 0.75)
    train, holdout = early.slice(0, cut), early.slice(cut)
    x_train, y_train = _matrix(train)
    x_hold, y_hold = _matrix(holdout)
    trained = []
    for name, (factory, params) in _candidates(seed).items():
        with st.start_run(
            EXPERIMENT, name=name, params=params, seed=seed, tags={"team": "risk"}
        ) as run:
            run.log_dataset(train, name="card-transactions", role="train")
            run.log_dataset(holdout, name="card-transactions", role="holdout")
            estimator = factory().fit(x_train, y_train)
            scores = estimator.predict_proba(x_hold)[:, 1]
            labels = (scores >= 0.5).astype(int)
            run.log_metrics(
                {
                    "holdout_auc": float(roc_auc_score(y_hold, scores)),
                    "holdout_average_precision": float(average_precision_score(y_hold, scores)),
                    "holdout_accuracy": float(accuracy_score(y_hold, labels)),
                    "holdout_recall": float(recall_score(y_hold, labels, zero_division=0)),
                }
            )
            for step, loss in enumerate(getattr(estimator, "train_score_", [])):
                run.log_metric("train_score", float(loss), step=step)
        stored = st.tracking.get_run(run.id)
        say(f"trained {name:<7} run {run.id[-8:]}  holdout AUC {stored.metrics['holdout_auc']:.4f}")
        trained.append(TrainedModel(stored, estimator))
    return trained
