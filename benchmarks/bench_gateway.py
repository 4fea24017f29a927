"""The gateway over HTTP against ``mlflow models serve``, on the same HistGradientBoosting model.

Both servers serve one classifier of 30 float features (HistGradientBoosting,
100 iterations, trained in each tool's own environment on the same data with the
same seed). Load comes from ``wrk`` in its own process, 15 s per point (3 s with
``--quick``); answers are counted by status (2xx, 429, 503, other) and the p99 of
accepted requests is bounded from wrk's distribution (see ``benchmarks/_wrk.py``).
steward runs ``steward gateway`` (ONNX runtime, micro-batching, durable
prediction log: every 200 is on disk before it is sent); MLflow runs ``mlflow
models serve --env-manager local``. Each runs with 1 and with 2 workers, and
each side's best configuration (most accepted requests/s) is the one compared.

Points: 1-row requests at concurrency 1 (p50) and 64 (requests/s, p99); 100-row
requests at concurrency 64 (rows/s); 1-row requests at concurrency 256 (steward
only), whose accepted p99 is set beside the concurrency-64 p99 of the same
worker count. Both of those come from ``loadgen.c`` (``benchmarks/_loadgen.py``),
run right after wrk's concurrency-64 point: it times each answer with its status,
so the accepted p99 is exact even when some requests are shed (without a C
compiler, wrk's bounds are used, and its upper bound decides). Each steward
worker admits ``MAX_IN_FLIGHT`` requests at once and lets the others wait at
most ``MAX_QUEUE_WAIT_S`` for a slot
(``STEWARD_GATEWAY_MAX_IN_FLIGHT`` / ``_MAX_QUEUED`` / ``_MAX_QUEUE_WAIT_S``), so
concurrency 64 is never refused while at concurrency 256 a request that would
wait longer is shed at once with 503 + ``Retry-After``. Both load generators
resend at once, ignoring ``Retry-After``; the gateway's default early-retry
guard (``STEWARD_GATEWAY_EARLY_RETRY_HOLD_S``, 1 s) holds such a resend until
its ``Retry-After`` has passed and answers it 429, so the refused clients cannot
flood the worker with requests that take nearly as much work to refuse as to
answer.

The goals of the serving work are computed as ``goal_*`` (and ``goals_met`` of
``goals_checked``): requests/s at concurrency 64 >= 10x MLflow's best, its p99
<= 0.1x MLflow's, 100-row rows/s >= 5x MLflow's, concurrency-1 p50 <= in-process
predict + 1 ms, concurrency 256 without errors other than shedding and with an
accepted p99 <= 3x that of concurrency 64.

Needs ``wrk`` on PATH (Debian/Ubuntu: ``apt-get install wrk``); skipped otherwise.
When MLflow's environment cannot be built, steward's figures are reported alone.
"""

from __future__ import annotations

import json
import math
import operator
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from benchmarks._harness import Context, Measurement, Measurements, PeerUnavailable, benchmark
from benchmarks._loadgen import LoadgenUnavailable, build_loadgen, run_loadgen
from benchmarks._wrk import Point, run_wrk
from steward.registry import RegistryService
from steward.serving import DeploymentService, Variant
from steward.store import Store, StoreSettings

FEATURES = 30
TRAIN_ROWS = 20_000
SEED = 7
# Per gateway worker: c64 (at most 64 connections on one worker) is always admitted;
# at c256 a request that would wait over 20 ms for one of a worker's 64 slots is
# refused at once (503 + Retry-After).
MAX_IN_FLIGHT = 64
MAX_QUEUED = 1024
MAX_QUEUE_WAIT_S = 0.02

# The speed goals of the serving work: measure -> (comparison, bound).
GOALS: dict[str, tuple[Callable[[float, float], bool], float]] = {
    "goal_c64_rps_x_mlflow": (operator.ge, 10.0),
    "goal_c64_p99_x_mlflow": (operator.le, 0.1),
    "goal_100rows_x_mlflow": (operator.ge, 5.0),
    "goal_c1_p50_over_inprocess_ms": (operator.le, 1.0),
    "goal_c256_p99_x_c64_p99": (operator.le, 3.0),
    "goal_c256_errors": (operator.le, 0.0),
}

