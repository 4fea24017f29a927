"""Drift statistics: steward vs Evidently vs a plain scipy loop, and at scale.

- ``quality.drift.evidently``: 100,000 rows x (20 numeric + 5 categorical) reference vs
  current (5 numeric columns shifted by 0.5 std, one categorical with changed
  frequencies); the full drift report with default methods, steward vs Evidently's
  ``DataDriftPreset`` on the same pandas frames, and whether the verdicts agree.
- ``quality.drift.scipy``: the same data with KS (numbers) and chi-square (categories),
  steward vs a per-column ``scipy.stats`` loop; verdicts and statistics compared.
- ``quality.drift.wide``: 1,000,000 x 100 numeric columns (in memory, pyarrow), time
  and peak memory over the two inputs' size, in a fresh process.
- ``quality.drift.huge``: 3,000,000 x 1,000 float32 columns written to Parquet first
  (untimed), then compared from the files; time and peak memory.  Takes minutes;
  ``STEWARD_BENCH_QUALITY_HUGE=ROWSxCOLS`` picks another size.
- ``quality.report.html``: rendering a 1,000-column drift report as HTML.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import stats

from benchmarks._harness import Context, Measurements, PeerUnavailable, benchmark
from steward.quality import DriftDetector, DriftReport

NUMERIC, CATEGORICAL, SHIFTED = 20, 5, 5
_CATEGORY_SIZES = (3, 5, 8, 12, 20)
_HUGE_DEFAULT = (3_000_000, 1_000)

EVIDENTLY_SCRIPT = """
import json, sys, time
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

reference = pd.read_parquet(sys.argv[1])
current = pd.read_parquet(sys.argv[2])
numeric = [c for c in reference.columns if c.startswith("num_")]
categorical = [c for c in reference.columns if c.startswith("cat_")]
start = time.perf_counter()
definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
snapshot = Report([DataDriftPreset()]).run(
    Dataset.from_pandas(current, data_definition=definition),
    Dataset.from_pandas(reference, data_definition=definition),
)
result = snapshot.dict()
seconds = time.perf_counter() - start
columns = {}
for metric in result["metrics"]:
    config = metric["config"]
    if config.get("type", "").endswith("ValueDrift"):
        value, threshold = metric["value"], config["threshold"]
        is_p_value = "p_value" in config["method"]
        drifted = value < threshold if is_p_value else value >= threshold
        columns[config["column"]] = {
            "method": config["method"], "value": float(value), "drifted": bool(drifted)
        }
print(json.dumps({"seconds": seconds, "columns": columns}))
"""


def make_frames(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current frames: 5 of 20 numeric columns shift by 0.5 std, cat_0 reshuffles."""
    rng = np.random.default_rng(seed)
    reference: dict[str, Any] = {}
    current: dict[str, Any] = {}
    for i in range(NUMERIC):
        loc, scale = rng.uniform(-10, 10), rng.uniform(0.5, 5)
        shift = 0.5 * scale if i < SHIFTED else 0.0
        if i % 4 == 3:  # some skewed columns too
            reference[f"num_{i}"] = loc + rng.lognormal(0, 0.5, rows) * scale
            current[f"num_{i}"] = loc + shift + rng.lognormal(0, 0.5, rows) * scale
        else:
            reference[f"num_{i}"] = rng.normal(loc, scale, rows)
            current[f"num_{i}"] = rng.normal(loc + shift, scale, rows)
    for i, size in enumerate(_CATEGORY_SIZES[:CATEGORICAL]):
        labels = np.array([f"c{i}_{k}" for k in range(size)], dtype=object)
        shares = rng.dirichlet(np.ones(size) * 3)
        changed = rng.dirichlet(np.ones(size) * 3) if i == 0 else shares
        reference[f"cat_{i}"] = labels[rng.choice(size, rows, p=shares)]
        current[f"cat_{i}"] = labels[rng.choice(size, rows, p=changed)]
    return pd.DataFrame(reference), pd.DataFrame(current)


