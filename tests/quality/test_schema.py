from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from steward.core import InvalidInputError
from steward.quality import ColumnSchema, DataQualityError, Schema, SchemaChange
from steward.quality._schema_types import type_change, type_kind


@pytest.fixture
def good() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 1_000
    income = rng.lognormal(10, 1, size=n)
    income[::100] = np.nan
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "age": rng.integers(18, 91, size=n),
            "income": income,
            "plan": rng.choice(["basic", "plus", "pro"], size=n),
            "active": rng.random(size=n) < 0.5,
        }
    )


def test_schema_infer_records_types_ranges_nulls_categories_and_uniqueness(
    good: pd.DataFrame,
) -> None:
    schema = Schema.infer(good, key=["id"], range_margin=0.1)
    assert schema.names == ("id", "age", "income", "plan", "active")
    assert schema.key == ("id",)
    age = schema["age"]
    assert (age.type, age.kind, age.nullable, age.unique) == ("int64", "integer", False, False)
    assert age.minimum == np.floor(18 - 0.1 * 72)
    assert age.maximum == np.ceil(90 + 0.1 * 72)
    income = schema["income"]
    assert income.nullable
    assert income.max_null_rate == pytest.approx(0.01 + 0.05)
    assert schema["plan"].categories == ("basic", "plus", "pro")
    assert schema["active"].categories == (False, True)
    assert schema["id"].unique
    assert schema["income"].categories is None


def test_schema_validate_clean_data_is_ok(good: pd.DataFrame) -> None:
    report = Schema.infer(good, key=["id"]).validate(good)
    assert report.ok
    assert report.issues == ()
    assert report.rows == len(good)


def test_schema_validate_finds_every_kind_of_issue(good: pd.DataFrame) -> None:
    schema = Schema.infer(good, key=["id"])
    bad = good.drop(columns=["active"]).assign(extra=1)
    bad.loc[0:2, "age"] = 500
    bad.loc[5:60, "plan"] = "enterprise"
    bad.loc[7, "id"] = 8
    bad.loc[0:400, "income"] = np.nan
    report = schema.validate(bad)
    by_check = {issue.check: issue for issue in report.issues}
    assert set(by_check) == {
        "missing_column",
        "extra_column",
        "out_of_range",
        "unseen_category",
        "nulls",
        "duplicate_values",
        "duplicate_key",
    }
    assert by_check["missing_column"].severity == "error"
    assert by_check["extra_column"].severity == "warning"
    out_of_range = by_check["out_of_range"]
    assert (out_of_range.count, out_of_range.examples) == (3, (500, 500, 500))
    assert out_of_range.severity == "warning"
    unseen = by_check["unseen_category"]
    assert unseen.count == 56
    assert unseen.examples == ("enterprise",)
    assert unseen.severity == "error"
    assert by_check["nulls"].severity == "warning"
    assert by_check["duplicate_key"].count == 1
    assert by_check["duplicate_key"].examples == (8,)
    assert not report.ok
    assert [i.severity for i in report.issues] == sorted(
        (i.severity for i in report.issues), key=lambda s: s != "error"
    )


def test_schema_validate_raise_on_error_carries_the_report(good: pd.DataFrame) -> None:
    schema = Schema.infer(good)
    with pytest.raises(DataQualityError, match="1 error") as caught:
        schema.validate(good.drop(columns=["plan"]), raise_on_error=True)
    assert caught.value.report.errors[0].check == "missing_column"
    warned = good.assign(extra=1)
    assert schema.validate(warned, raise_on_error=True).warnings


def test_data_quality_error_survives_pickling(good: pd.DataFrame) -> None:
    import pickle

    schema = Schema.infer(good)
    with pytest.raises(DataQualityError) as caught:
        schema.validate(good.drop(columns=["plan", "age"]), raise_on_error=True)
    restored = pickle.loads(pickle.dumps(caught.value))
    assert str(restored) == str(caught.value)
    assert restored.report == caught.value.report


def test_schema_validate_nulls_in_non_nullable_column_are_errors(good: pd.DataFrame) -> None:
    schema = Schema.infer(good)
    table = pa.Table.from_pandas(good, preserve_index=False)
    ages = pa.array([None, *good.age.tolist()[1:]], type=pa.int64())
    table = table.set_column(1, "age", ages)
    issue = schema.validate(table).errors[0]
    assert (issue.check, issue.column, issue.count) == ("nulls", "age", 1)


def test_schema_validate_type_changes(good: pd.DataFrame) -> None:
    schema = Schema.infer(good)
    widened = good.assign(age=good.age.astype("float64"))
    issue = schema.validate(widened).issues[0]
    assert (issue.check, issue.severity) == ("type", "warning")
    assert "expected int64, got double (widened)" in issue.message
    changed = good.assign(age=good.age.astype(str))
    assert schema.validate(changed).errors[0].check == "type"