SAVE_WITH_MLFLOW = """
import json, sys, time
import numpy as np
import mlflow.sklearn
from sklearn.ensemble import HistGradientBoostingClassifier
x, y = np.load(sys.argv[1]), np.load(sys.argv[2])
model = HistGradientBoostingClassifier(max_iter=100, random_state=7).fit(x, y)
trusted = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
mlflow.sklearn.save_model(model, sys.argv[3], skops_trusted_types=trusted)
row = x[:1]
model.predict_proba(row)
times = []
for _ in range(500):
    t = time.perf_counter(); model.predict_proba(row); times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"predict_proba_1row_ms": times[len(times) // 2] * 1000}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} not ready after {timeout_s:.0f} s")


@contextmanager
def _server(command: list[str], ready_url: str, env: dict[str, str], log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_ready(ready_url, process)
        yield
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _data(tmp: Path) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(TRAIN_ROWS, FEATURES))
    logit = x[:, :5].sum(axis=1) - 0.5 * x[:, 5] * x[:, 6]
    y = (logit + rng.normal(scale=0.5, size=TRAIN_ROWS) > 0).astype(np.int64)
    np.save(tmp / "x.npy", x)
    np.save(tmp / "y.npy", y)
    return x, y


def _deploy(home: Path, x: np.ndarray, y: np.ndarray) -> float:
    """Register the model (compiled to ONNX) and deploy it; return in-process 1-row predict ms."""
    store = Store.open(StoreSettings(home=home))  # type: ignore[call-arg]
    try:
        store.initialize()
        registry = RegistryService(store)
        model = HistGradientBoostingClassifier(max_iter=100, random_state=SEED).fit(x, y)
        registry.register(model, name="credit", sample_input=x[:500], compile="onnx")
        DeploymentService(store, registry).create(
            "credit-api", [Variant("champion", "credit:1")], settings={"log_mode": "durable"}
        )
        loaded = registry.load("credit:1", prefer="onnx")
        row = x[:1]
        loaded.predict_proba(row)
        times = []
        for _ in range(500):
            started = time.perf_counter()
            loaded.predict_proba(row)
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1000
    finally:
        store.close()


def _bodies(x: np.ndarray) -> tuple[str, str, str, str]:
    names = [f"x{i}" for i in range(FEATURES)]
    one = x[0].tolist()
    hundred = x[:100].tolist()
    steward_one = json.dumps({"inputs": dict(zip(names, one, strict=True))})
    steward_100 = json.dumps({"inputs": [dict(zip(names, r, strict=True)) for r in hundred]})
    return steward_one, steward_100, json.dumps({"inputs": [one]}), json.dumps({"inputs": hundred})


@benchmark("gateway.http.wrk", group="gateway", repeats=1, quick_repeats=1)
def gateway_http(ctx: Context) -> Measurements:
    """steward gateway vs mlflow models serve under wrk: 1-row and 100-row requests."""
    if shutil.which("wrk") is None:
        ctx.skip("wrk is not on PATH: install it (Debian/Ubuntu: apt-get install wrk)")
    seconds = 3 if ctx.quick else 15
    x, y = _data(ctx.tmp)
    inprocess_ms = _deploy(ctx.tmp / "home", x, y)
    s_one, s_100, m_one, m_100 = _bodies(x)
    ours = _steward_points(ctx, s_one, s_100, seconds)
    result: dict[str, Measurement] = {"inprocess_predict_1row_ms": (inprocess_ms, "ms")}
    result.update(_point_measurements(ours))
    theirs = None
    try:
        theirs, their_inprocess_ms = _mlflow_points(ctx, m_one, m_100, seconds)
    except PeerUnavailable as exc:  # steward's figures stand alone, without the ratios
        print(f"bench_gateway: MLflow not measured: {exc}", file=sys.stderr)
    if theirs is not None:
        result["inprocess_predict_1row_ms@mlflow"] = (their_inprocess_ms, "ms")
        result.update({f"{k}@mlflow": v for k, v in _point_measurements(theirs).items()})
    result.update(_goals(ours, theirs, inprocess_ms))
    return result


def _steward_points(ctx: Context, one: str, hundred: str, seconds: int) -> dict[str, Point]:
    """steward's points with 1 and 2 workers, each worker admitting ``MAX_IN_FLIGHT``."""
    env = {
        **os.environ,
        "STEWARD_HOME": str(ctx.tmp / "home"),
        "STEWARD_GATEWAY_MAX_IN_FLIGHT": str(MAX_IN_FLIGHT),
        "STEWARD_GATEWAY_MAX_QUEUED": str(MAX_QUEUED),
        "STEWARD_GATEWAY_MAX_QUEUE_WAIT_S": str(MAX_QUEUE_WAIT_S),
    }
    steward = [sys.executable, "-c", "from steward.cli import main; main()", "gateway"]
    overload: Path | bool  # loadgen's binary, or True: the overload point from wrk
    try:
        overload = build_loadgen(ctx.tmp)
    except LoadgenUnavailable as exc:
        print(f"bench_gateway: overload point from wrk's bounds: {exc}", file=sys.stderr)
        overload = True
    points: dict[str, Point] = {}
    for workers in (1, 2):
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        url = f"{base}/v1/deployments/credit-api/predict"
        command = [*steward, "--port", str(port), "--workers", str(workers), "--insecure-local"]
        with _server(command, f"{base}/readyz", env, ctx.tmp / f"gateway-{workers}.log"):
            _measure(url, one, hundred, workers, seconds, ctx.tmp, points, overload=overload)
    return points


