"""Experiment tracking: steward side by side with MLflow's SQLite tracking store.

Both sides run on the same machine in the same benchmark run, each on a fresh SQLite
file (steward: ``steward.connect(home=...)``, WAL with ``synchronous=FULL``; MLflow:
``mlflow.set_tracking_uri("sqlite:///.../mlflow.db")``, in its own venv from
``benchmarks/peers/mlflow.txt``).  MLflow's work is timed inside its process, so its
interpreter start-up, imports and schema migrations (an empty migrated database is
made once per benchmark run and copied) are not counted.  A timed block of logging
ends with the run's end (steward ``run.end()``, which writes what is still buffered;
MLflow ``set_terminated``): buffered values count once they are in the database.

MLflow commits a transaction per call, a few hundred a second, so its one-by-one loops
stop after a number of values (runs) or of seconds, whichever comes first; so does
steward's run creation.  Such sides are compared as rates, and the counts they reached
are reported (``*_capped@mlflow``, ``runs_timed``).

- ``tracking.log_metric.per_call``: 10 metrics x 1,000 steps, one call per value:
  steward ``run.log_metric``; MLflow ``client.log_metric``, synchronous (the default),
  and with ``synchronous=False`` (its async queue, drained by
  ``mlflow.flush_async_logging()``; capped by count: the time is spent in the flush).
- ``tracking.log_metric.batched``: the same 10,000 values in calls of 1,000 (steward
  ``run.log_batch``; MLflow ``client.log_batch``, whose limit is 1,000 metrics a call),
  and in one call per step of 10 metrics, as a training loop logs (steward
  ``run.log_metrics(..., step=)``; MLflow ``client.log_batch`` of 10 ``Metric``).
- ``tracking.metric_history``: every value of one metric logged at 1,000 steps, in a
  run of 10 such metrics (steward ``metric_history``; MLflow ``get_metric_history``);
  median of warm reads.
- ``tracking.create_runs`` (``.no_env``): runs with 5 params and 5 metrics each, with
  ``capture_environment=True`` (the default) and ``False``: steward
  ``start_run(params=...)`` + ``log_metrics`` + end; MLflow's fluent API
  (``start_run`` + ``log_params`` + ``log_metrics`` + ``end_run``, which records its
  own context tags: user, source, git commit).
- ``tracking.search_runs``: a metric filter with a metric ordering, first page of 100.
  Each side creates 100 runs through its API and copies their rows with SQL (fresh
  run ids, metric values shifted by a few thousandths) up to 1,000 runs (MLflow) and
  1,000 and 10,000 (steward): creating 10,000 runs one by one takes minutes.  The
  copies skip steward's audit events, which search does not read.  MLflow's database
  is made once per benchmark run and copied for each repeat (search only reads).
  Run counts are in the measurement names.

``speedup_vs_mlflow*`` is how many times faster steward is in the same repeat (rates:
steward / MLflow; times: MLflow / steward).
"""

from __future__ import annotations

import atexit
import json
import math
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks._harness import Context, Measurements, PeerUnavailable, benchmark, timer
from steward.sdk import Steward, connect

KEYS = 10  # metrics per step
STEPS = (1_000, 100)  # (full, quick)
BATCH = 1_000  # values per log_batch call (MLflow's limit per call)
MLFLOW_PER_CALL = ((2_000, 6.0), (200, 1.0))  # (values, seconds) full, quick
MLFLOW_ASYNC_VALUES = (300, 50)
MLFLOW_PER_STEP = ((200, 4.0), (20, 1.0))  # (steps, seconds)
HISTORY_STEPS = 1_000
HISTORY_READS = (50, 10)
# Runs created one by one: at most this many runs or seconds (both sides), as rates.
RUNS = ((1_000, 8.0), (100, 1.0))  # (runs, seconds) full, quick
MLFLOW_RUNS = ((1_000, 5.0), (100, 1.0))
SEARCH_BASE = (100, 50)  # runs created through each API, then copied with SQL
SEARCH_SIZES = ((1_000, 10_000), (100, 1_000))  # steward's; the first is also MLflow's
SEARCH_READS = (20, 5)
SEARCH_THRESHOLD = 0.75
SEARCH_FILTER = f"metrics.auc > {SEARCH_THRESHOLD}"
SEARCH_ORDER = "metrics.auc DESC"
PAGE = 100