def test_schema_validate_multi_column_key(good: pd.DataFrame) -> None:
    data = good.assign(day=np.arange(len(good)) % 2, id=np.arange(len(good)) // 2)
    schema = Schema.infer(data, key=["id", "day"])
    assert schema.validate(data).ok
    data.loc[1, "day"] = 0
    issue = schema.validate(data).errors[0]
    assert (issue.check, issue.column, issue.examples) == ("duplicate_key", None, ((0, 0),))


def test_schema_validate_strict_extra_columns_and_error_shares(good: pd.DataFrame) -> None:
    schema = Schema.infer(good)
    report = schema.validate(good.assign(extra=1), allow_extra_columns=False)
    assert report.errors[0].check == "extra_column"
    bad = good.copy()
    bad.loc[0, "age"] = 1_000
    assert schema.validate(bad, out_of_range_error_share=0.0).errors[0].check == "out_of_range"


def test_schema_reads_parquet_column_by_column(tmp_path: Path, good: pd.DataFrame) -> None:
    path = tmp_path / "good.parquet"
    pq.write_table(pa.Table.from_pandas(good, preserve_index=False), path, row_group_size=128)
    from_parquet = Schema.infer(path, key=["id"], memory_budget=1)
    from_pandas = Schema.infer(good, key=["id"])
    assert from_parquet == from_pandas
    assert from_parquet.validate(path, memory_budget=1).ok


def test_schema_json_round_trip_and_fingerprint(tmp_path: Path, good: pd.DataFrame) -> None:
    schema = Schema.infer(good, key=["id"])
    assert Schema.from_json(schema.to_json()) == schema
    schema.save(tmp_path / "schema.json")
    loaded = Schema.load(tmp_path / "schema.json")
    assert loaded == schema
    assert loaded.fingerprint == schema.fingerprint
    assert len(schema.fingerprint) == 64
    assert json.loads(schema.to_json())["format"] == "steward.schema/1"
    other = Schema.infer(good.assign(age=good.age + 1), key=["id"])
    assert other.fingerprint != schema.fingerprint


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"format": "other/1"}, "not a steward.schema/1"),
        ({"format": "steward.schema/1"}, "no 'columns' list"),
        ({"format": "steward.schema/1", "columns": [{"type": "int64"}]}, "malformed column"),
        ([], "not a steward.schema/1"),
    ],
)
def test_schema_from_dict_rejects_malformed_documents(document: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Schema.from_dict(document)  # type: ignore[arg-type]


def test_schema_rejects_bad_definitions() -> None:
    with pytest.raises(InvalidInputError, match="duplicate column names"):
        Schema((ColumnSchema("a", "int64"), ColumnSchema("a", "double")))
    with pytest.raises(InvalidInputError, match="key names unknown"):
        Schema((ColumnSchema("a", "int64"),), key=("b",))
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        Schema.from_json("{")
    with pytest.raises(InvalidInputError, match="no schema file"):
        Schema.load("/nonexistent/schema.json")
    with pytest.raises(InvalidInputError, match="range_margin"):
        Schema.infer({"a": [1]}, range_margin=-1)
    with pytest.raises(InvalidInputError, match=r"no column\(s\) \['b'\]"):
        Schema.infer({"a": [1]}, key=["b"])


def test_schema_diff_classifies_changes(good: pd.DataFrame) -> None:
    old = Schema.infer(good, key=["id"])
    new_data = good.drop(columns=["active"]).assign(
        age=good.age.astype("int32"),
        income=good.income.fillna(0.0),
        plan=good.plan.where(good.index > 5, "enterprise"),
        region="north",
    )
    new = Schema.infer(new_data, key=["id"])
    diff = old.diff(new)
    changes = {(c.column, c.change) for c in diff.changes}
    assert ("active", "removed") in changes
    assert ("region", "added") in changes
    assert ("age", "narrowed") in changes
    assert ("income", "not_nullable") in changes
    assert ("plan", "categories_added") in changes
    assert diff.breaking
    breaking = {c.change for c in diff.changes if c.breaking}
    assert breaking == {"removed", "narrowed", "categories_added"}
    assert old.diff(old).changes == ()
    assert not old.diff(old)
    assert old.diff(old).summary() == "schemas are identical"


def test_schema_diff_widening_is_compatible() -> None:
    old = Schema((ColumnSchema("a", "int32", nullable=True, minimum=0, maximum=10),))
    new = Schema((ColumnSchema("a", "int64", nullable=False, minimum=-5, maximum=20),), ("a",))
    diff = old.diff(new)
    assert [(c.change, c.breaking) for c in diff.changes] == [
        ("widened", False),
        ("not_nullable", False),
        ("range_widened", False),
        ("key_changed", True),
    ]
    assert diff.to_dict()["changes"][0]["message"] == "column 'a': widened (int32 → int64)"
    assert SchemaChange("a", "nullable").breaking


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ("int64", "int64", "same"),
        ("string", "large_string", "same"),
        ("dictionary<values=string, indices=int32, ordered=0>", "string", "same"),
        ("int8", "int64", "widened"),
        ("uint8", "int16", "widened"),
        ("uint32", "int32", "narrowed"),
        ("int32", "uint64", "narrowed"),
        ("int64", "double", "widened"),
        ("float", "double", "widened"),
        ("double", "float", "narrowed"),
        ("double", "int64", "narrowed"),
        ("null", "string", "widened"),
        ("timestamp[ns]", "timestamp[us]", "widened"),
        ("timestamp[ns, tz=UTC]", "timestamp[ns]", "changed"),
        ("string", "int64", "changed"),
        ("bool", "int8", "changed"),
    ],
)
def test_type_change_rules(before: str, after: str, expected: str) -> None:
    assert type_change(before, after) == expected


def test_type_kind_families() -> None:
    assert [
        type_kind(t) for t in ("uint16", "halffloat", "bool", "date32[day]", "decimal128(10, 2)")
    ] == [
        "integer",
        "float",
        "boolean",
        "temporal",
        "decimal",
    ]
    assert type_kind("list<item: int64>") == "other"
