from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from steward.core import InvalidInputError
from steward.tracking import _dataset_sources as sources
from steward.tracking._dataset_profile import QUANTILES
from steward.tracking._datasets import DatasetDescription, describe_dataset


def describe(source: object, **options: Any) -> DatasetDescription:
    return describe_dataset(source, name="data", role="train", **options)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 2_000
    x = rng.normal(10.0, 3.0, size=n)
    x[::97] = np.nan  # nulls once in Arrow (pandas' NaN)
    return pd.DataFrame(
        {
            "x": x,
            "count": rng.integers(-5, 500, size=n),
            "city": rng.choice(["paris", "lyon", "nice", None], size=n, p=[0.5, 0.3, 0.15, 0.05]),
            "flag": rng.random(n) < 0.3,
            "at": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
            "segment": pd.Categorical(rng.choice(["a", "b", "c"], size=n)),
        }
    )


def column(description: DatasetDescription, name: str) -> dict[str, Any]:
    return description.column(name)


# -- digest ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row_group_size", "compression", "chunk_rows"),
    [(2_000, "snappy", 65_536), (7, "zstd", 13), (333, "none", 1_000), (1_000, "gzip", 17)],
)
def test_digest_same_for_dataframe_table_and_parquet_layouts(
    frame: pd.DataFrame, tmp_path: Path, row_group_size: int, compression: str, chunk_rows: int
) -> None:
    path = tmp_path / "data.parquet"
    frame.to_parquet(path, row_group_size=row_group_size, compression=compression, index=False)
    from_frame = describe(frame).digest
    from_table = describe(pa.Table.from_pandas(frame, preserve_index=False)).digest
    from_file = describe(path, chunk_rows=chunk_rows).digest
    assert from_frame == from_table == from_file
    assert from_frame.startswith("sha256:") and len(from_frame) == len("sha256:") + 64


def test_digest_ignores_physical_encodings() -> None:
    values = ["a", None, "bb", "a", ""]
    numbers = pa.array([1.5, None, float("nan"), -0.0, 2.0])
    reference = describe(pa.table({"s": pa.array(values), "x": numbers})).digest
    variants = [
        pa.table({"s": pa.array(values).dictionary_encode(), "x": numbers}),
        pa.table({"s": pa.array(values, pa.large_string()), "x": numbers}),
        pa.table({"s": pa.array(values, pa.string_view()), "x": numbers}),
        pa.Table.from_batches(
            pa.table({"s": pa.array(values), "x": numbers}).to_batches(max_chunksize=2)
        ),
        pa.table({"s": pa.array(values), "x": numbers}).slice(0, 5),
    ]
    assert [describe(table).digest for table in variants] == [reference] * len(variants)


def test_digest_ignores_pandas_index_and_metadata(frame: pd.DataFrame) -> None:
    shuffled_index = frame.set_index(pd.Index(np.arange(len(frame))[::-1] * 3))
    assert describe(shuffled_index).digest == describe(frame).digest


def test_digest_canonical_nan_and_sliced_nulls() -> None:
    quiet = np.array([np.nan, 1.0])
    payload = np.array([0x7FF8_0000_0000_0ABC, 0x3FF0_0000_0000_0000], dtype=np.uint64).view(
        np.float64
    )
    assert describe(pa.table({"x": quiet})).digest == describe(pa.table({"x": payload})).digest


def _table() -> pa.Table:
    return pa.table({"a": pa.array([1, 2, 3], pa.int64()), "b": pa.array(["x", "y", None])})


@pytest.mark.parametrize(
    "changed",
    [
        pa.table({"a": pa.array([1, 2, 4], pa.int64()), "b": pa.array(["x", "y", None])}),
        pa.table({"a": pa.array([1, 2, 3], pa.int64()), "b": pa.array(["x", "y", ""])}),
        pa.table({"a": pa.array([1, 2, None], pa.int64()), "b": pa.array(["x", "y", None])}),
        pa.table({"a": pa.array([1, 2, 3], pa.int32()), "b": pa.array(["x", "y", None])}),
        pa.table({"b": pa.array(["x", "y", None]), "a": pa.array([1, 2, 3], pa.int64())}),
        pa.table({"A": pa.array([1, 2, 3], pa.int64()), "b": pa.array(["x", "y", None])}),
        pa.table({"a": pa.array([1, 2, 3], pa.int64()), "b": pa.array(["xy", "", None])}),
        pa.table({"a": pa.array([1, 2], pa.int64()), "b": pa.array(["x", "y"])}),
    ],
    ids=[
        "value",
        "null-to-empty",
        "value-to-null",
        "int32",
        "column-order",
        "name",
        "string-split",
        "row-removed",
    ],
)
def test_digest_changes_with_any_value_type_name_or_order(changed: pa.Table) -> None:
    assert describe(changed).digest != describe(_table()).digest


