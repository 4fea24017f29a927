"""Model registry: cold loads beside MLflow, ONNX against scikit-learn, digest verification.

One HistGradientBoostingClassifier over 30 numeric features (20,000 training rows,
seeded; ``_registry_models.py``) serves every benchmark here.

- ``registry.cold_load``: a fresh process imports the library, loads the model and
  predicts one row.  steward: ``RegistryService(store).load("hgb:1").predict(row)``
  on a SQLite home where the model was registered (sklearn flavor: a skops file,
  digest-verified before it is deserialized, then checked against the signature);
  MLflow: ``mlflow.pyfunc.load_model(dir).predict(row)`` on the directory
  ``mlflow.sklearn.save_model`` wrote with its default serialization (skops in
  MLflow 3.17), and with ``serialization_format="cloudpickle"`` (MLflow's long-time
  default, ``*_cloudpickle@mlflow``).  Both are timed inside the process from its
  first line, so imports count and interpreter start-up does not; the median of
  ``COLD_RUNS`` processes per repeat is reported, warm page cache.
- ``registry.predict_latency``: one row and 100 rows, scikit-learn
  ``predict_proba`` (OpenMP threads as scikit-learn picks them) against the compiled
  ONNX graph (onnxruntime on one intra-op thread, as the onnx flavor runs it;
  inputs mapped by ``onnx_inputs``); the median of many calls.  Both sides get the
  same input: the DataFrame the model was fitted on, and (``*_numpy``) a bare
  matrix.  ``onnx_speedup_*`` is scikit-learn time / ONNX time.
- ``registry.predict_loaded``: the same through ``LoadedModel.predict_proba``
  (signature checks included), ``prefer="native"`` against ``prefer="onnx"``, on a
  version registered with ``compile="onnx"``.
- ``registry.digest_verify``: read a 1 GB artifact (64 MB with ``--quick``) through
  the content-addressed store's streaming verification (``iter_chunks``: 1 MiB
  chunks hashed as they pass, the digest checked at the end), from a warm page
  cache; beside it plain ``hashlib.file_digest`` over the stored file, the ceiling.
  ``.sealed`` does the same on an AES-256-GCM sealed artifact (authenticated per
  segment, then the digest).
"""

from __future__ import annotations

import hashlib
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import skops.io

from benchmarks._harness import Context, Measurements, benchmark
from benchmarks._registry_models import (
    MLFLOW_COLD_LOAD,
    MLFLOW_SAVE,
    STEWARD_COLD_LOAD,
    hgb_model,
    run_cold,
)
from steward.registry import RegistryService
from steward.registry._onnx import compile_to_onnx, onnx_inputs
from steward.store import ContentAddressedStore, KeyRing, Store, StoreSettings
from steward.store.backends import LocalBlobBackend

COLD_RUNS = (3, 1)  # cold processes per repeat and side: full, quick
LATENCY_CALLS = {"sklearn": (400, 50), "onnx": (4_000, 300)}
DIGEST_BYTES = (1_000_000_000, 64_000_000)
MB = 1_000_000

# -- cold load -------------------------------------------------------------------------------


def _median_runs(runs: list[dict[str, Any]]) -> dict[str, float]:
    keys = ("import_s", "load_s", "first_predict_s", "total_s")
    return {key: statistics.median(float(run[key]) for run in runs) for key in keys}


def _register(home: Path, model: Any, sample: Any, *, compile_onnx: bool = False) -> Any:
    service = RegistryService(Store.open(StoreSettings(home=home)))
    service.register(
        model, name="hgb", sample_input=sample, compile="onnx" if compile_onnx else None
    )
    return service


def _cold_runs(
    python: Path | str, script: str, *args: str, ctx: Context, side: str
) -> dict[str, float]:
    pycache = ctx.tmp / f"pycache-{side}"
    run_cold(python, script, *args, cwd=ctx.tmp, pycache=pycache)  # untimed: writes bytecode
    runs = ctx.size(*COLD_RUNS)
    return _median_runs(
        [run_cold(python, script, *args, cwd=ctx.tmp, pycache=pycache) for _ in range(runs)]
    )


