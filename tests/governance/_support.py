"""Shared test support for governance.

Acting as a registered identity the way adapters do (a token, then an
authenticated store), and the small scikit-learn models the tests register:
each is fit on fixed data, so the same call gives the same model bytes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from steward.governance import (
    GovernanceSettings,
    ResourceTeams,
    TokenService,
    authenticated_store,
)
from steward.registry import ModelVersion
from steward.sdk import ModelRun, Steward
from steward.store import Store

_labels = itertools.count(1)


def token_for(
    store: Store, name: str, *, scopes: Iterable[str] = ("admin",), label: str | None = None
) -> str:
    """Create (as the local operator) a token owned by ``name``; return its secret."""
    tokens = TokenService(store, settings=GovernanceSettings(user="root"))
    _, secret = tokens.create_token(
        name, name=label or f"t-{name}-{next(_labels)}", scopes=list(scopes)
    )
    return secret


def acting_as(
    store: Store,
    name: str,
    *,
    scopes: Iterable[str] = ("admin",),
    settings: GovernanceSettings | None = None,
    resource_teams: ResourceTeams | None = None,
) -> Store:
    """Return ``store`` bound to ``name`` through a fresh token with ``scopes``."""
    secret = token_for(store, name, scopes=scopes)
    return authenticated_store(
        store,
        secret,
        settings=settings or GovernanceSettings(user="root"),
        resource_teams=resource_teams,
    )


def tiny_classifier() -> tuple[LogisticRegression, np.ndarray]:
    """A classifier fit on four points of one column, and those points (its sample input)."""
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    return LogisticRegression().fit(x, [0, 0, 1, 1]), x


def amounts() -> pd.DataFrame:
    """Twenty rows: ``amount`` 0..19 and an alternating ``label``."""
    return pd.DataFrame({"amount": np.arange(20.0), "label": [0, 1] * 10})


def register_fraud_model(run: ModelRun, *, c: float = 1.0) -> ModelVersion:
    """Fit ``label`` on ``amount`` (:func:`amounts`) and register it from ``run`` as ``fraud``.

    Each regularization ``c`` gives different model bytes.
    """
    frame = amounts()
    model = LogisticRegression(C=c).fit(frame[["amount"]], frame["label"])
    return run.register_model(model, name="fraud", sample_input=frame[["amount"]].head(5))


def train_scored(
    st: Steward, name: str, auc: float, *, columns: tuple[str, ...] = ("amount", "age")
) -> str:
    """Register a version of ``name`` from a run of ``name`` that logged ``holdout.auc``.

    The model is fit on 200 random rows of ``columns`` (the first decides the
    label); the version's signature has those columns. Returns the version's ref.
    """
    rng = np.random.default_rng(len(columns))
    frame = pd.DataFrame(rng.normal(size=(200, len(columns))), columns=list(columns))
    model = LogisticRegression().fit(frame, (frame[columns[0]] > 0).astype(int))
    with st.start_run(name) as run:
        run.log_metrics({"holdout.auc": auc})
        version = run.register_model(model, name=name, sample_input=frame.head(20))
    return version.ref
