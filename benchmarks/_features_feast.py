"""The Feast side of bench_features.py; runs in the Feast peer's venv, never in steward's.

Usage: ``python _features_feast.py COMMAND SPEC_JSON`` (the working directory is the
benchmark's temporary folder).  Prints one JSON object on its last stdout line.

Feast is set up as its docs suggest for a laptop: ``provider: local``, the ``file``
offline store (Dask over Parquet) and the ``sqlite`` online store, definitions
applied with ``FeatureStore.apply`` (not timed).  Peak memory is the process's peak
RSS above what it held just before the timed work (``/proc/self/status`` VmHWM reset
through ``clear_refs``, as steward's harness does; ``getrusage`` elsewhere).

Commands:

- ``historical``: ``get_historical_features(entity_df, features).to_arrow()``; the
  result goes to ``spec["out"]`` (Parquet) for comparison.
- ``online``: ``materialize(start, end, feature_views=[view])`` into SQLite for each
  job of ``spec["materialize"]`` (each timed), then, when ``spec["calls_1"]`` is set,
  ``get_online_features(...).to_dict()`` of one view's features with 1 and 100
  entities per call (p50/p99 over many calls) and the values served for a few entities.
"""

from __future__ import annotations

import json
import random
import resource
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
from feast.repo_config import RepoConfig
from feast.types import Float64

_STATUS = Path("/proc/self/status")


def _status_bytes(key: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class PeakRss:
    """Peak RSS of the block above the RSS at its start."""

    def __enter__(self) -> PeakRss:
        self.proc = _status_bytes("VmHWM") is not None
        if self.proc:
            try:
                Path("/proc/self/clear_refs").write_text("5")
                self.baseline = _status_bytes("VmRSS") or 0
            except OSError:
                self.baseline = _status_bytes("VmHWM") or 0
        else:
            self.baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc:
            self.peak = _status_bytes("VmHWM") or 0
        else:
            self.peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.delta = max(0, self.peak - self.baseline)


def make_store(repo: Path) -> FeatureStore:
    repo.mkdir(parents=True, exist_ok=True)
    config = RepoConfig(
        project="bench",
        provider="local",
        registry=str(repo / "registry.db"),
        offline_store={"type": "file"},
        online_store={"type": "sqlite", "path": str(repo / "online.db")},
        entity_key_serialization_version=3,
    )
    return FeatureStore(config=config)


def define(spec: dict[str, Any]) -> tuple[Entity, list[FeatureView]]:
    """Build an entity and the views of ``spec["views"]``: {name: {path, features, ttl_days}}."""
    entity = Entity(name="customer", join_keys=[spec["key"]], value_type=ValueType.INT64)
    views = []
    for name, view in spec["views"].items():
        source = FileSource(
            name=f"{name}_source", path=view["path"], timestamp_field=spec["timestamp"]
        )
        views.append(
            FeatureView(
                name=name,
                entities=[entity],
                ttl=timedelta(days=view["ttl_days"]),
                schema=[Field(name=f, dtype=Float64) for f in view["features"]],
                source=source,
                online=True,
            )
        )
    return entity, views


def refs(spec: dict[str, Any]) -> list[str]:
    return [f"{name}:{f}" for name, view in spec["views"].items() for f in view["features"]]


def historical(spec: dict[str, Any]) -> dict[str, Any]:
    store = make_store(Path(spec["repo"]))
    entity, views = define(spec)
    store.apply([entity, *views])
    entity_df = pq.read_table(spec["entities"]).to_pandas()
    features = refs(spec)
    with PeakRss() as rss:
        start = time.perf_counter()
        table = store.get_historical_features(entity_df=entity_df, features=features).to_arrow()
        seconds = time.perf_counter() - start
    pq.write_table(table, spec["out"])
    return {
        "seconds": seconds,
        "peak_bytes": rss.delta,
        "rows": table.num_rows,
        "columns": table.num_columns,
    }


def _percentiles(times: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    return statistics.median(times) * 1000, cuts[98] * 1000


def online(spec: dict[str, Any]) -> dict[str, Any]:
    store = make_store(Path(spec["repo"]))
    entity, views = define(spec)
    store.apply([entity, *views])
    out: dict[str, Any] = {}
    for job in spec["materialize"]:  # {view, start, end, label}
        with PeakRss() as rss:
            start = time.perf_counter()
            store.materialize(
                start_date=datetime.fromisoformat(job["start"]),
                end_date=datetime.fromisoformat(job["end"]),
                feature_views=[job["view"]],
            )
            out[f"materialize_seconds_{job['label']}"] = time.perf_counter() - start
        out[f"materialize_peak_bytes_{job['label']}"] = rss.delta
    if not spec.get("calls_1"):
        return out
    view, key = spec["online_view"], spec["key"]
    features = [f"{view}:{f}" for f in spec["views"][view]["features"]]
    rng = random.Random(5)
    entities = spec["entities"]
    for batch, calls in ((1, spec["calls_1"]), (100, spec["calls_100"])):
        rows = [[{key: rng.randrange(entities)} for _ in range(batch)] for _ in range(calls)]
        for row in rows[:20]:  # warm
            store.get_online_features(features=features, entity_rows=row).to_dict()
        times, cpu = [], []
        for row in rows:
            t0, c0 = time.perf_counter(), time.thread_time()
            store.get_online_features(features=features, entity_rows=row).to_dict()
            times.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
        out[f"p50_ms_{batch}"], out[f"p99_ms_{batch}"] = _percentiles(times)
        out[f"p99_cpu_ms_{batch}"] = _percentiles(cpu)[1]
    # The values Feast serves for a few entities, compared with steward's.
    probe = [{key: k} for k in spec["probe"]]
    result = store.get_online_features(features=features, entity_rows=probe).to_dict()
    out["probe"] = {name: result[name] for name in [key, *spec["views"][view]["features"]]}
    return out


def main() -> None:
    command, spec = sys.argv[1], json.loads(sys.argv[2])
    commands = {"historical": historical, "online": online}
    if command not in commands:
        raise SystemExit(f"unknown command {command!r}; known: {sorted(commands)}")
    result = commands[command](spec)
    result["feast_version"] = __import__("feast").__version__
    result["pandas_version"] = pd.__version__
    result["pyarrow_version"] = pa.__version__
    print(json.dumps(result))


if __name__ == "__main__":
    main()
