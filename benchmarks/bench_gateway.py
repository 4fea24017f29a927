"""The gateway over HTTP against ``mlflow models serve``, on the same HistGradientBoosting model.

Both servers serve one classifier of 30 float features (HistGradientBoosting,
100 iterations, trained in each tool's own environment on the same data with the
same seed). Load comes from ``wrk`` in its own process, 15 s per point (3 s with
``--quick``). steward runs ``steward gateway`` (ONNX runtime, micro-batching,
durable prediction log: every 200 is on disk before it is sent); MLflow runs
``mlflow models serve --env-manager local`` with 1 and with 2 workers and its best
configuration is the one compared.

Points: 1-row requests at concurrency 1 (p50) and 64 (requests/s, p99); 100-row
requests at concurrency 64 (rows/s); 1-row requests at concurrency 256 (steward
only: errors other than deliberate 429/503 shedding, p99 against concurrency 64).

Needs ``wrk`` on PATH (Debian: ``apt-get install wrk``); skipped otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from benchmarks._harness import Context, Measurements, benchmark
from steward.registry import RegistryService
from steward.serving import DeploymentService, Variant
from steward.store import Store, StoreSettings

FEATURES = 30
TRAIN_ROWS = 20_000
SEED = 7

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


@dataclass(frozen=True)
class Point:
    """What wrk measured at one point."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int


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


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def _wrk(url: str, body: str, connections: int, seconds: int, tmp: Path) -> Point:
    script = tmp / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
    )
    threads = min(2, connections)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
         "--timeout", "10s", "-s", str(script), url],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Point(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_ms(latency["50"]) if "50" in latency else float("nan"),  # no request finished
        p99_ms=_ms(latency["99"]) if "99" in latency else float("nan"),
        requests=int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
    )


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
        ctx.skip("wrk is not on PATH (apt-get install wrk)")
    seconds = 3 if ctx.quick else 15
    x, y = _data(ctx.tmp)
    inprocess_ms = _deploy(ctx.tmp / "home", x, y)
    s_one, s_100, m_one, m_100 = _bodies(x)
    result: Measurements = {"inprocess_predict_1row_ms": (inprocess_ms, "ms")}
    env = {**os.environ, "STEWARD_HOME": str(ctx.tmp / "home")}
    steward = [sys.executable, "-c", "from steward.cli import main; main()", "gateway"]
    points: dict[str, Point] = {}
    for workers in (1, 2):
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        url = f"{base}/v1/deployments/credit-api/predict"
        command = [*steward, "--port", str(port), "--workers", str(workers), "--insecure-local"]
        with _server(command, f"{base}/readyz", env, ctx.tmp / f"gateway-{workers}.log"):
            _wrk(url, s_one, 8, 1, ctx.tmp)  # warm-up
            if workers == 1:
                points["c1"] = _wrk(url, s_one, 1, seconds, ctx.tmp)
            points[f"c64_w{workers}"] = _wrk(url, s_one, 64, seconds, ctx.tmp)
            points[f"c64_100_w{workers}"] = _wrk(url, s_100, 64, seconds, ctx.tmp)
            points[f"c256_w{workers}"] = _wrk(url, s_one, 256, seconds, ctx.tmp)
    best = max((points["c64_w1"], points["c64_w2"]), key=lambda p: p.rps)
    best_100 = max((points["c64_100_w1"], points["c64_100_w2"]), key=lambda p: p.rps)
    best_256 = max((points["c256_w1"], points["c256_w2"]), key=lambda p: p.rps)
    result.update(
        {
            "c1_p50_ms": (points["c1"].p50_ms, "ms"),
            "c64_rps": (best.rps, "req/s"),
            "c64_p99_ms": (best.p99_ms, "ms"),
            "c64_rps_1worker": (points["c64_w1"].rps, "req/s"),
            "c64_rps_2workers": (points["c64_w2"].rps, "req/s"),
            "c64_100rows_rows_per_s": (best_100.rps * 100, "rows/s"),
            "c256_rps": (best_256.rps, "req/s"),
            "c256_p99_ms": (best_256.p99_ms, "ms"),
            "c256_shed_responses": best_256.non_2xx,
            "c256_socket_errors": best_256.socket_errors,
            "c64_non_2xx": best.non_2xx + best.socket_errors,
        }
    )
    result.update(_mlflow(ctx, m_one, m_100, seconds))
    return result


def _mlflow(ctx: Context, one: str, hundred: str, seconds: int) -> Measurements:
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
            _wrk(url, one, 8, 1, ctx.tmp)
            if workers == 1:
                points["c1"] = _wrk(url, one, 1, seconds, ctx.tmp)
            points[f"c64_w{workers}"] = _wrk(url, one, 64, seconds, ctx.tmp)
            points[f"c64_100_w{workers}"] = _wrk(url, hundred, 64, seconds, ctx.tmp)
    best = max((points["c64_w1"], points["c64_w2"]), key=lambda p: p.rps)
    best_100 = max((points["c64_100_w1"], points["c64_100_w2"]), key=lambda p: p.rps)
    return {
        "inprocess_predict_1row_ms@mlflow": (saved["predict_proba_1row_ms"], "ms"),
        "c1_p50_ms@mlflow": (points["c1"].p50_ms, "ms"),
        "c64_rps@mlflow": (best.rps, "req/s"),
        "c64_p99_ms@mlflow": (best.p99_ms, "ms"),
        "c64_rps_1worker@mlflow": (points["c64_w1"].rps, "req/s"),
        "c64_rps_2workers@mlflow": (points["c64_w2"].rps, "req/s"),
        "c64_100rows_rows_per_s@mlflow": (best_100.rps * 100, "rows/s"),
    }