# -- the MLflow side -------------------------------------------------------------------------

# argv: command, database path, JSON spec.  Prints one JSON object on its last line.
MLFLOW_SCRIPT = r"""
import json, math, statistics, sys, time

command, db, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

mlflow.set_tracking_uri(f"sqlite:///{db}")
client = MlflowClient()


def value(step, key):
    return math.sin(step * 0.01 + key)


def experiment(name):
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found else client.create_experiment(name)


def new_run(name="bench"):
    return client.create_run(experiment(name)).info.run_id


def check_history(run_id, key, expected):
    got = len(client.get_metric_history(run_id, key))
    if got != expected:
        raise SystemExit(f"{key}: {got} values stored, {expected} logged")


def timed_reads(fn, reads):
    fn()  # warm
    times = []
    for _ in range(reads):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


# The same runs as _run_params and _run_metrics on steward's side.
def run_params(i):
    return {"model": "hgb" if i % 2 else "rf", "learning_rate": 0.01 * (1 + i % 10),
            "max_depth": 3 + i % 5, "n_estimators": 100 + i, "balanced": str(i % 3 == 0)}


def run_metrics(i):
    return {"auc": 0.6 + 0.35 * ((i * 7919) % 1000) / 1000, "loss": 1.0 / (2 + i % 17),
            "precision": 0.5 + (i % 50) / 100, "recall": 0.4 + (i % 60) / 100,
            "f1": 0.45 + (i % 55) / 100}


def per_call(steps, keys, max_seconds, synchronous):
    run_id = new_run()
    done = 0
    start = time.perf_counter()
    deadline = start + max_seconds
    for step in range(steps):
        for k in range(keys):
            client.log_metric(run_id, f"m{k}", value(step, k), step=step, synchronous=synchronous)
        done += 1
        if time.perf_counter() > deadline:
            break
    if not synchronous:
        mlflow.flush_async_logging()
    client.set_terminated(run_id)
    seconds = time.perf_counter() - start
    check_history(run_id, "m0", done)
    return seconds, done * keys


out = {}
if command == "init":  # create and migrate an empty database
    experiment("bench")
elif command == "per_call":
    keys = spec["keys"]
    seconds, values = per_call(spec["steps"], keys, spec["max_seconds"], True)
    out.update(sync_seconds=seconds, sync_values=values)
    seconds, values = per_call(spec["async_steps"], keys, math.inf, False)
    out.update(async_seconds=seconds, async_values=values)
elif command == "batched":
    steps, keys, batch = spec["steps"], spec["keys"], spec["batch"]
    now = int(time.time() * 1000)
    items = [Metric(f"m{k}", value(s, k), now, s) for s in range(steps) for k in range(keys)]
    chunks = [items[i:i + batch] for i in range(0, len(items), batch)]
    run_id = new_run()
    start = time.perf_counter()
    for chunk in chunks:
        client.log_batch(run_id, metrics=chunk)
    client.set_terminated(run_id)
    out["batch_seconds"] = time.perf_counter() - start
    out["batch_values"] = len(items)
    check_history(run_id, "m0", steps)
    rows = [{f"m{k}": value(s, k) for k in range(keys)} for s in range(spec["per_step_steps"])]
    run_id = new_run()
    done = 0
    start = time.perf_counter()
    deadline = start + spec["per_step_seconds"]
    for step, row in enumerate(rows):
        ts = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(k, v, ts, step) for k, v in row.items()])
        done += 1
        if time.perf_counter() > deadline:
            break
    client.set_terminated(run_id)
    out["per_step_seconds"] = time.perf_counter() - start
    out["per_step_values"] = done * keys
    check_history(run_id, "m0", done)
elif command == "history":
    steps, keys = spec["steps"], spec["keys"]
    now = int(time.time() * 1000)
    items = [Metric(f"m{k}", value(s, k), now, s) for s in range(steps) for k in range(keys)]
    run_id = new_run()
    for i in range(0, len(items), 1000):
        client.log_batch(run_id, metrics=items[i:i + 1000])
    client.set_terminated(run_id)
    check_history(run_id, "m3", steps)
    out["read_ms"] = timed_reads(lambda: client.get_metric_history(run_id, "m3"), spec["reads"])
elif command == "create_runs":
    exp = experiment("runs")
    args = [(run_params(i), run_metrics(i)) for i in range(spec["runs"] + 1)]
    with mlflow.start_run(experiment_id=exp):  # warm: first-run set-up is not counted
        mlflow.log_params(args[0][0])
        mlflow.log_metrics(args[0][1])
    done = 0
    start = time.perf_counter()
    deadline = start + spec["max_seconds"]
    for params, metrics in args[1:]:
        with mlflow.start_run(experiment_id=exp):
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)
        done += 1
        if time.perf_counter() > deadline:
            break
    out = {"seconds": time.perf_counter() - start, "runs": done}
elif command == "populate":  # base runs through the client, then SQL copies of them
    exp = experiment("search")
    now = int(time.time() * 1000)
    for i in range(spec["base"]):
        run_id = client.create_run(exp).info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in run_metrics(i).items()],
            params=[Param(k, str(v)) for k, v in run_params(i).items()],
        )
        client.set_terminated(run_id)
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{db}")
    meta = sa.MetaData()
    meta.reflect(engine)
    tables = [t for t in meta.sorted_tables if "run_uuid" in t.c]
    tables.sort(key=lambda t: t.name != "runs")  # runs first: the others refer to it
    with engine.begin() as conn:
        originals = list(conn.execute(sa.select(meta.tables["runs"].c.run_uuid)).scalars())
        for k in range(1, spec["copies"]):
            delta = ((k % 11) - 5) * 0.001
            for table in tables:
                names, exprs = [], []
                for column in table.columns:
                    if list(table.primary_key) == [column] and isinstance(column.type, sa.Integer):
                        continue  # an autoincrement id
                    expr = column
                    if column.name == "run_uuid":  # as _replicate_runs: 28 hex + x + 3 hex
                        expr = sa.func.substr(column, 1, 28, type_=sa.String()) + f"x{k:03x}"
                    elif table.name in ("metrics", "latest_metrics") and column.name == "value":
                        expr = column + delta
                    names.append(column.name)
                    exprs.append(expr)
                query = sa.select(*exprs).where(table.c.run_uuid.in_(originals))
                conn.execute(table.insert().from_select(names, query))
        out["runs"] = conn.execute(sa.text("SELECT count(*) FROM runs")).scalar_one()
    engine.dispose()
elif command == "search":
    exp = experiment("search")
    def search():
        return client.search_runs(
            [exp], filter_string=spec["filter"], order_by=[spec["order"]],
            max_results=spec["page"],
        )
    found = len(search())
    if found != spec["expected"]:  # what steward found in the same runs
        raise SystemExit(f"search found {found} runs, expected {spec['expected']}")
    out["search_ms"] = timed_reads(search, spec["reads"])
else:
    raise SystemExit(f"unknown command {command!r}")
print(json.dumps(out))
"""