@benchmark("registry.cold_load", repeats=3, quick_repeats=1)
def cold_load(ctx: Context) -> Measurements:
    """Fresh process: import, load the 30-feature HGB model, predict one row; vs MLflow."""
    model, held_out = hgb_model()
    row, sample = ctx.tmp / "row.npy", ctx.tmp / "sample.npy"
    np.save(row, held_out.iloc[:1].to_numpy())
    np.save(sample, held_out.iloc[:100].to_numpy())
    home = ctx.tmp / "home"
    _register(home, model, held_out.iloc[:100])
    args = (str(home), str(row))
    steward = _cold_runs(sys.executable, STEWARD_COLD_LOAD, *args, ctx=ctx, side="steward")
    out: dict[str, Any] = {k: (v, "s") for k, v in steward.items()}
    skops_file = str(ctx.tmp / "model.skops")
    skops.io.dump(model, skops_file)
    python = ctx.peer_python("mlflow")
    for fmt, suffix in (("default", ""), ("cloudpickle", "_cloudpickle")):
        target = ctx.tmp / f"mlflow-{fmt}"
        ctx.run_peer("mlflow", MLFLOW_SAVE, skops_file, str(target), fmt, str(sample))
        peer = _cold_runs(python, MLFLOW_COLD_LOAD, str(target), str(row), ctx=ctx, side="mlflow")
        for key, value in peer.items():
            name = key if not suffix else key.replace("_s", f"{suffix}_s", 1)
            out[f"{name}@mlflow"] = (value, "s")
    out["speedup_vs_mlflow"] = out["total_s@mlflow"][0] / steward["total_s"]
    out["cold_runs"] = ctx.size(*COLD_RUNS)
    return out


# -- predict latency ---------------------------------------------------------------------------


def _per_call_us(fn: Callable[[], object], calls: int) -> float:
    fn()  # warm: first-call allocations, thread pools
    times = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1_000


def _onnx_session(content: bytes) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        content, sess_options=options, providers=["CPUExecutionProvider"]
    )


def _both_sides(
    model: Any, session: Any, compiled: Any, data: Any, calls: tuple[int, int]
) -> tuple[float, float]:
    """Return (scikit-learn, ONNX) microseconds per call on the same input."""
    names, types = list(compiled.input_names), compiled.input_types
    with warnings.catch_warnings():
        # A bare matrix for a model fitted on a DataFrame: sklearn's feature-name
        # warning is silenced, not avoided (its check still runs).
        warnings.simplefilter("ignore", UserWarning)
        sklearn_us = _per_call_us(lambda: model.predict_proba(data), calls[0])
    onnx_us = _per_call_us(lambda: session.run(None, onnx_inputs(data, names, types)), calls[1])
    return sklearn_us, onnx_us


@benchmark("registry.predict_latency", repeats=3, quick_repeats=1)
def predict_latency(ctx: Context) -> Measurements:
    """Predict 1 and 100 rows: scikit-learn predict_proba against the compiled ONNX graph."""
    model, held_out = hgb_model()
    compiled = compile_to_onnx(model, held_out.iloc[:500])
    if compiled.onnx_bytes is None:
        raise RuntimeError(f"the benchmark model did not compile: {compiled.parity.summary()}")
    session = _onnx_session(compiled.onnx_bytes)
    calls = (ctx.size(*LATENCY_CALLS["sklearn"]), ctx.size(*LATENCY_CALLS["onnx"]))
    out: dict[str, Any] = {}
    for rows in (1, 100):
        frame = held_out.iloc[:rows]
        # The DataFrame the model was fitted on, the same for both sides: the headline;
        # then a bare matrix, as a request decoder would build it.
        sklearn_us, onnx_us = _both_sides(model, session, compiled, frame, calls)
        sklearn_np_us, onnx_np_us = _both_sides(model, session, compiled, frame.to_numpy(), calls)
        out[f"sklearn_{rows}row_us"] = (sklearn_us, "us")
        out[f"onnx_{rows}row_us"] = (onnx_us, "us")
        out[f"onnx_speedup_{rows}row"] = sklearn_us / onnx_us
        out[f"sklearn_{rows}row_numpy_us"] = (sklearn_np_us, "us")
        out[f"onnx_{rows}row_numpy_us"] = (onnx_np_us, "us")
        out[f"onnx_speedup_{rows}row_numpy"] = sklearn_np_us / onnx_np_us
    out["parity_max_abs_diff"] = compiled.parity.max_abs_diff
    return out