def _mlflow_points(
    ctx: Context, one: str, hundred: str, seconds: int
) -> tuple[dict[str, Point], float]:
    """MLflow's points, and its in-process 1-row ``predict_proba`` in ms."""
    python = ctx.peer_python("mlflow-serve")
    model_dir = ctx.tmp / "mlflow-model"
    saved = ctx.run_peer(
        "mlflow-serve", SAVE_WITH_MLFLOW, str(ctx.tmp / "x.npy"), str(ctx.tmp / "y.npy"),
        str(model_dir),
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_"))}
    # The scoring server execs `uvicorn` from PATH: the peer's own.
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    points: dict[str, Point] = {}
    for workers in (1, 2):
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        command = [
            str(python), "-m", "mlflow", "models", "serve", "-m", str(model_dir),
            "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", str(workers),
        ]  # fmt: skip
        with _server(command, f"{base}/ping", env, ctx.tmp / f"mlflow-{workers}.log"):
            url = f"{base}/invocations"
            _measure(url, one, hundred, workers, seconds, ctx.tmp, points, overload=None)
    return points, float(saved["predict_proba_1row_ms"])


def _measure(
    url: str,
    one: str,
    hundred: str,
    workers: int,
    seconds: int,
    tmp: Path,
    points: dict[str, Point],
    *,
    overload: Path | bool | None,
) -> None:
    """Run the points of one server: c1 (1 worker only), c64, c256 (overload), c64 100-row.

    ``overload`` is loadgen's binary (the overload point and its c64 reference from
    it), True (the overload point from wrk), or None (no overload point). The
    overload point follows the c64 point it is compared with, under the same
    conditions; 100-row requests come last.
    """
    run_wrk(url, one, 8, 1, tmp)  # warm-up
    if workers == 1:
        _settle(url, one)
        points["c1"] = run_wrk(url, one, 1, seconds, tmp)
    _settle(url, one)
    points[f"c64_w{workers}"] = run_wrk(url, one, 64, seconds, tmp)
    if isinstance(overload, Path):
        _settle(url, one)
        points[f"c64ref_w{workers}"] = run_loadgen(overload, url, one, 64, seconds, tmp)
        _settle(url, one)
        points[f"c256_w{workers}"] = run_loadgen(overload, url, one, 256, seconds, tmp)
    elif overload:
        _settle(url, one)
        points[f"c256_w{workers}"] = run_wrk(url, one, 256, seconds, tmp)
    _settle(url, one)
    points[f"c64_100_w{workers}"] = run_wrk(url, hundred, 64, seconds, tmp)


def _settle(url: str, body: str, timeout_s: float = 30.0) -> None:
    """Wait until a request is answered 200, so no point inherits an open breaker."""
    deadline = time.monotonic() + timeout_s
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} answered no request with 200 within {timeout_s:.0f} s")