def test_digest_tells_nan_from_null() -> None:
    with_nan = pa.table({"x": pa.array([1.0, float("nan")])})
    with_null = pa.table({"x": pa.array([1.0, None])})
    assert describe(with_nan).digest != describe(with_null).digest


def test_digest_of_nested_columns_is_layout_independent(tmp_path: Path) -> None:
    table = pa.table(
        {
            "tags": pa.array([[1, 2], None, [], [3]]),
            "point": pa.array(
                [{"a": 1, "b": "x"}, None, {"a": None, "b": "y"}, {"a": 4, "b": None}]
            ),
            "attrs": pa.array(
                [[("k", 1)], None, [], [("j", 2), ("k", 3)]], type=pa.map_(pa.string(), pa.int64())
            ),
        }
    )
    pq.write_table(table, tmp_path / "nested.parquet", row_group_size=1)
    one_shot = describe(table)
    assert describe(table, chunk_rows=1).digest == one_shot.digest
    assert describe(tmp_path / "nested.parquet").digest == one_shot.digest
    moved = table.set_column(0, "tags", pa.array([[1], None, [2], [3]]))  # same values, new split
    assert describe(moved).digest != one_shot.digest
    assert [c["kind"] for c in one_shot.profile["columns"]] == ["other"] * 3


def test_digest_same_from_csv_file_and_arrow_stream(tmp_path: Path, frame: pd.DataFrame) -> None:
    path = tmp_path / "data.csv"
    frame.drop(columns=["at", "segment"]).to_csv(path, index=False)
    table = pa_csv.read_csv(path)

    class Stream:  # any object exporting the Arrow C stream interface (polars, DuckDB)
        def __arrow_c_stream__(self, requested_schema: object = None) -> object:
            return table.__arrow_c_stream__(requested_schema)

    from_csv = describe(path, chunk_rows=100)
    assert from_csv.digest == describe(table).digest == describe(Stream()).digest
    assert from_csv.source_uri == path.resolve().as_uri()
    assert describe(Stream()).source_uri == "memory://arrow-stream"


def test_digest_of_parquet_folder_includes_hive_partitions(tmp_path: Path) -> None:
    for day in ("2024-01-01", "2024-01-02"):
        folder = tmp_path / "events" / f"day={day}"
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"x": [1.0, 2.0]}), folder / "part-0.parquet")
    (tmp_path / "events" / "_SUCCESS").write_text("")
    description = describe(tmp_path / "events")
    assert description.num_rows == 4
    assert [c.name for c in description.schema] == ["x", "day"]
    assert describe(tmp_path / "events", chunk_rows=1).digest == description.digest


# -- profile -----------------------------------------------------------------------------------


def test_numeric_profile_matches_numpy(frame: pd.DataFrame) -> None:
    profile = column(describe(frame), "x")
    values = frame["x"].dropna().to_numpy()
    assert profile["kind"] == "numeric" and profile["dtype"] == "double"
    assert profile["null_count"] == frame["x"].isna().sum()
    assert profile["null_fraction"] == pytest.approx(frame["x"].isna().mean())
    assert profile["count"] == values.size
    assert profile["min"] == values.min() and profile["max"] == values.max()
    assert profile["mean"] == pytest.approx(values.mean(), rel=1e-12)
    assert profile["std"] == pytest.approx(values.std(), rel=1e-12)
    assert profile["quantiles_exact"] is True
    expected = np.quantile(values, list(QUANTILES.values()))
    assert list(profile["quantiles"].values()) == pytest.approx(expected, rel=1e-12)
    assert profile["distinct_count"] == np.unique(values).size and profile["distinct_exact"]
    edges, counts = profile["histogram"]["edges"], profile["histogram"]["counts"]
    assert len(counts) <= 20 and edges[0] == values.min() and edges[-1] == values.max()
    assert counts == np.histogram(values, bins=edges)[0].tolist()  # [e_i, e_i+1), last closed
    assert profile["sample"] == sorted(profile["sample"])
    assert len(profile["sample"]) == 1_000 and set(profile["sample"]) <= set(values.tolist())
    assert profile["value_counts"] is None  # continuous


