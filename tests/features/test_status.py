"""Freshness and statistics: watermark, lag against the SLA, runs, rows, profiles."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.features.online._views import (
    CUSTOMER,
    EVENTS_SCHEMA,
    PROFILE_SCHEMA,
    acting_as,
    at,
    profile,
    profile_view,
    spend_view,
    write_rows,
)

from steward.core import BackendUnavailableError, FrozenClock, NotFoundError, PermissionDeniedError
from steward.features import Definitions, FeatureStore, ViewStatus
from steward.quality import DriftDetector


@pytest.fixture
def views(feature_store: FeatureStore, tmp_path: Path) -> FeatureStore:
    write_rows(
        tmp_path / "profiles",
        "part-0",
        [profile(k, at(k % 3), float(k)) for k in range(1, 21)],
        PROFILE_SCHEMA,
    )
    write_rows(
        tmp_path / "transactions",
        "part-0",
        [{"customer_id": 1, "ts": at(1), "amount": 3.0}],
        EVENTS_SCHEMA,
    )
    feature_store.apply(
        Definitions(
            entities=[CUSTOMER],
            views=[
                profile_view(tmp_path / "profiles", sla=timedelta(hours=2)),
                spend_view(tmp_path / "transactions"),
            ],
        )
    )
    feature_store.store.clock = FrozenClock(at(10))
    return feature_store


def _by_view(features: FeatureStore) -> dict[str, ViewStatus]:
    return {status.view: status for status in features.status()}


def test_views_never_materialized(views: FeatureStore) -> None:
    status = _by_view(views)
    assert list(status) == ["profile", "spend"]
    profile_status = status["profile"]
    assert profile_status.freshness == "never" and profile_status.watermark is None
    assert profile_status.runs == 0 and profile_status.rows_written == 0
    assert profile_status.last_status is None and profile_status.profiled_rows == 0
    assert profile_status.kind == "features" and profile_status.owner == "risk"
    assert status["spend"].kind == "window"


def test_lag_against_the_sla(views: FeatureStore) -> None:
    views.materialize(end=at(9), progress=False)
    status = _by_view(views)["profile"]
    assert status.watermark == at(9) and status.lag == timedelta(hours=1)
    assert status.freshness == "fresh" and status.freshness_sla == timedelta(hours=2)
    assert status.runs == 1 and status.rows_written == 20 and status.last_rows_written == 20
    assert status.last_status == "succeeded" and status.last_run_at is not None
    assert status.profiled_rows == 20
    assert _by_view(views)["spend"].freshness == "no_sla"
    views.store.clock = FrozenClock(at(12))
    assert _by_view(views)["profile"].freshness == "stale"
    views.materialize(incremental=True, progress=False)
    status = _by_view(views)["profile"]
    assert status.freshness == "fresh" and status.lag == timedelta(0)
    assert status.runs == 2 and status.rows_written == 20 and status.last_rows_written == 0


def test_a_failed_run_shows_with_the_watermark_it_kept(views: FeatureStore) -> None:
    views.materialize(end=at(9), progress=False)
    online = views.online_store

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise BackendUnavailableError("disk full")

    online.begin = broken  # type: ignore[method-assign]
    with pytest.raises(BackendUnavailableError):
        views.materialize(end=at(9.5), views=["profile"], progress=False)
    status = _by_view(views)["profile"]
    assert status.last_status == "failed" and "disk full" in (status.last_error or "")
    assert status.watermark == at(9) and status.runs == 2 and status.rows_written == 20
    assert status.profiled_rows == 20  # the last successful run's profile


def test_status_is_json_ready(views: FeatureStore) -> None:
    views.materialize(end=at(9), progress=False)
    document = json.loads(json.dumps([s.as_dict() for s in views.status()]))
    profile_status = document[0]
    assert profile_status["watermark"] == at(9).isoformat()
    assert profile_status["lag_seconds"] == 3600.0
    assert profile_status["freshness_sla_seconds"] == 7200.0


def test_the_profile_is_a_drift_baseline(views: FeatureStore) -> None:
    with pytest.raises(NotFoundError, match="no materialization profile"):
        views.get_profile("profile")
    views.materialize(end=at(9), progress=False)
    baseline = views.get_profile("profile")
    assert baseline.rows == 20 and set(baseline.columns) == {"score", "segment"}
    detector = DriftDetector(columns=["score"]).fit(baseline)
    same = detector.score({"score": np.arange(1, 21, dtype=float)})
    shifted = detector.score({"score": np.arange(1, 21, dtype=float) + 100})
    assert same.drifted_columns == () and shifted.drifted_columns == ("score",)


def test_status_needs_the_read_scope(views: FeatureStore) -> None:
    nobody = acting_as(views)
    try:
        with pytest.raises(PermissionDeniedError, match="features:read"):
            nobody.status()
        with pytest.raises(PermissionDeniedError, match="features:read"):
            nobody.get_profile("profile")
    finally:
        nobody.close()