@benchmark("registry.predict_loaded", repeats=3, quick_repeats=1)
def predict_loaded(ctx: Context) -> Measurements:
    """LoadedModel.predict_proba, native (sklearn) against onnx, signature checks included."""
    model, held_out = hgb_model()
    service = _register(ctx.tmp / "home", model, held_out.iloc[:500], compile_onnx=True)
    native = service.load("hgb:1", prefer="native")
    onnx = service.load("hgb:1", prefer="onnx")
    if onnx.flavor != "onnx":
        raise RuntimeError("the version has no verified ONNX compilation to load")
    out: dict[str, Any] = {}
    for rows in (1, 100):
        frame = held_out.iloc[:rows]
        native_us = _per_call_us(
            lambda frame=frame: native.predict_proba(frame), ctx.size(*LATENCY_CALLS["sklearn"])
        )
        onnx_us = _per_call_us(
            lambda frame=frame: onnx.predict_proba(frame), ctx.size(*LATENCY_CALLS["onnx"])
        )
        out[f"native_{rows}row_us"] = (native_us, "us")
        out[f"onnx_{rows}row_us"] = (onnx_us, "us")
        out[f"onnx_speedup_{rows}row"] = native_us / onnx_us
    return out


# -- digest verification -----------------------------------------------------------------------


def _write_random(path: Path, size: int) -> None:
    rng = np.random.default_rng(11)
    with path.open("wb") as handle:
        left = size
        while left:
            step = min(left, 64 * 1024 * 1024)
            handle.write(rng.bytes(step))
            left -= step


def _verify(ctx: Context, *, sealed: bool) -> Measurements:
    size = ctx.size(*DIGEST_BYTES)
    keys = KeyRing([os.urandom(32)], source="benchmark") if sealed else None
    store = ContentAddressedStore(LocalBlobBackend(ctx.tmp / "store"), keys=keys, encrypt=sealed)
    source = ctx.tmp / "artifact.bin"
    _write_random(source, size)
    info = store.put(source)
    source.unlink()  # only the stored copy remains
    for _ in store.iter_chunks(info.digest):  # warm the page cache: measure hashing, not disk
        pass
    with ctx.timer() as t:
        read = sum(len(chunk) for chunk in store.iter_chunks(info.digest))
    if read != size:
        raise RuntimeError(f"read {read} bytes of {size}")
    stored = next((ctx.tmp / "store").rglob(info.digest + "*"))
    with ctx.timer() as raw, stored.open("rb") as handle:
        hashlib.file_digest(handle, "sha256")
    return {
        "verify_MB_s": (size / MB / t.seconds, "MB/s"),
        "hashlib_MB_s": (stored.stat().st_size / MB / raw.seconds, "MB/s"),
        "seconds": (t.seconds, "s"),
        "MB": size / MB,
    }


@benchmark("registry.digest_verify", repeats=3, quick_repeats=1)
def digest_verify(ctx: Context) -> Measurements:
    """Stream a 1 GB artifact through the store's digest verification (warm page cache)."""
    return _verify(ctx, sealed=False)


@benchmark("registry.digest_verify.sealed", repeats=3, quick_repeats=1)
def digest_verify_sealed(ctx: Context) -> Measurements:
    """The same for an artifact sealed with AES-256-GCM: authenticate, unseal, then verify."""
    return _verify(ctx, sealed=True)
