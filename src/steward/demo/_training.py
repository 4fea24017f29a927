"""Train a few scikit-learn models on the fraud data as tracked runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from steward.core import ConfigurationError, InvalidInputError
from steward.demo._fraud import FEATURES, LABEL
from steward.sdk import Steward
from steward.tracking import Run

__all__ = [
    "TrainedModel",
    "features",
    "retrain_on",
    "retrain_without",
    "split",
    "train_models",
]

EXPERIMENT = "card-fraud"
DATASET = "card-transactions"


@dataclass
class TrainedModel:
    """A fitted estimator, the run that recorded it and the columns it reads."""

    run: Run
    estimator: Any
    columns: tuple[str, ...] = tuple(FEATURES)


def features(table: pa.Table, columns: Sequence[str] = FEATURES) -> np.ndarray:
    """Return the model's input matrix (the protected attribute is never an input)."""
    return np.column_stack([table[c].to_numpy().astype(np.float64) for c in columns])


def split(early: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Split ``early`` by time: the first 75% trains, the rest is the holdout."""
    cut = int(early.num_rows * 0.75)
    return early.slice(0, cut), early.slice(cut)


def _write_datasets(early: pa.Table, folder: Path) -> dict[str, Path]:
    """Write the train and holdout slices as Parquet, so that checks can read them back."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for role, table in zip(("train", "holdout"), split(early), strict=True):
        paths[role] = folder / f"{DATASET}-{role}.parquet"
        if not paths[role].exists():
            pq.write_table(table, paths[role])
    return paths


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


def _fit_run(
    st: Steward,
    early: pa.Table,
    folder: Path,
    *,
    name: str,
    factory: Callable[[], Any],
    params: dict[str, Any],
    columns: Sequence[str],
    seed: int,
) -> TrainedModel:
    """Train one candidate on ``columns`` as a tracked run that logs its data files."""
    from sklearn.metrics import accuracy_score, average_precision_score, recall_score, roc_auc_score

    train, holdout = split(early)
    y_train, y_hold = train[LABEL].to_numpy(), holdout[LABEL].to_numpy()
    tags = {"team": "risk", "label_column": LABEL}
    with st.start_run(EXPERIMENT, name=name, params=params, seed=seed, tags=tags) as run:
        for role, path in _write_datasets(early, folder).items():
            run.log_dataset(str(path), name=DATASET, role=role)
        estimator = factory().fit(features(train, columns), y_train)
        scores = estimator.predict_proba(features(holdout, columns))[:, 1]
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
    return TrainedModel(st.tracking.get_run(run.id), estimator, tuple(columns))


def train_models(
    st: Steward,
    early: pa.Table,
    *,
    folder: Path,
    seed: int = 7,
    candidates: Sequence[str] = ("logreg", "hgb", "forest"),
    say: Callable[[str], None] = lambda _: None,
) -> list[TrainedModel]:
    """Split ``early`` by time (first 75% train), train each candidate as a tracked run.

    The train and holdout slices are written as Parquet in ``folder`` and logged
    from there, so that promotion checks can read them back.
    """
    _require_sklearn()
    known = _candidates(seed)
    unknown = [name for name in candidates if name not in known]
    if unknown:
        raise InvalidInputError(f"unknown demo model(s) {unknown}; choose from {sorted(known)}")
    trained = []
    for name in candidates:
        factory, params = known[name]
        model = _fit_run(
            st,
            early,
            folder,
            name=name,
            factory=factory,
            params=params,
            columns=FEATURES,
            seed=seed,
        )
        say(f"trained {name:<7} run {model.run.id[-8:]}  holdout AUC {_auc(model):.4f}")
        trained.append(model)
    return trained


def retrain_without(
    st: Steward, model: TrainedModel, column: str, early: pa.Table, *, folder: Path, seed: int = 7
) -> TrainedModel:
    """Train ``model``'s candidate again, as a new run, on every input but ``column``."""
    family = str(model.run.params["model"])
    factory, params = _candidates(seed)[family]
    columns = [c for c in model.columns if c != column]
    return _fit_run(
        st,
        early,
        folder,
        name=f"{family}-without-{column.replace('_', '-')}",
        factory=factory,
        params={**params, "dropped": column},
        columns=columns,
        seed=seed,
    )


def _auc(model: TrainedModel) -> float:
    return float(model.run.metrics["holdout_auc"])


def retrain_on(
    st: Steward,
    run: Run,
    data: pa.Table,
    *,
    folder: Path,
    columns: Sequence[str] = FEATURES,
    seed: int = 7,
) -> TrainedModel:
    """Train ``run``'s candidate again, as a new run, on ``data`` (first 75% train, by time)."""
    family = str(run.params["model"])
    factory, params = _candidates(seed)[family]
    return _fit_run(
        st,
        data,
        folder,
        name=f"{family}-recent",
        factory=factory,
        params={**params, "retrained_from": run.id},
        columns=columns,
        seed=seed,
    )