def test_integer_profile_keeps_exact_bounds_and_value_counts(frame: pd.DataFrame) -> None:
    profile = column(describe(frame), "count")
    values = frame["count"].to_numpy()
    assert (profile["min"], profile["max"]) == (int(values.min()), int(values.max()))
    assert isinstance(profile["min"], int)
    uniques, counts = np.unique(values, return_counts=True)
    assert profile["value_counts"] == {"values": uniques.tolist(), "counts": counts.tolist()}
    assert profile["quantiles"]["p50"] == float(np.median(values))


def test_float_profile_counts_nan_and_infinities_apart() -> None:
    table = pa.table({"x": pa.array([1.0, float("nan"), float("inf"), -float("inf"), None, 3.0])})
    profile = column(describe(table), "x")
    assert (profile["null_count"], profile["nan_count"], profile["inf_count"]) == (1, 1, 2)
    assert (profile["count"], profile["min"], profile["max"], profile["mean"]) == (5, 1.0, 3.0, 2.0)
    edges = profile["histogram"]["edges"]
    assert profile["histogram"]["counts"] == np.histogram([1.0, 3.0], bins=edges)[0].tolist()
    assert profile["distinct_count"] == 5  # 1, 3, NaN, +inf, -inf


def test_categorical_profile_matches_pandas(frame: pd.DataFrame) -> None:
    description = describe(frame, top_k=2)
    city = column(description, "city")
    counts = frame["city"].value_counts()
    assert city["kind"] == "string"
    assert city["null_count"] == frame["city"].isna().sum()
    assert city["distinct_count"] == frame["city"].nunique() and city["distinct_exact"]
    assert [(t["value"], t["count"]) for t in city["top_values"]] == list(counts.items())[:2]
    assert city["top_values"][0]["fraction"] == pytest.approx(counts.iloc[0] / counts.sum())
    flag = column(description, "flag")
    assert flag["kind"] == "boolean"
    assert {t["value"]: t["count"] for t in flag["top_values"]} == frame[
        "flag"
    ].value_counts().to_dict()
    segment = column(description, "segment")  # a pandas categorical: dictionary-encoded
    assert segment["kind"] == "string" and segment["dtype"].startswith("dictionary<")
    expected = (
        frame["segment"].value_counts().sort_index().sort_values(ascending=False, kind="stable")
    )
    assert [(t["value"], t["count"]) for t in segment["top_values"]] == list(expected.items())[:2]


def test_temporal_profile_has_iso_bounds(frame: pd.DataFrame) -> None:
    at = column(describe(frame), "at")
    assert at["kind"] == "temporal"
    assert at["min"].startswith("2024-01-01T00:00:00") and at["min"].endswith("Z")
    assert at["max"].startswith(frame["at"].max().strftime("%Y-%m-%dT%H:%M:%S"))
    assert at["distinct_count"] == len(frame)


def test_chunked_profile_equals_one_shot() -> None:
    rng = np.random.default_rng(3)
    n = 40_000  # more distinct values than the exact distinct limit; sampled quantiles
    x = rng.standard_t(3, size=n)
    x[rng.random(n) < 0.02] = np.nan
    table = pa.table(
        {
            "x": pa.array(x, from_pandas=True),
            "k": rng.integers(0, 50, size=n),
            "s": rng.choice(["u", "v", "w"], size=n),
            "id": pa.array([f"row{i}" for i in range(n)]).cast(pa.large_string()),
        }
    )
    options: dict[str, Any] = {"quantile_sample_size": 500, "sample_size": 100}
    one_shot = describe(table, **options)
    for chunk_rows in (997, 4_096):
        chunked = describe(table, chunk_rows=chunk_rows, **options)
        assert chunked.digest == one_shot.digest
        for a, b in zip(chunked.profile["columns"], one_shot.profile["columns"], strict=True):
            # Moments agree to rounding; top values past 10,000 distinct (Misra-Gries) depend on
            # the batching, as documented.
            moments = ("mean", "std")
            skipped = (*moments, "top_values") if a["name"] == "id" else moments
            assert {k: v for k, v in a.items() if k not in skipped} == {
                k: v for k, v in b.items() if k not in skipped
            }
            for key in set(moments) & set(a):
                assert a[key] == pytest.approx(b[key], rel=1e-12)
    assert column(one_shot, "x")["quantiles_exact"] is False
    assert column(one_shot, "id")["distinct_exact"] is False
    assert column(one_shot, "id")["top_values_exact"] is False


