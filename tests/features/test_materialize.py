"""Materialization: latest values per entity, incremental, idempotent, safe to fail."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from tests.features.online._backends import BACKENDS, purge, redis_unavailable, store_url
from tests.features.online._views import (
    EVENTS_SCHEMA,
    PROFILE_SCHEMA,
    T0,
    acting_as,
    apply,
    at,
    profile,
    profile_view,
    spend_view,
    write_rows,
)

from steward.core import (
    BackendUnavailableError,
    InvalidInputError,
    PermissionDeniedError,
    load_settings,
)
from steward.features import (
    FeatureSettings,
    FeatureStore,
    RedisOnlineStore,
    SourceSchemaError,
    SqliteOnlineStore,
    UnknownFeatureError,
)
from steward.features._sample import ValueSample
from steward.features._tables import feature_materializations, feature_watermarks
from steward.store import Store, StoreSettings


def _scores(features: FeatureStore, keys: list[int]) -> list[Any]:
    online = features.get_online_features(
        ["profile:score"], entity_rows=[{"customer_id": k} for k in keys]
    )
    return online.values["score"]


def _watermark(features: FeatureStore) -> Any:
    with features.store.database.read() as conn:
        return conn.execute(sa.select(feature_watermarks.c.watermark)).scalar()


def _runs(features: FeatureStore) -> list[Any]:
    with features.store.database.read() as conn:
        return list(
            conn.execute(
                sa.select(feature_materializations).order_by(feature_materializations.c.started_at)
            )
        )


@pytest.fixture
def profiles(feature_store: FeatureStore, tmp_path: Path) -> tuple[FeatureStore, Path]:
    folder = tmp_path / "profiles"
    write_rows(
        folder,
        "part-0",
        [
            # customer 1: out of order, the latest event wins
            profile(1, at(3), 30.0),
            profile(1, at(1), 10.0),
            profile(1, at(2), 20.0),
            # customer 2: two rows at the same event time, the later created wins
            profile(2, at(1), 1.0, created=at(5)),
            profile(2, at(1), 2.0, created=at(6)),
            profile(2, at(1), 3.0),  # no created time: older than any
            # customer 3: exact duplicates
            profile(3, at(4), 4.0, created=at(4)),
            profile(3, at(4), 4.0, created=at(4)),
            # customer 4: only after the window used below
            profile(4, at(50), 50.0),
        ],
        PROFILE_SCHEMA,
    )
    apply(feature_store, profile_view(folder))
    return feature_store, folder


def test_latest_row_per_entity_wins(profiles: tuple[FeatureStore, Path]) -> None:
    features, _ = profiles
    report = features.materialize(end=at(10), progress=False)
    assert report.rows_read == 8  # every source row up to the end
    assert report.rows_written == 3
    (view,) = report.views
    assert view.view == "profile" and view.start is None and view.end == at(10)
    assert view.watermark == at(10) and _watermark(features) == at(10)
    assert _scores(features, [1, 2, 3, 4]) == [30.0, 2.0, 4.0, None]
    online = features.get_online_features(
        ["profile:score", "profile:segment"], entity_rows=[{"customer_id": 1}]
    )
    assert online.event_timestamps["score"] == [at(3)]
    assert online.values["segment"] == ["s30"]


def test_running_twice_changes_nothing(profiles: tuple[FeatureStore, Path]) -> None:
    features, _ = profiles
    assert features.materialize(end=at(10), progress=False).rows_written == 3
    again = features.materialize(end=at(10), progress=False)
    assert again.rows_written == 0 and again.rows_read == 8
    assert _scores(features, [1, 2, 3]) == [30.0, 2.0, 4.0]
    assert [run.status for run in _runs(features)] == ["succeeded", "succeeded"]


def test_incremental_reads_from_the_watermark(profiles: tuple[FeatureStore, Path]) -> None:
    features, folder = profiles
    first = features.materialize(incremental=True, end=at(10), progress=False)
    assert first.views[0].start is None and first.rows_written == 3
    write_rows(
        folder,
        "part-1",
        [profile(1, at(12), 120.0), profile(5, at(11), 5.0), profile(2, at(9), 99.0)],
        PROFILE_SCHEMA,
    )
    second = features.materialize(incremental=True, end=at(20), progress=False)
    (view,) = second.views
    assert view.start == at(10) and view.watermark == at(20)
    assert second.rows_read == 2  # the event at 9 h is before the watermark: a late arrival
    assert _scores(features, [1, 2, 5]) == [120.0, 2.0, 5.0]
    # A full run picks up the late row.
    features.materialize(end=at(20), progress=False)
    assert _scores(features, [2]) == [99.0]


def test_a_window_with_a_gap_keeps_the_watermark(profiles: tuple[FeatureStore, Path]) -> None:
    features, _ = profiles
    report = features.materialize(start=at(2), end=at(10), progress=False)
    assert report.views[0].watermark is None and _watermark(features) is None
    assert _scores(features, [1, 2]) == [30.0, None]  # customer 2's events are before 2 h
    features.materialize(end=at(10), progress=False)
    assert _watermark(features) == at(10)
    # A window starting at or before the watermark extends it; one ending earlier does not.
    features.materialize(start=at(8), end=at(60), progress=False)
    assert _watermark(features) == at(60)
    features.materialize(start=at(1), end=at(5), progress=False)
    assert _watermark(features) == at(60)


def _count_batches(
    monkeypatch: pytest.MonkeyPatch, online: Any, calls: list[int], *, fail_at: int | None = None
) -> None:
    # Every transaction the online store begins counts its batches (and fails at one).
    begin = online.begin

    def counting_begin(view: str) -> Any:
        transaction = begin(view)
        write = transaction.write_batch

        def counting(batch: Any, **kwargs: Any) -> int:
            calls.append(batch.num_rows)
            if len(calls) == fail_at:
                raise BackendUnavailableError("online store went away")
            staged: int = write(batch, **kwargs)
            return staged

        transaction.write_batch = counting
        return transaction

    monkeypatch.setattr(online, "begin", counting_begin)


def test_small_batches_write_everything(
    feature_store: FeatureStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "profiles"
    rows = [profile(k, at(k % 7), float(k)) for k in range(1, 58)]
    write_rows(folder, "part-0", rows, PROFILE_SCHEMA)
    apply(feature_store, profile_view(folder))
    calls: list[int] = []
    _count_batches(monkeypatch, feature_store.online_store, calls)
    report = feature_store.materialize(end=at(10), progress=False, batch_rows=5)
    assert report.rows_written == 57 and sum(calls) == 57
    assert len(calls) >= 12 and max(calls) <= 5
    assert _scores(feature_store, list(range(1, 58))) == [float(k) for k in range(1, 58)]


def _dump(features: FeatureStore) -> dict[str, Any]:
    # Everything the online store holds, byte for byte: every SQLite table's rows, or
    # every Redis key under the store's prefix with its content.
    online = features.online_store
    if isinstance(online, SqliteOnlineStore):
        conn = sqlite3.connect(online.path)
        try:
            names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master ORDER BY 1")]
            tables = {
                name: sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall())
                for name in names
                if not name.startswith("sqlite_autoindex")
            }
            return {"version": conn.execute("PRAGMA user_version").fetchone(), **tables}
        finally:
            conn.close()
    assert isinstance(online, RedisOnlineStore)
    client = online._client
    return {key: client.hgetall(key) for key in client.scan_iter(f"{online.prefix}*")}


@pytest.fixture(params=BACKENDS)
def on_each_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeatureStore]:
    """A feature store on a fresh home whose online store is SQLite, then Redis."""
    home = tmp_path / "home"
    url = store_url(request.param, tmp_path)
    store = Store.open(load_settings(StoreSettings, home=home))
    features = FeatureStore(store, load_settings(FeatureSettings, home=home, online_store_url=url))
    try:
        features.online_store  # noqa: B018 - open it now: an unreachable Redis skips here
    except BackendUnavailableError as exc:
        features.close()
        store.close()
        redis_unavailable(f"Redis is not reachable: {exc}")
    yield features
    features.close()
    store.close()
    if request.param == "redis":
        purge(url)


@pytest.mark.parametrize("fail", ["third batch", "after the last batch"])
def test_a_failed_run_leaves_the_online_store_and_the_watermark_as_they_were(
    on_each_backend: FeatureStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: str
) -> None:
    features = on_each_backend
    folder = tmp_path / "profiles"
    write_rows(folder, "part-0", [profile(k, at(1), float(k)) for k in range(1, 6)], PROFILE_SCHEMA)
    apply(features, profile_view(folder))
    features.materialize(end=at(2), progress=False)
    # New values for the same customers, and new customers: what a failed run must not leave.
    write_rows(
        folder, "part-1", [profile(k, at(5), 100.0 + k) for k in range(1, 40)], PROFILE_SCHEMA
    )
    before = _dump(features)
    calls: list[int] = []
    if fail == "third batch":
        _count_batches(monkeypatch, features.online_store, calls, fail_at=3)
    else:

        def broken(self: Any) -> None:
            raise BackendUnavailableError("online store went away")

        _count_batches(monkeypatch, features.online_store, calls)
        monkeypatch.setattr(ValueSample, "profile", broken)
    with pytest.raises(BackendUnavailableError, match="went away"):
        features.materialize(incremental=True, end=at(10), progress=False, batch_rows=4)
    # Batches did reach the store: two of them before the third failed, or all 39 rows.
    assert len(calls) == 3 if fail == "third batch" else sum(calls) == 39
    assert _dump(features) == before
    assert _watermark(features) == at(2)
    failed = _runs(features)[-1]
    assert failed.status == "failed" and "went away" in failed.error
    assert failed.rows_written == 0 and failed.watermark == at(2)
    events = features.store.audit.list_events(action="features.materialize.failed")
    assert len(events) == 1 and events[0].object_id == "profile"
    # Retried, the run completes.
    monkeypatch.undo()
    retry = features.materialize(incremental=True, end=at(10), progress=False, batch_rows=4)
    assert retry.views[0].start == at(2) and _watermark(features) == at(10)
    assert retry.rows_written == 39
    assert _scores(features, list(range(1, 40))) == [100.0 + k for k in range(1, 40)]


def test_a_changed_source_fails_and_keeps_the_watermark(
    profiles: tuple[FeatureStore, Path],
) -> None:
    features, folder = profiles
    features.materialize(end=at(10), progress=False)
    for path in folder.glob("*.parquet"):
        path.unlink()
    write_rows(
        folder,
        "renamed",
        [{"customer_id": 1, "ts": at(11), "created": None, "points": 1.0}],
        pa.schema(
            [
                ("customer_id", pa.int64()),
                ("ts", PROFILE_SCHEMA.field("ts").type),
                ("created", PROFILE_SCHEMA.field("ts").type),
                ("points", pa.float64()),
            ]
        ),
    )
    with pytest.raises(SourceSchemaError, match="score"):
        features.materialize(incremental=True, end=at(20), progress=False)
    assert _watermark(features) == at(10)
    assert _runs(features)[-1].status == "failed"
    assert _scores(features, [1]) == [30.0]


def test_window_views_are_materialized_as_of_the_end(
    feature_store: FeatureStore, tmp_path: Path
) -> None:
    folder = tmp_path / "transactions"
    write_rows(
        folder,
        "part-0",
        [
            {"customer_id": 1, "ts": at(1), "amount": 10.0},
            {"customer_id": 1, "ts": at(20), "amount": 5.0},
            {"customer_id": 2, "ts": at(2), "amount": 7.0},
        ],
        EVENTS_SCHEMA,
    )
    apply(feature_store, spend_view(folder))
    first = feature_store.materialize(end=at(24), progress=False)
    assert first.rows_written == 2
    refs = ["spend:amount_sum_24h", "spend:amount_count_7d"]
    rows = [{"customer_id": 1}, {"customer_id": 2}]
    online = feature_store.get_online_features(refs, entity_rows=rows)
    assert online.values == {"amount_sum_24h": [15.0, 7.0], "amount_count_7d": [2, 1]}
    assert online.event_timestamps["amount_sum_24h"] == [at(24), at(24)]
    # Two days later customer 2's 24 h window is empty: the incremental run sets it to zero.
    later = feature_store.materialize(incremental=True, end=at(72), progress=False)
    assert later.rows_written == 2
    online = feature_store.get_online_features(refs, entity_rows=rows)
    assert online.values == {"amount_sum_24h": [0.0, 0.0], "amount_count_7d": [2, 1]}
    assert online.event_timestamps["amount_count_7d"] == [at(72), at(72)]
    assert feature_store.materialize(end=at(72), progress=False).rows_written == 0


def test_profile_of_the_materialized_values_leaves_pii_out(
    profiles: tuple[FeatureStore, Path],
) -> None:
    features, _ = profiles
    report = features.materialize(end=at(10), progress=False)
    assert report.views[0].profiled_rows == 3
    baseline = features.get_profile("profile")
    assert set(baseline.columns) == {"score", "segment"} and baseline.rows == 3
    assert "example.com" not in _runs(features)[-1].profile


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": at(5), "end": at(1)}, "is after end"),
        ({"end": T0 + timedelta(days=365 * 30)}, "in the future"),
        ({"incremental": True, "start": at(1)}, "drop start"),
        ({"batch_rows": 0}, "batch_rows"),
        ({"end": "2025-03-01"}, "end must be a datetime"),
    ],
)
def test_bad_windows_are_refused(
    profiles: tuple[FeatureStore, Path], kwargs: dict[str, Any], message: str
) -> None:
    features, _ = profiles
    with pytest.raises(InvalidInputError, match=message):
        features.materialize(progress=False, **kwargs)
    assert _runs(features) == [] and _watermark(features) is None


def test_unknown_views_and_nothing_registered(
    feature_store: FeatureStore, profiles: tuple[FeatureStore, Path]
) -> None:
    features, _ = profiles
    with pytest.raises(UnknownFeatureError, match="did you mean 'profile'"):
        features.materialize(views=["profil"], progress=False)


def test_nothing_registered_says_to_apply(feature_store: FeatureStore) -> None:
    with pytest.raises(UnknownFeatureError, match="features apply"):
        feature_store.materialize(progress=False)


def test_naive_times_are_utc(profiles: tuple[FeatureStore, Path]) -> None:
    features, _ = profiles
    report = features.materialize(end=at(10).replace(tzinfo=None), progress=False)
    assert report.views[0].end == at(10)


def test_materializing_needs_the_scope(profiles: tuple[FeatureStore, Path]) -> None:
    features, _ = profiles
    reader = acting_as(features, "features:read")
    try:
        with pytest.raises(PermissionDeniedError, match="features:materialize"):
            reader.materialize(end=at(10), progress=False)
    finally:
        reader.close()
    assert _runs(features) == []
    assert _scores(features, [1]) == [None]


def test_runs_are_audited(profiles: tuple[FeatureStore, Path]) -> None:
    features, _ = profiles
    features.materialize(end=at(10), progress=False)
    (event,) = features.store.audit.list_events(action="features.materialize")
    assert event.object_id == "profile"
    assert event.details["rows_written"] == 3 and event.details["watermark"] == at(10).isoformat()