def scipy_loop(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """What users write by hand: ks_2samp per numeric column, chi2_contingency per categorical."""
    out: dict[str, tuple[float, float]] = {}
    for column in reference.columns:
        if column.startswith("num_"):
            result = stats.ks_2samp(reference[column].to_numpy(), current[column].to_numpy())
        else:
            counts = pd.concat(
                [reference[column].value_counts(), current[column].value_counts()], axis=1
            ).fillna(0)
            result = stats.chi2_contingency(counts.to_numpy().T)
        out[column] = (float(result.statistic), float(result.pvalue))
    return out


def _verdicts(report: DriftReport) -> dict[str, bool]:
    return {result.column: result.drifted for result in report}


@benchmark("quality.drift.evidently", group="quality", repeats=3, quick_repeats=1)
def drift_vs_evidently(ctx: Context) -> Measurements:
    """100k x (20 num + 5 cat) full drift report, default methods, vs Evidently's preset."""
    rows = ctx.size(100_000, 10_000)
    reference, current = make_frames(rows)
    with ctx.timer() as t:
        report = DriftDetector().fit(reference).score(current)
    profiled = DriftDetector().fit(reference)
    with ctx.timer() as score_only:
        profiled.score(current)
    measurements: dict[str, Any] = {
        "seconds": (t.seconds, "s"),
        "score_seconds": (score_only.seconds, "s"),
        "drifted_columns": (len(report.drifted_columns), "columns"),
    }
    pq.write_table(pa.Table.from_pandas(reference), ctx.tmp / "reference.parquet")
    pq.write_table(pa.Table.from_pandas(current), ctx.tmp / "current.parquet")
    try:
        peer = ctx.run_peer("evidently", EVIDENTLY_SCRIPT, "reference.parquet", "current.parquet")
    except PeerUnavailable:
        return measurements
    theirs = peer["columns"]
    ours = {r.column: r for r in report}
    differing = [c for c in ours if ours[c].drifted != theirs[c]["drifted"]]
    gaps = [abs((ours[c].statistic or 0.0) - theirs[c]["value"]) for c in ours]
    measurements.update(
        {
            "seconds@evidently": (peer["seconds"], "s"),
            "drifted_columns@evidently": (sum(v["drifted"] for v in theirs.values()), "columns"),
            "verdicts_differing": (len(differing), "columns"),
            "max_statistic_gap": max(gaps),
        }
    )
    return measurements


@benchmark("quality.drift.scipy", group="quality", repeats=3, quick_repeats=1)
def drift_vs_scipy(ctx: Context) -> Measurements:
    """100k x (20 num + 5 cat) with KS / chi-square, vs a plain per-column scipy loop."""
    rows = ctx.size(100_000, 10_000)
    reference, current = make_frames(rows)
    detector = DriftDetector(method={"numeric": "ks", "categorical": "chi2"})
    with ctx.timer() as t:
        report = detector.fit(reference).score(current)
    with ctx.timer() as loop:
        expected = scipy_loop(reference, current)
    ours = {r.column: r for r in report}
    differing = [c for c in ours if ours[c].drifted != (expected[c][1] < 0.05)]
    statistic_gap = max(abs((ours[c].statistic or 0.0) - expected[c][0]) for c in ours)
    p_value_gap = max(abs((ours[c].p_value or 0.0) - expected[c][1]) for c in ours)
    return {
        "seconds": (t.seconds, "s"),
        "seconds@scipy_loop": (loop.seconds, "s"),
        "verdicts_differing": (len(differing), "columns"),
        "max_statistic_gap": statistic_gap,
        "max_p_value_gap": p_value_gap,
    }


def wide_in_memory(rows: int, columns: int) -> dict[str, float]:
    """Build two float64 tables, then fit and score; runs in a fresh process (peak RSS)."""
    rng = np.random.default_rng(1)
    reference = pa.table({f"f{i}": rng.normal(size=rows) for i in range(columns)})
    current = pa.table(
        {f"f{i}": rng.normal(0.5 if i % 10 == 0 else 0.0, size=rows) for i in range(columns)}
    )
    start = time.perf_counter()
    report = DriftDetector().fit(reference).score(current)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "input_bytes": float(reference.nbytes + current.nbytes),
        "drifted": float(len(report.drifted_columns)),
    }