def test_sampled_quantiles_stay_close_to_exact() -> None:
    rng = np.random.default_rng(11)
    values = rng.lognormal(0.0, 1.0, size=200_000)
    profile = column(describe(pa.table({"v": values}), quantile_sample_size=5_000), "v")
    assert profile["quantiles_exact"] is False
    exact = np.quantile(values, list(QUANTILES.values()))
    for (key, estimate), truth, p in zip(
        profile["quantiles"].items(), exact, QUANTILES.values(), strict=True
    ):
        rank = np.searchsorted(np.sort(values), estimate) / values.size
        assert abs(rank - p) < 0.01, (key, estimate, truth)


def test_distinct_count_is_estimated_beyond_the_exact_limit() -> None:
    values = np.arange(100_000) % 60_000
    profile = column(describe(pa.table({"v": values}), chunk_rows=8_192), "v")
    assert profile["distinct_exact"] is False
    assert profile["distinct_count"] == pytest.approx(60_000, rel=0.04)


def test_empty_table_gives_a_defined_description() -> None:
    table = pa.table({"x": pa.array([], pa.float64()), "s": pa.array([], pa.string())})
    description = describe(table)
    assert (description.num_rows, description.num_columns) == (0, 2)
    x, s = description.profile["columns"]
    assert (x["count"], x["null_fraction"], x["mean"], x["quantiles"]["p50"]) == (
        0,
        None,
        None,
        None,
    )
    assert x["histogram"] == {"edges": [], "counts": []} and x["sample"] == []
    assert s["top_values"] == [] and s["distinct_count"] == 0
    assert (
        description.digest
        != describe(table.cast(pa.schema([("x", pa.int64()), ("s", pa.string())]))).digest
    )
    json.dumps(description.as_dict(), allow_nan=False)


def test_constant_column_has_one_point_bin() -> None:
    profile = column(describe(pa.table({"x": [4.5] * 10})), "x")
    assert profile["histogram"] == {"edges": [4.5, 4.5], "counts": [10]}
    assert profile["std"] == 0.0 and profile["quantiles"]["p99"] == 4.5


# -- the description ---------------------------------------------------------------------------


def test_description_round_trips_through_json(frame: pd.DataFrame) -> None:
    description = describe(frame)
    text = json.dumps(description.as_dict(), allow_nan=False)
    assert DatasetDescription.from_dict(json.loads(text)) == description
    assert description.source_uri == "memory://dataframe"
    assert description.num_rows == len(frame) and description.num_columns == frame.shape[1]
    assert [c.name for c in description.schema] == list(frame.columns)
    assert description.schema[0].as_dict() == {"name": "x", "dtype": "double", "nullable": True}
    assert (
        describe(frame, source_uri="s3://bucket/data.parquet").source_uri
        == "s3://bucket/data.parquet"
    )


def test_from_dict_refuses_malformed_descriptions() -> None:
    with pytest.raises(InvalidInputError, match="not a dataset description"):
        DatasetDescription.from_dict({"digest": "sha256:00"})
    good = describe(_table()).as_dict()
    with pytest.raises(InvalidInputError, match="md5:00"):
        DatasetDescription.from_dict({**good, "digest": "md5:00"})


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "dataset name ''"),
        ({"name": "has space"}, "'has space'"),
        ({"name": "trailing\n"}, "'trailing\\\\n'"),
        ({"name": "x" * 201}, "must be 1-200"),
        ({"role": "Train"}, "dataset role 'Train'"),
        ({"role": "hold-out"}, "'hold-out'"),
        ({"chunk_rows": 0}, "chunk_rows must be an int >= 1; got 0"),
        ({"top_k": -1}, "top_k"),
        ({"histogram_bins": True}, "histogram_bins"),
        ({"sample_size": 10, "quantile_sample_size": 5}, "sample_size \\(10\\) cannot exceed"),
    ],
)
def test_describe_dataset_refuses_bad_options(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"name": "data", "role": "train", **kwargs}
    with pytest.raises(InvalidInputError, match=message):
        describe_dataset(_table(), **arguments)