def _best(points: dict[str, Point], prefix: str) -> tuple[int, Point]:
    """The worker count with the most accepted requests/s at a point, and its figures."""
    return max(
        ((w, points[f"{prefix}_w{w}"]) for w in (1, 2)), key=lambda pair: pair[1].accepted_rps
    )


def _point_measurements(points: dict[str, Point]) -> dict[str, Measurement]:
    """Every figure of one server; the c64 headline is its best worker count."""
    workers, best = _best(points, "c64")
    _, best_100 = _best(points, "c64_100")
    out: dict[str, Measurement] = {
        "c1_p50_ms": (points["c1"].p50_ms, "ms"),
        "c64_rps": (best.accepted_rps, "req/s"),
        "c64_p99_ms": (best.p99_accepted_ms, "ms"),
        "c64_best_workers": workers,
        "c64_100rows_rows_per_s": (best_100.accepted_rps * 100, "rows/s"),
        "c64_not_accepted": best.answered - best.ok + best.socket_errors,
    }
    for w in (1, 2):
        c64 = points[f"c64_w{w}"]
        out[f"c64_rps_{w}w"] = (c64.accepted_rps, "req/s")
        out[f"c64_p99_ms_{w}w"] = (c64.p99_accepted_ms, "ms")
        out[f"c64_100rows_rows_per_s_{w}w"] = (points[f"c64_100_w{w}"].accepted_rps * 100, "rows/s")
        c256 = points.get(f"c256_w{w}")
        if c256 is not None:  # steward only: the overload point, beside c64 of the same workers
            out[f"c256_accepted_rps_{w}w"] = (c256.accepted_rps, "req/s")
            out[f"c256_p99_accepted_ms_{w}w"] = (c256.p99_accepted_ms, "ms")
            out[f"c256_p99_accepted_low_ms_{w}w"] = (c256.p99_accepted_low_ms, "ms")
            out[f"c256_shed_share_{w}w"] = c256.shed / max(c256.answered, 1)
            out[f"c256_errors_{w}w"] = c256.errors
            reference = points.get(f"c64ref_w{w}", c64)
            if reference is not c64:
                out[f"c64ref_p99_ms_{w}w"] = (reference.p99_accepted_ms, "ms")
            ratio = _ratio(c256.p99_accepted_ms, reference.p99_accepted_ms)
            out[f"c256_p99_x_c64_p99_{w}w"] = (ratio, "x")
    return out


def _ratio(ours: float, theirs: float) -> float:
    """``ours / theirs``, NaN when there is nothing to divide by (a goal then is not met)."""
    return ours / theirs if theirs > 0 else math.nan


def _goals(
    ours: dict[str, Point], theirs: dict[str, Point] | None, inprocess_ms: float
) -> dict[str, Measurement]:
    """The speed goals as ratios, and how many of them this run met."""
    workers, c64 = _best(ours, "c64")
    c256 = ours[f"c256_w{workers}"]  # the overload point of the configuration compared
    reference = ours.get(f"c64ref_w{workers}", c64)  # c64 from the overload point's client
    values: dict[str, float] = {
        "goal_c1_p50_over_inprocess_ms": ours["c1"].p50_ms - inprocess_ms,
        "goal_c256_p99_x_c64_p99": _ratio(c256.p99_accepted_ms, reference.p99_accepted_ms),
        "goal_c256_errors": float(c256.errors),
    }
    if theirs is not None:
        _, mlflow = _best(theirs, "c64")
        _, mlflow_100 = _best(theirs, "c64_100")
        _, ours_100 = _best(ours, "c64_100")
        values["goal_c64_rps_x_mlflow"] = _ratio(c64.accepted_rps, mlflow.accepted_rps)
        values["goal_c64_p99_x_mlflow"] = _ratio(c64.p99_accepted_ms, mlflow.p99_accepted_ms)
        values["goal_100rows_x_mlflow"] = _ratio(ours_100.accepted_rps, mlflow_100.accepted_rps)
    met = sum(GOALS[name][0](value, GOALS[name][1]) for name, value in values.items())
    out: dict[str, Measurement] = {
        name: (value, "ms" if name.endswith("_ms") else "x" if "_x_" in name else "")
        for name, value in values.items()
    }
    out["goals_met"] = met
    out["goals_checked"] = len(values)
    return out