@benchmark("quality.drift.wide", group="quality", repeats=1, quick_repeats=1)
def drift_wide(ctx: Context) -> Measurements:
    """1M x 100 numeric columns in memory: fit + score time, peak RSS over the inputs' size."""
    rows, columns = ctx.size(1_000_000, 100_000), ctx.size(100, 20)
    peak = ctx.measure_peak_memory(wide_in_memory, rows, columns)
    inputs = peak.result["input_bytes"]
    return {
        "seconds": (peak.result["seconds"], "s"),
        "peak_mib": (peak.delta_bytes / 2**20, "MiB"),
        "inputs_mib": (inputs / 2**20, "MiB"),
        "peak_over_inputs": (peak.delta_bytes / inputs, "x"),
        "drifted_columns": (peak.result["drifted"], "columns"),
    }


def write_huge(path: Path, rows: int, columns: int, seed: int, shift: float) -> None:
    """Write a float32 Parquet file in row groups of 50,000 rows (bounded memory)."""
    rng = np.random.default_rng(seed)
    names = [f"f{i}" for i in range(columns)]
    schema = pa.schema([(name, pa.float32()) for name in names])
    offsets = np.where(np.arange(columns) % 10 == 0, shift, 0.0).astype(np.float32)
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, 50_000):
            size = min(50_000, rows - start)
            block = rng.standard_normal((size, columns), dtype=np.float32) + offsets
            # Two decimals, as many real features are: Parquet dictionary-encodes them.
            block = np.asfortranarray(np.round(block, 2))
            arrays = [pa.array(block[:, i]) for i in range(columns)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))


def huge_from_parquet(reference: str, current: str) -> dict[str, float]:
    """Fit on one Parquet file and score the other; runs in a fresh process (peak RSS)."""
    start = time.perf_counter()
    detector = DriftDetector().fit(reference)
    fitted = time.perf_counter()
    report = detector.score(current)
    done = time.perf_counter()
    return {
        "fit_seconds": fitted - start,
        "score_seconds": done - fitted,
        "drifted": float(len(report.drifted_columns)),
    }


def _huge_size(ctx: Context) -> tuple[int, int]:
    chosen = os.environ.get("STEWARD_BENCH_QUALITY_HUGE")
    if chosen:
        rows, _, columns = chosen.lower().partition("x")
        return int(rows), int(columns)
    return _HUGE_DEFAULT if not ctx.quick else (30_000, 100)


@benchmark("quality.drift.huge", group="quality", repeats=1, quick_repeats=1)
def drift_huge(ctx: Context) -> Measurements:
    """3M x 1,000 float32 columns from Parquet: fit + score time and peak RSS (takes minutes)."""
    rows, columns = _huge_size(ctx)
    reference, current = ctx.tmp / "reference.parquet", ctx.tmp / "current.parquet"
    with ctx.timer() as written:
        write_huge(reference, rows, columns, seed=1, shift=0.0)
        write_huge(current, rows, columns, seed=2, shift=0.5)
    peak = ctx.measure_peak_memory(huge_from_parquet, str(reference), str(current))
    result = peak.result
    return {
        "seconds": (result["fit_seconds"] + result["score_seconds"], "s"),
        "fit_seconds": (result["fit_seconds"], "s"),
        "score_seconds": (result["score_seconds"], "s"),
        "peak_mib": (peak.delta_bytes / 2**20, "MiB"),
        "float64_size_of_one_input_mib": (rows * columns * 8 / 2**20, "MiB"),
        "parquet_mib": ((reference.stat().st_size + current.stat().st_size) / 2**20, "MiB"),
        "generate_seconds": (written.seconds, "s"),
        "drifted_columns": (result["drifted"], "columns"),
    }


@benchmark("quality.report.html", group="quality", repeats=3, quick_repeats=1)
def report_html(ctx: Context) -> Measurements:
    """Render a 1,000-column drift report (10% drifted) as one HTML page."""
    rows = ctx.size(2_000, 500)
    rng = np.random.default_rng(3)
    reference = {f"f{i}": rng.normal(size=rows) for i in range(1_000)}
    current = {f"f{i}": rng.normal(1.0 if i % 10 == 0 else 0.0, size=rows) for i in range(1_000)}
    report = DriftDetector().fit(reference).score(current)
    with ctx.timer() as t:
        page = report.to_html()
    (ctx.tmp / "drift.html").write_text(page)
    return {"seconds": (t.seconds, "s"), "html_kib": (len(page.encode()) / 1024, "KiB")}