def test_describe_dataset_refuses_unsupported_sources(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="cannot describe a list"):
        describe([1, 2, 3])
    with pytest.raises(InvalidInputError, match="no file or folder at"):
        describe(tmp_path / "missing.parquet")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InvalidInputError, match="neither Parquet nor CSV"):
        describe(tmp_path / "notes.txt")


def test_describe_dataset_refuses_corrupt_parquet(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"this is not parquet at all")
    with pytest.raises(InvalidInputError, match=r"garbage\.parquet"):
        describe(garbage)
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"x": np.arange(10_000.0)}), good)
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InvalidInputError, match=r"truncated\.parquet"):
        describe(truncated)


def test_describe_dataset_refuses_bad_tables() -> None:
    with pytest.raises(InvalidInputError, match="no columns"):
        describe(pa.table({}))
    duplicated = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"])
    with pytest.raises(InvalidInputError, match="two columns named 'a'"):
        describe(duplicated)
    intervals = pa.table(
        {"gap": pa.array([pa.MonthDayNano([1, 2, 3])], pa.month_day_nano_interval())}
    )
    with pytest.raises(InvalidInputError, match="column 'gap' has type month_day_nano_interval"):
        describe(intervals)
    mixed = pd.DataFrame({"m": [1, "x"]})
    with pytest.raises(InvalidInputError, match="DataFrame"):
        describe(mixed)


def test_describe_dataset_refuses_a_csv_whose_types_change_midway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "_CSV_BLOCK", 1 << 16)  # types are inferred from block one
    path = tmp_path / "drift.csv"
    path.write_text("\n".join(["n"] + ["1"] * 100_000 + ["oops"]))
    with pytest.raises(InvalidInputError, match=r"drift\.csv"):
        describe(path)


# -- memory ----------------------------------------------------------------------------------

_MEMORY_PROBE = textwrap.dedent(
    """
    import json, sys, threading, time
    import pyarrow as pa
    from steward.tracking._datasets import describe_dataset

    def rss():
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * 4096

    def measure(path):
        start, peak, done = rss(), [0], threading.Event()
        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], rss())
                time.sleep(0.01)
        sampler = threading.Thread(target=sample)
        sampler.start()
        d = describe_dataset(path, name="big", role="train", chunk_rows=20_000,
                             quantile_sample_size=10_000)
        done.set()
        sampler.join()
        return {"rows": d.num_rows, "pool_max": pa.default_memory_pool().max_memory(),
                "rss_growth": max(peak[0], rss()) - start}

    describe_dataset(pa.table({"x": [1.0], "s": ["a"]}), name="warm", role="train")
    print(json.dumps([measure(path) for path in sys.argv[1:]]))
    """
)


def _write_rows(path: Path, n: int) -> int:
    rng = np.random.default_rng(5)
    table = pa.table(
        {
            "a": rng.normal(size=n),
            "b": rng.integers(0, 1_000_000, size=n),
            "c": pa.array(rng.normal(size=n), mask=rng.random(n) < 0.1),
            "d": pa.array(np.array(["red", "green", "blue"])[rng.integers(0, 3, size=n)]),
        }
    )
    pq.write_table(table, path, row_group_size=100_000)
    return int(table.nbytes)


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/statm")
def test_describe_dataset_streams_in_bounded_memory(tmp_path: Path) -> None:
    _write_rows(tmp_path / "small.parquet", 250_000)
    size = _write_rows(tmp_path / "big.parquet", 1_000_000)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _MEMORY_PROBE,
            str(tmp_path / "small.parquet"),
            str(tmp_path / "big.parquet"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    small, big = json.loads(done.stdout.strip().splitlines()[-1])
    assert (small["rows"], big["rows"]) == (250_000, 1_000_000)
    # Four times the rows, not more memory: Arrow's high-water mark stays where the small file
    # left it, and stays well below the 1M-row table's size (32 MB in memory).  Loading the
    # table would take at least its size in RSS; fixed costs (allocator arenas, per-column
    # sketches) keep the process's growth from being much smaller than that at this scale.
    assert big["pool_max"] <= 1.25 * small["pool_max"] + (2 << 20), (small, big)
    assert big["pool_max"] < 0.5 * size, (big, size)
    assert big["rss_growth"] < size, (big, size)