_CACHE: dict[str, Path] = {}  # prepared MLflow databases, kept for the whole benchmark run
_CACHE_DIR: list[Path] = []


def _cache_path(key: str) -> Path:
    if not _CACHE_DIR:
        folder = Path(tempfile.mkdtemp(prefix="steward-bench-mlflow-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _CACHE_DIR.append(folder)
    return _CACHE_DIR[0] / f"{key}.db"


def _mlflow(ctx: Context, command: str, db: Path, **spec: Any) -> dict[str, Any]:
    return ctx.run_peer("mlflow", MLFLOW_SCRIPT, command, str(db), json.dumps(spec))


def _mlflow_db(
    ctx: Context, key: str = "empty", build: Callable[[Path], None] | None = None
) -> Path:
    """Copy a prepared MLflow database into this repeat's folder, preparing it once.

    MLflow creates its schema with some 50 Alembic migrations (seconds), which is set-up,
    not tracking: an empty migrated database is made once and copied for every repeat.
    """
    if key not in _CACHE:
        path = _cache_path(key)
        if key == "empty":
            _mlflow(ctx, "init", path)
        else:
            shutil.copyfile(_mlflow_db(ctx), path)
            assert build is not None
            build(path)
        _CACHE[key] = path
    target = ctx.tmp / "mlflow" / "mlflow.db"
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(_CACHE[key], target)
    return target


def _peer(ctx: Context, fn: Callable[[], Measurements]) -> Measurements:
    """MLflow's measurements, or none when its venv cannot be built (steward's alone)."""
    try:
        return fn()
    except PeerUnavailable:
        return {}


# -- the steward side ------------------------------------------------------------------------


def _value(step: int, key: int) -> float:
    return math.sin(step * 0.01 + key)


def _run_params(i: int) -> dict[str, Any]:
    return {
        "model": "hgb" if i % 2 else "rf",
        "learning_rate": 0.01 * (1 + i % 10),
        "max_depth": 3 + i % 5,
        "n_estimators": 100 + i,
        "balanced": i % 3 == 0,
    }


def _run_metrics(i: int) -> dict[str, float]:
    return {
        "auc": 0.6 + 0.35 * ((i * 7919) % 1000) / 1000,
        "loss": 1.0 / (2 + i % 17),
        "precision": 0.5 + (i % 50) / 100,
        "recall": 0.4 + (i % 60) / 100,
        "f1": 0.45 + (i % 55) / 100,
    }


def _steward(
    ctx: Context, name: str = "steward", *, capture: bool = False, synchronous: str = "FULL"
) -> Steward:
    home = ctx.tmp / name
    return connect(
        home=home,
        capture_environment=capture,
        database_url=f"sqlite:///{home / 'steward.db'}",
        artifact_uri=str(home / "artifacts"),
        sqlite_synchronous=synchronous,
    )


def _check_history(st: Steward, run_id: str, key: str, expected: int) -> None:
    got = len(st.tracking.metric_history(run_id, key))
    if got != expected:
        raise RuntimeError(f"{key}: {got} values stored, {expected} logged")


def _median_ms(fn: Callable[[], object], reads: int) -> float:
    fn()  # warm
    times = []
    for _ in range(reads):
        with timer() as t:
            fn()
        times.append(t.seconds)
    return statistics.median(times) * 1000


# -- benchmarks ------------------------------------------------------------------------------


@benchmark("tracking.log_metric.per_call", repeats=3, quick_repeats=1)
def log_metric_per_call(ctx: Context) -> Measurements:
    """10 metrics x 1,000 steps, one call per value, until the run has ended (values/s)."""
    steps = ctx.size(*STEPS)
    items = [(f"m{k}", _value(s, k), s) for s in range(steps) for k in range(KEYS)]
    with _steward(ctx) as st:
        run = st.start_run("bench")
        with ctx.timer() as t:
            for key, value, step in items:
                run.log_metric(key, value, step=step)
            run.end()
        _check_history(st, run.id, "m0", steps)
    rate = len(items) / t.seconds
    out: dict[str, Any] = {"values_per_s": (rate, "values/s"), "values": (len(items), "values")}

    def mlflow() -> Measurements:
        values, seconds = ctx.size(*MLFLOW_PER_CALL)
        res = _mlflow(
            ctx,
            "per_call",
            _mlflow_db(ctx),
            keys=KEYS,
            steps=values // KEYS,
            max_seconds=seconds,
            async_steps=ctx.size(*MLFLOW_ASYNC_VALUES) // KEYS,
        )
        sync_rate = res["sync_values"] / res["sync_seconds"]
        async_rate = res["async_values"] / res["async_seconds"]
        return {
            "values_per_s@mlflow": (sync_rate, "values/s"),
            "values_per_s@mlflow_async": (async_rate, "values/s"),
            "speedup_vs_mlflow": (rate / sync_rate, "x"),
            "speedup_vs_mlflow_async": (rate / async_rate, "x"),
            "values_capped@mlflow": (res["sync_values"], "values"),
            "values_capped@mlflow_async": (res["async_values"], "values"),
        }

    out.update(_peer(ctx, mlflow))
    return out


@benchmark("tracking.log_metric.batched", repeats=3, quick_repeats=1)
def log_metric_batched(ctx: Context) -> Measurements:
    """10 metrics x 1,000 steps in calls of 1,000 values, and in calls of one step (values/s)."""
    steps = ctx.size(*STEPS)
    items = [(f"m{k}", _value(s, k), s) for s in range(steps) for k in range(KEYS)]
    chunks = [items[i : i + BATCH] for i in range(0, len(items), BATCH)]
    rows = [{f"m{k}": _value(s, k) for k in range(KEYS)} for s in range(steps)]
    with _steward(ctx) as st:
        run = st.start_run("bench")
        with ctx.timer() as batched:
            for chunk in chunks:
                run.log_batch(chunk)
            run.end()
        _check_history(st, run.id, "m0", steps)
        run = st.start_run("bench")
        with ctx.timer() as per_step:
            for step, row in enumerate(rows):
                run.log_metrics(row, step=step)
            run.end()
        _check_history(st, run.id, "m0", steps)
    batch_rate = len(items) / batched.seconds
    step_rate = len(items) / per_step.seconds
    out: dict[str, Any] = {
        "batch_values_per_s": (batch_rate, "values/s"),
        "per_step_values_per_s": (step_rate, "values/s"),
        "values": (len(items), "values"),
    }

    def mlflow() -> Measurements:
        per_step_steps, per_step_seconds = ctx.size(*MLFLOW_PER_STEP)
        res = _mlflow(
            ctx,
            "batched",
            _mlflow_db(ctx),
            steps=steps,
            keys=KEYS,
            batch=BATCH,
            per_step_steps=per_step_steps,
            per_step_seconds=per_step_seconds,
        )
        peer_batch = res["batch_values"] / res["batch_seconds"]
        peer_step = res["per_step_values"] / res["per_step_seconds"]
        return {
            "batch_values_per_s@mlflow": (peer_batch, "values/s"),
            "per_step_values_per_s@mlflow": (peer_step, "values/s"),
            "speedup_vs_mlflow_batch": (batch_rate / peer_batch, "x"),
            "speedup_vs_mlflow_per_step": (step_rate / peer_step, "x"),
            "per_step_values_capped@mlflow": (res["per_step_values"], "values"),
        }

    out.update(_peer(ctx, mlflow))
    return out


@benchmark("tracking.metric_history", repeats=3, quick_repeats=1)
def metric_history(ctx: Context) -> Measurements:
    """Read all 1,000 values of one metric (of a run with 10 such metrics): median ms."""
    reads = ctx.size(*HISTORY_READS)
    items = [(f"m{k}", _value(s, k), s) for s in range(HISTORY_STEPS) for k in range(KEYS)]
    with _steward(ctx) as st:
        with st.start_run("bench") as run:
            for i in range(0, len(items), BATCH):
                run.log_batch(items[i : i + BATCH])
        _check_history(st, run.id, "m3", HISTORY_STEPS)
        read_ms = _median_ms(lambda: st.tracking.metric_history(run.id, "m3"), reads)
    out: dict[str, Any] = {"read_ms_1000_points": (read_ms, "ms")}

    def mlflow() -> Measurements:
        db = _mlflow_db(ctx)
        res = _mlflow(ctx, "history", db, steps=HISTORY_STEPS, keys=KEYS, reads=reads)
        return {
            "read_ms_1000_points@mlflow": (res["read_ms"], "ms"),
            "speedup_vs_mlflow": (res["read_ms"] / read_ms, "x"),
        }

    out.update(_peer(ctx, mlflow))
    return out


def _create_runs(ctx: Context, *, capture: bool, synchronous: str = "FULL") -> Measurements:
    most, limit = ctx.size(*RUNS)
    with _steward(ctx, capture=capture, synchronous=synchronous) as st:
        with st.start_run("runs", params=_run_params(0)) as run:  # warm: experiment, schema
            run.log_metrics(_run_metrics(0))
        made = 0
        with ctx.timer() as t:
            deadline = time.perf_counter() + limit
            for i in range(1, most + 1):
                with st.start_run("runs", params=_run_params(i)) as run:
                    run.log_metrics(_run_metrics(i))
                made += 1
                if time.perf_counter() > deadline:
                    break
        found = st.tracking.search_runs("runs", page_size=1).items[0]
        if len(found.params) != 5 or len(found.metrics) != 5:
            raise RuntimeError(f"a created run has {found.params} and {found.metrics}")
    rate = made / t.seconds
    out: dict[str, Any] = {
        "runs_per_s": (rate, "runs/s"),
        "seconds_per_1000_runs": (1000 / rate, "s"),
        "runs_timed": (made, "runs"),
    }

    def mlflow() -> Measurements:
        most, seconds = ctx.size(*MLFLOW_RUNS)
        res = _mlflow(ctx, "create_runs", _mlflow_db(ctx), runs=most, max_seconds=seconds)
        peer_rate = res["runs"] / res["seconds"]
        return {
            "runs_per_s@mlflow": (peer_rate, "runs/s"),
            "seconds_per_1000_runs@mlflow": (1000 / peer_rate, "s"),
            "speedup_vs_mlflow": (rate / peer_rate, "x"),
            "runs_capped@mlflow": (res["runs"], "runs"),
        }

    out.update(_peer(ctx, mlflow))
    return out


@benchmark("tracking.create_runs", repeats=3, quick_repeats=1)
def create_runs(ctx: Context) -> Measurements:
    """Runs with 5 params + 5 metrics, environment captured (the default): runs/s."""
    return _create_runs(ctx, capture=True)


@benchmark("tracking.create_runs.no_env", repeats=3, quick_repeats=1)
def create_runs_no_env(ctx: Context) -> Measurements:
    """Runs with 5 params + 5 metrics, capture_environment=False: runs/s."""
    return _create_runs(ctx, capture=False)


_COPIED = ["runs", "params", "run_tags", "latest_metrics", "metrics"]  # runs first


def _replicate_runs(url: str, originals: list[str], copies: range) -> None:
    """Copy runs (rows of runs, params, tags, latest and all metrics) with fresh ids.

    Copy ``k`` of a run keeps its first 28 id characters (UUIDv7 hex: time, counter and
    some random bits, unique among the originals) and ends in ``x`` and ``k`` as 3 hex
    digits: no original has an ``x``, so no copy can take an original's id.  Metric
    values are shifted by a few thousandths so that copies do not tie.
    """
    engine = sa.create_engine(url)
    try:
        meta = sa.MetaData()
        meta.reflect(engine, only=_COPIED)  # also reflects the tables these refer to
        with engine.begin() as conn:
            for k in copies:
                suffix, delta = f"x{k:03x}", ((k % 11) - 5) * 0.001
                for name in _COPIED:
                    statement = _copy_statement(meta.tables[name], originals, suffix, delta)
                    conn.execute(statement)
    finally:
        engine.dispose()


def _copy_statement(table: sa.Table, originals: list[str], suffix: str, delta: float) -> sa.Insert:
    names, exprs = [], []
    for column in table.columns:
        if list(table.primary_key) == [column] and isinstance(column.type, sa.Integer):
            continue  # an autoincrement id
        expr: sa.ColumnElement[Any] = column
        if (table.name == "runs" and column.name == "id") or column.name == "run_id":
            expr = sa.func.substr(column, 1, 28, type_=sa.String()) + suffix
        elif table.name in ("latest_metrics", "metrics") and column.name == "value":
            expr = column + delta
        names.append(column.name)
        exprs.append(expr)
    key = table.c.id if table.name == "runs" else table.c.run_id
    return table.insert().from_select(names, sa.select(*exprs).where(key.in_(originals)))


def _scalars(st: Steward, sql: str) -> list[Any]:
    with st.store.database.read() as conn:
        return list(conn.execute(sa.text(sql)).scalars())


def _search(st: Steward, expected: int) -> None:
    page = st.tracking.search_runs(
        "search", filter=SEARCH_FILTER, order_by=[SEARCH_ORDER], page_size=PAGE
    )
    if len(page.items) != expected:
        raise RuntimeError(f"search found {len(page.items)} runs, expected {expected}")


@benchmark("tracking.create_runs.sync_normal", repeats=3, quick_repeats=1)
def create_runs_sync_normal(ctx: Context) -> Measurements:
    """As tracking.create_runs, with STEWARD_SQLITE_SYNCHRONOUS=NORMAL (no fsync per commit)."""
    return _create_runs(ctx, capture=True, synchronous="NORMAL")


@benchmark("tracking.search_runs", repeats=3, quick_repeats=1)
def search_runs(ctx: Context) -> Measurements:
    """Metric filter + metric ordering, first page of 100 (ms; run counts in the names)."""
    base = ctx.size(*SEARCH_BASE)
    sizes = SEARCH_SIZES[1] if ctx.quick else SEARCH_SIZES[0]
    reads = ctx.size(*SEARCH_READS)
    out: dict[str, Any] = {}
    expected: dict[int, int] = {}  # a full page, or every match when fewer
    with _steward(ctx) as st:
        for i in range(base):
            with st.start_run("search", params=_run_params(i)) as run:
                run.log_metrics(_run_metrics(i))
        originals = list(_scalars(st, "SELECT id FROM runs"))
        url = st.store.database.url.render_as_string(hide_password=False)
        copies = 1
        for size in sizes:
            _replicate_runs(url, originals, range(copies, size // base))
            copies = size // base
            counted = _scalars(st, "SELECT count(*) FROM runs")[0]
            if counted != size:
                raise RuntimeError(f"{counted} runs in the database, expected {size}")
            matching = _scalars(
                st,
                "SELECT count(*) FROM latest_metrics "
                f"WHERE key = 'auc' AND value > {SEARCH_THRESHOLD}",
            )[0]
            expected[size] = min(PAGE, matching)
            ms = _median_ms(lambda st=st, size=size: _search(st, expected[size]), reads)
            out[f"search_ms_{size}_runs"] = (ms, "ms")

    def mlflow() -> Measurements:
        size = sizes[0]

        def populate(path: Path) -> None:
            res = _mlflow(ctx, "populate", path, base=base, copies=size // base)
            if res["runs"] != size:
                raise RuntimeError(f"MLflow's database has {res['runs']} runs, not {size}")

        res = _mlflow(
            ctx,
            "search",
            _mlflow_db(ctx, f"search-{base}-{size}", populate),
            filter=SEARCH_FILTER,
            order=SEARCH_ORDER,
            page=PAGE,
            expected=expected[size],
            reads=reads,
        )
        name = f"search_ms_{size}_runs"
        return {
            f"{name}@mlflow": (res["search_ms"], "ms"),
            f"speedup_vs_mlflow_{size}_runs": (res["search_ms"] / out[name][0], "x"),
        }

    out.update(_peer(ctx, mlflow))
    return out
