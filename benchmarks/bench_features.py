"""Feature store: steward side by side with Feast, and with a bare DuckDB ASOF join.

Workloads (``benchmarks/_features_workload.py``, seeded, written once per benchmark
run and shared by the repeats): a view of 10,000 entities x 100 timestamps over a
year (1,000,000 rows, 10 float features, TTL 30 days) with a 100,000-row entity frame
in which 1 % of the rows have no feature inside the TTL; 10 views x 100 features for
17,000 entity rows; a 60-day source of 100,000 entities x 2 rows.

Feast runs in its own venv (``benchmarks/peers/feast.txt``) as its local quickstart
sets it up: ``provider: local``, the ``file`` offline store (Dask over Parquet), the
``sqlite`` online store.  Its work is timed inside its process (imports and
``apply`` are not counted); its peak memory is the peak RSS above what the process
held before the timed call.  Steward's retrieval and materialization run in a fresh
process too (``ctx.measure_peak_memory``), first call timed.

- ``features.historical``: point-in-time retrieval of the 10 features for the 100,000
  entity rows.  Steward ``get_historical_features`` (first call in a fresh process,
  and a second, warm call), Feast ``get_historical_features(...).to_arrow()``, and
  the bare DuckDB query (one ASOF LEFT JOIN, TTL as a CASE) as the floor.  Checks:
  values identical to Feast on the rows Feast returns and to DuckDB on all rows;
  every entity row returned (Feast drops the rows with no feature inside the TTL).
- ``features.historical.wide``: 1,000 features across 10 views for 17,000 entity
  rows; steward vs Feast and the DuckDB floor (values compared).  Feast takes a
  minute or two and GBs here; ``STEWARD_BENCH_FEATURES_FEAST_WIDE=0`` leaves it out.
- ``features.materialize.sqlite`` / ``.redis``: 30 days of the 1M-row view (about
  82,000 source rows, 10,000 entities written) and 30 days of the 100,000-entity
  source (100,000 rows written), each timed; rates are rows written per second.
  Feast into SQLite side by side; Redis (127.0.0.1:6379 db 15,
  ``STEWARD_BENCH_REDIS_URL``) is steward's only.
- ``features.online.sqlite`` / ``.redis``: ``get_online_features(...).to_dict()``
  of 10 features for 1 and for 100 random entities per call out of the 100,000
  materialized, p50 and p99 over thousands of calls, in process, and the p99 of
  the CPU time per call (the tail without preemption, for a machine whose cores
  are shared); Feast on SQLite side by side; the values served are compared.
- ``features.materialize.huge``: bounded memory: materializing a source of
  ``STEWARD_BENCH_FEATURES_HUGE=ENTITIESxROWS_PER_ENTITY`` (default 1,000,000 x 10 =
  10M rows; 100M is ``10000000x10``) into SQLite: time, rows/s and peak RSS.

``speedup_vs_feast`` is Feast's time over steward's in the same repeat; ``load_1min``
is the machine's load average as the measurement ended (tails read high under load).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks._features_steward import (
    ViewSpec,
    apply_views,
    compare_tables,
    duckdb_asof,
    historical_in_child,
    latencies_ms,
    materialize_in_child,
    online_reader,
    open_feature_store,
)
from benchmarks._features_workload import (
    ENTITY_KEY,
    TIMESTAMP,
    TTL,
    YEAR_START,
    MaterializationWorkload,
    PointInTimeWorkload,
    WideWorkload,
    sizes,
    write_huge_source,
    write_materialization,
    write_point_in_time,
    write_wide,
)
from benchmarks._harness import BenchmarkError, Context, Measurements, PeerUnavailable, benchmark

FEAST_SCRIPT = Path(__file__).resolve().parent / "_features_feast.py"
MIB = 2**20
ONLINE_CALLS = ((5_000, 1_000), (500, 100))  # (1-entity calls, 100-entity calls) full, quick
FEAST_ONLINE_CALLS = ((2_000, 500), (300, 50))
MONTH_START = YEAR_START + timedelta(days=31)  # February 2025, 30 days
MONTH_END = MONTH_START + timedelta(days=30)
HUGE_DEFAULT = ((1_000_000, 10), (100_000, 2))  # (entities, rows per entity) full, quick
REDIS_URL = os.environ.get("STEWARD_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
PIT_VIEW, DAILY_VIEW = "customer_stats", "customer_daily"


# -- workloads, written once per benchmark run -------------------------------------------------


@dataclass(frozen=True)
class Workloads:
    pit: PointInTimeWorkload
    materialization: MaterializationWorkload
    folder: Path

    @property
    def pit_view(self) -> ViewSpec:
        return ViewSpec(PIT_VIEW, str(self.pit.features), self.pit.feature_names, TTL)

    @property
    def daily_view(self) -> ViewSpec:
        m = self.materialization
        return ViewSpec(DAILY_VIEW, str(m.source), m.feature_names, TTL)


_CACHE: dict[str, Any] = {}


def _cache_dir() -> Path:
    if "dir" not in _CACHE:
        folder = Path(tempfile.mkdtemp(prefix="steward-bench-features-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _CACHE["dir"] = folder
    path: Path = _CACHE["dir"]
    return path


def _workloads(ctx: Context) -> Workloads:
    key = f"workloads-{ctx.quick}"
    if key not in _CACHE:
        folder = _cache_dir() / ("quick" if ctx.quick else "full")
        size = sizes(quick=ctx.quick)
        _CACHE[key] = Workloads(
            write_point_in_time(folder / "pit", size),
            write_materialization(folder / "materialize", size),
            folder,
        )
    workloads: Workloads = _CACHE[key]
    return workloads


def _wide(ctx: Context) -> WideWorkload:
    key = f"wide-{ctx.quick}"
    if key not in _CACHE:
        folder = _cache_dir() / ("quick" if ctx.quick else "full") / "wide"
        _CACHE[key] = write_wide(folder, sizes(quick=ctx.quick))
    wide: WideWorkload = _CACHE[key]
    return wide


def _month_rows(w: Workloads) -> int:
    times = pq.read_table(w.pit.features, columns=[TIMESTAMP])[TIMESTAMP]
    inside = pc.and_(pc.greater_equal(times, MONTH_START), pc.less(times, MONTH_END))
    return int(pc.sum(inside).as_py())


# -- Feast ------------------------------------------------------------------------------------


def _feast(
    ctx: Context, command: str, spec: dict[str, Any], timeout_s: float = 600.0
) -> dict[str, Any]:
    return ctx.run_peer("feast", FEAST_SCRIPT, command, _spec_json(spec), timeout_s=timeout_s)


def _spec_json(spec: dict[str, Any]) -> str:
    return json.dumps({"key": ENTITY_KEY, "timestamp": TIMESTAMP, **spec})


def _feast_views(*views: ViewSpec) -> dict[str, Any]:
    return {view.name: view.feast() for view in views}


def _materialize_jobs(w: Workloads) -> list[dict[str, str]]:
    m = w.materialization
    return [
        {"label": "month", "view": PIT_VIEW, "start": MONTH_START.isoformat(),
         "end": MONTH_END.isoformat()},
        {"label": "entities", "view": DAILY_VIEW, "start": m.start.isoformat(),
         "end": m.end.isoformat()},
    ]  # fmt: skip


def _feast_online_repo(ctx: Context, w: Workloads) -> Path:
    """A Feast repo with the 100,000-entity view materialized: made once, copied per repeat."""
    key = f"feast-online-{ctx.quick}"
    if key not in _CACHE:
        repo = _cache_dir() / key
        job = next(j for j in _materialize_jobs(w) if j["view"] == DAILY_VIEW)
        spec = {"repo": str(repo), "views": _feast_views(w.daily_view), "materialize": [job]}
        _feast(ctx, "online", spec)
        _CACHE[key] = repo
    target = ctx.tmp / "feast-online"
    shutil.copytree(_CACHE[key], target)
    return target


# -- steward helpers --------------------------------------------------------------------------


def _home(ctx: Context, w: Workloads, name: str = "steward") -> str:
    home = ctx.tmp / name
    with open_feature_store(str(home)) as features:
        apply_views(features, [w.pit_view, w.daily_view])
    return str(home)


@contextmanager
def _redis_url(ctx: Context) -> Iterator[str]:
    """A fresh key prefix on the benchmark Redis; its keys are deleted afterwards."""
    try:
        import redis
    except ModuleNotFoundError:
        ctx.skip("the redis client is missing; uv sync --all-extras")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        reason = f"Redis is not reachable at {REDIS_URL}: {exc}"
        if os.environ.get("STEWARD_REQUIRE_SERVICES", "") in ("1", "true", "yes"):
            raise BenchmarkError(f"{reason} (STEWARD_REQUIRE_SERVICES is set)") from exc
        ctx.skip(reason)
    ctx.services["redis"] = str(client.info("server").get("redis_version", "?"))
    prefix = f"steward_bench_{uuid.uuid4().hex[:12]}:"
    try:
        yield f"{REDIS_URL}?prefix={prefix}"
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=10_000))
        for i in range(0, len(keys), 10_000):
            client.delete(*keys[i : i + 10_000])
        client.close()


def _load() -> tuple[float, str]:
    # The machine's 1-minute load average when the measurement ended: latency tails
    # measured while other work competes for the cores read accordingly.
    return (os.getloadavg()[0], "")


def _mib(value: float) -> tuple[float, str]:
    return (value / MIB, "MiB")


# -- benchmarks -------------------------------------------------------------------------------


@benchmark("features.historical", repeats=3, quick_repeats=1)
def historical(ctx: Context) -> Measurements:
    """1M feature rows, 100k entity rows, TTL 30 d: steward vs Feast vs bare DuckDB ASOF."""
    w = _workloads(ctx)
    view = w.pit_view
    home = _home(ctx, w)
    ours_path = ctx.tmp / "steward.parquet"
    peak = ctx.measure_peak_memory(
        historical_in_child, home, str(w.pit.entity_frame), view.refs(), str(ours_path)
    )
    ours = pq.read_table(ours_path)
    floor, floor_seconds = duckdb_asof(w.pit.entity_frame, [view])
    vs_floor = compare_tables(ours, floor, view.features)
    seconds = peak.result["seconds"]
    out: dict[str, Any] = {
        "seconds": (seconds, "s"),
        "seconds@duckdb_asof": (floor_seconds, "s"),
        "warm_seconds": (peak.result["warm_seconds"], "s"),
        "peak_mib": _mib(peak.delta_bytes),
        "rows_returned": (vs_floor.rows, "rows"),
        "entity_rows": (w.pit.entity_rows, "rows"),
        "rows_missing": (vs_floor.missing_rows, "rows"),
        "rows_without_feature_in_ttl": (vs_floor.null_rows, "rows"),
        "values_differing_vs_duckdb": (vs_floor.values_differing, "values"),
        "load_1min": _load(),
    }
    spec = {
        "repo": str(ctx.tmp / "feast"),
        "views": _feast_views(view),
        "entities": str(w.pit.entity_frame),
        "out": str(ctx.tmp / "feast.parquet"),
    }
    try:
        feast = _feast(ctx, "historical", spec)
    except PeerUnavailable:
        return out
    vs_feast = compare_tables(ours, pq.read_table(spec["out"]), view.features)
    out.update(
        {
            "seconds@feast": (feast["seconds"], "s"),
            "peak_mib@feast": _mib(feast["peak_bytes"]),
            "rows_returned@feast": (feast["rows"], "rows"),
            "values_differing_vs_feast": (vs_feast.values_differing, "values"),
            "feast_rows_not_returned": (vs_feast.missing_rows, "rows"),
            "speedup_vs_feast": (feast["seconds"] / seconds, "x"),
        }
    )
    return out


@benchmark("features.historical.wide", repeats=1, quick_repeats=1)
def historical_wide(ctx: Context) -> Measurements:
    """17,000 entity rows x 1,000 features across 10 views: time, peak RSS, vs DuckDB floor."""
    wide = _wide(ctx)
    views = [
        ViewSpec(name, str(path), wide.features[name], timedelta(days=400))
        for name, path in wide.views.items()
    ]
    home = ctx.tmp / "steward"
    with open_feature_store(str(home)) as features:
        apply_views(features, views)
    refs = [ref for view in views for ref in view.refs()]
    ours_path = ctx.tmp / "steward.parquet"
    peak = ctx.measure_peak_memory(
        historical_in_child, str(home), str(wide.entity_frame), refs, str(ours_path)
    )
    ours = pq.read_table(ours_path)
    names = [name for view in views for name in view.features]
    floor, floor_seconds = duckdb_asof(wide.entity_frame, views)
    vs_floor = compare_tables(ours, floor, names)
    out: dict[str, Any] = {
        "seconds": (peak.result["seconds"], "s"),
        "seconds@duckdb_asof": (floor_seconds, "s"),
        "warm_seconds": (peak.result["warm_seconds"], "s"),
        "peak_mib": _mib(peak.delta_bytes),
        "features": (len(refs), "features"),
        "rows_returned": (vs_floor.rows, "rows"),
        "rows_missing": (vs_floor.missing_rows, "rows"),
        "values_differing_vs_duckdb": (vs_floor.values_differing, "values"),
        "load_1min": _load(),
    }
    if os.environ.get("STEWARD_BENCH_FEATURES_FEAST_WIDE", "1") in ("0", "false", "no"):
        return out
    spec = {
        "repo": str(ctx.tmp / "feast"),
        "views": _feast_views(*views),
        "entities": str(wide.entity_frame),
        "out": str(ctx.tmp / "feast.parquet"),
    }
    try:
        feast = _feast(ctx, "historical", spec, timeout_s=3600)
    except PeerUnavailable:
        return out
    vs_feast = compare_tables(ours, pq.read_table(spec["out"]), names)
    out.update(
        {
            "seconds@feast": (feast["seconds"], "s"),
            "peak_mib@feast": _mib(feast["peak_bytes"]),
            "rows_returned@feast": (feast["rows"], "rows"),
            "values_differing_vs_feast": (vs_feast.values_differing, "values"),
            "speedup_vs_feast": (feast["seconds"] / peak.result["seconds"], "x"),
        }
    )
    return out


def _materialize_steward(ctx: Context, w: Workloads, online_url: str | None) -> dict[str, Any]:
    home = _home(ctx, w)
    out: dict[str, Any] = {}
    for job in _materialize_jobs(w):
        peak = ctx.measure_peak_memory(
            materialize_in_child, home, online_url, job["start"], job["end"], [job["view"]]
        )
        out[job["label"]] = {**peak.result, "peak_bytes": peak.delta_bytes}
    return out


def _materialize_measurements(w: Workloads, ours: dict[str, Any]) -> dict[str, Any]:
    month, entities = ours["month"], ours["entities"]
    return {
        "rows_per_s": (entities["rows_written"] / entities["seconds"], "rows/s"),
        "seconds": (entities["seconds"], "s"),
        "rows_written": (entities["rows_written"], "rows"),
        "peak_mib": _mib(entities["peak_bytes"]),
        "month_seconds": (month["seconds"], "s"),
        "month_rows_per_s": (month["rows_written"] / month["seconds"], "rows/s"),
        "month_source_rows_per_s": (_month_rows(w) / month["seconds"], "rows/s"),
        "month_rows_written": (month["rows_written"], "rows"),
        "load_1min": _load(),
    }


@benchmark("features.materialize.sqlite", repeats=3, quick_repeats=1)
def materialize_sqlite(ctx: Context) -> Measurements:
    """30 days into SQLite: 100,000 entities (and the 1M-row view's month), vs Feast."""
    w = _workloads(ctx)
    out = _materialize_measurements(w, _materialize_steward(ctx, w, None))
    spec = {
        "repo": str(ctx.tmp / "feast"),
        "views": _feast_views(w.pit_view, w.daily_view),
        "materialize": _materialize_jobs(w),
    }
    try:
        feast = _feast(ctx, "online", spec)
    except PeerUnavailable:
        return out
    written = w.materialization.window_rows
    entities_seconds, month_seconds = (
        feast["materialize_seconds_entities"],
        feast["materialize_seconds_month"],
    )
    out.update(
        {
            "rows_per_s@feast": (written / entities_seconds, "rows/s"),
            "seconds@feast": (entities_seconds, "s"),
            "peak_mib@feast": _mib(feast["materialize_peak_bytes_entities"]),
            "month_seconds@feast": (month_seconds, "s"),
            "month_source_rows_per_s@feast": (_month_rows(w) / month_seconds, "rows/s"),
            "speedup_vs_feast": (entities_seconds / out["seconds"][0], "x"),
            "month_speedup_vs_feast": (month_seconds / out["month_seconds"][0], "x"),
        }
    )
    return out


@benchmark("features.materialize.redis", repeats=3, quick_repeats=1)
def materialize_redis(ctx: Context) -> Measurements:
    """30 days into Redis: 100,000 entities (and the 1M-row view's month); steward only."""
    w = _workloads(ctx)
    with _redis_url(ctx) as url:
        return _materialize_measurements(w, _materialize_steward(ctx, w, url))


def _online_steward(ctx: Context, w: Workloads, online_url: str | None) -> dict[str, Any]:
    home = _home(ctx, w)
    m = w.materialization
    materialize_in_child(home, online_url, m.start.isoformat(), m.end.isoformat(), [DAILY_VIEW])
    calls_1, calls_100 = ctx.size(*ONLINE_CALLS[0]), ctx.size(*ONLINE_CALLS[1])
    out: dict[str, Any] = {}
    with open_feature_store(home, online_url) as features:
        view = w.daily_view
        for batch, calls in ((1, calls_1), (100, calls_100)):
            reader = online_reader(features, view, m.entities, batch, calls)
            p50, p99, cpu_p99 = latencies_ms(reader, calls)
            out[f"p50_ms_{batch}x10"], out[f"p99_ms_{batch}x10"] = (p50, "ms"), (p99, "ms")
            out[f"p99_cpu_ms_{batch}x10"] = (cpu_p99, "ms")
        out["load_1min"] = _load()
        out["probe"] = features.get_online_features(
            view.refs(), entity_rows=[{ENTITY_KEY: k} for k in _probe(w)]
        ).to_dict()
    return out


def _probe(w: Workloads) -> list[int]:
    n = w.materialization.entities
    return [0, 1, n // 2, n - 1]


def _online_measurements(out: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in out.items() if k != "probe"}


@benchmark("features.online.sqlite", repeats=3, quick_repeats=1)
def online_sqlite(ctx: Context) -> Measurements:
    """get_online_features, 10 features x 1 and x 100 entities, SQLite: p50/p99 vs Feast."""
    w = _workloads(ctx)
    ours = _online_steward(ctx, w, None)
    out = _online_measurements(ours)
    try:
        repo = _feast_online_repo(ctx, w)
        calls_1, calls_100 = ctx.size(*FEAST_ONLINE_CALLS[0]), ctx.size(*FEAST_ONLINE_CALLS[1])
        spec = {
            "repo": str(repo),
            "views": _feast_views(w.daily_view),
            "materialize": [],
            "online_view": DAILY_VIEW,
            "entities": w.materialization.entities,
            "calls_1": calls_1,
            "calls_100": calls_100,
            "probe": _probe(w),
        }
        feast = _feast(ctx, "online", spec)
    except PeerUnavailable:
        return out
    for batch in (1, 100):
        for stat in ("p50", "p99", "p99_cpu"):
            out[f"{stat}_ms_{batch}x10@feast"] = (feast[f"{stat}_ms_{batch}"], "ms")
    out["values_differing_vs_feast"] = (_probe_differences(ours["probe"], feast["probe"]), "values")
    return out


def _probe_differences(ours: dict[str, list[Any]], theirs: dict[str, list[Any]]) -> int:
    differing = 0
    for name, values in theirs.items():
        mine = ours.get(name) or ours.get(f"{DAILY_VIEW}__{name}") or [None] * len(values)
        differing += sum(a != b for a, b in zip(mine, values, strict=False))
    return differing


@benchmark("features.online.redis", repeats=3, quick_repeats=1)
def online_redis(ctx: Context) -> Measurements:
    """get_online_features, 10 features x 1 and x 100 entities, Redis: p50/p99 (steward)."""
    w = _workloads(ctx)
    with _redis_url(ctx) as url:
        return _online_measurements(_online_steward(ctx, w, url))


def _huge_size(ctx: Context) -> tuple[int, int]:
    chosen = os.environ.get("STEWARD_BENCH_FEATURES_HUGE")
    if chosen:
        entities, _, per_entity = chosen.lower().partition("x")
        return int(entities), int(per_entity)
    return HUGE_DEFAULT[1] if ctx.quick else HUGE_DEFAULT[0]


@benchmark("features.materialize.huge", repeats=1, quick_repeats=1)
def materialize_huge(ctx: Context) -> Measurements:
    """Materialize a 10M-row source (STEWARD_BENCH_FEATURES_HUGE) into SQLite: peak RSS."""
    entities, per_entity = _huge_size(ctx)
    with ctx.timer() as written:
        source = write_huge_source(ctx.tmp, entities, per_entity)
    view = ViewSpec("customer_huge", str(source.source), source.feature_names, TTL)
    home = ctx.tmp / "steward"
    with open_feature_store(str(home)) as features:
        apply_views(features, [view])
    peak = ctx.measure_peak_memory(
        materialize_in_child,
        str(home),
        None,
        source.start.isoformat(),
        source.end.isoformat(),
        [view.name],
    )
    seconds = peak.result["seconds"]
    parquet = sum(p.stat().st_size for p in source.source.glob("*.parquet"))
    return {
        "seconds": (seconds, "s"),
        "source_rows_per_s": (source.source_rows / seconds, "rows/s"),
        "rows_written_per_s": (peak.result["rows_written"] / seconds, "rows/s"),
        "peak_mib": _mib(peak.delta_bytes),
        "source_rows": (source.source_rows, "rows"),
        "rows_written": (peak.result["rows_written"], "rows"),
        "source_parquet_mib": _mib(parquet),
        "write_source_seconds": (written.seconds, "s"),
        "load_1min": _load(),
    }
