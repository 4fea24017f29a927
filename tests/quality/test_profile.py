from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from steward.core import InvalidInputError
from steward.quality import (
    CategoricalProfile,
    NumericProfile,
    ProfileSettings,
    ReferenceProfile,
)


@pytest.fixture(scope="module")
def data() -> dict[str, object]:
    rng = np.random.default_rng(4)
    big = rng.normal(size=30_000)
    big[:100] = np.nan
    return {
        "big": big,
        "small": rng.integers(0, 4, size=30_000).astype(float),
        "cat": rng.choice(["a", "b", "c", "d", "e"], size=30_000).tolist(),
        "empty": [None] * 30_000,
    }


def test_profile_keeps_exact_sample_up_to_the_limit(data: dict[str, object]) -> None:
    profile = ReferenceProfile.build(data, settings=ProfileSettings(exact_limit=50_000))
    big = profile.columns["big"]
    assert isinstance(big, NumericProfile)
    assert big.exact
    assert big.sample is not None
    assert big.sample.values.size == 29_900
    assert (big.count, big.missing, big.rows) == (29_900, 100, 30_000)
    assert big.ks_error == 0.0
    assert big.categories is None
    assert big.bin_counts.sum() == big.count
    assert big.bin_counts[0] == big.bin_counts[-1] == 0


def test_profile_sketches_above_the_limit(data: dict[str, object]) -> None:
    settings = ProfileSettings(exact_limit=10_000, sketch_size=1_000)
    big = ReferenceProfile.build(data, settings=settings).columns["big"]
    assert isinstance(big, NumericProfile)
    assert not big.exact
    assert big.sample is not None
    assert big.sample.values.size == 1_000
    assert 0 < big.ks_error < 0.0015
    assert big.wasserstein_error > 0


def test_profile_discrete_numbers_keep_value_counts(data: dict[str, object]) -> None:
    small = ReferenceProfile.build(data).columns["small"]
    assert isinstance(small, NumericProfile)
    assert small.categories == (0.0, 1.0, 2.0, 3.0)
    assert small.category_counts is not None
    assert small.category_counts.sum() == 30_000
    assert small.n_distinct == 4


def test_profile_categories_most_frequent_first_with_other(data: dict[str, object]) -> None:
    cat = ReferenceProfile.build(data, settings=ProfileSettings(max_categories=3)).columns["cat"]
    assert isinstance(cat, CategoricalProfile)
    assert len(cat.categories) == 3
    assert cat.other == 30_000 - int(cat.counts.sum())
    assert list(cat.counts) == sorted(cat.counts, reverse=True)
    assert cat.n_distinct == 5


def test_profile_empty_column_is_kept(data: dict[str, object]) -> None:
    empty = ReferenceProfile.build(data).columns["empty"]
    assert empty.count == 0
    assert empty.missing == 30_000


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_profile_save_load_round_trip(tmp_path: Path, data: dict[str, object], suffix: str) -> None:
    settings = ProfileSettings(exact_limit=10_000, sketch_size=500, max_categories=3)
    profile = ReferenceProfile.build(data, settings=settings)
    path = tmp_path / f"profile{suffix}"
    profile.save(path)
    loaded = ReferenceProfile.load(path)
    assert loaded.to_dict() == profile.to_dict()
    assert loaded.settings == settings


def test_profile_json_is_plain_json(data: dict[str, object]) -> None:
    document = json.loads(ReferenceProfile.build(data).to_json())
    assert document["format"] == "steward.reference-profile/1"
    assert [c["name"] for c in document["columns"]] == ["big", "small", "cat", "empty"]
    assert document["columns"][0]["values"][:3] == sorted(document["columns"][0]["values"][:3])


def test_profile_load_rejects_other_files(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"format": "something/2"}')
    with pytest.raises(InvalidInputError, match=r"not a steward\.reference-profile/1"):
        ReferenceProfile.load(tmp_path / "x.json")
    (tmp_path / "y.npz").write_bytes(b"not a zip")
    with pytest.raises(InvalidInputError, match="is not a saved profile"):
        ReferenceProfile.load(tmp_path / "y.npz")
    (tmp_path / "z.json").write_text("{")
    with pytest.raises(InvalidInputError, match="is not JSON"):
        ReferenceProfile.load(tmp_path / "z.json")
    with pytest.raises(InvalidInputError, match="no profile file"):
        ReferenceProfile.load(tmp_path / "missing.npz")
    bad_column = {
        "format": "steward.reference-profile/1",
        "rows": 1,
        "settings": {},
        "columns": [{"kind": "tree"}],
    }
    with pytest.raises(InvalidInputError, match="not a column profile"):
        ReferenceProfile.from_dict(bad_column)


@pytest.mark.parametrize(
    "settings",
    [
        ProfileSettings(bins=0),
        ProfileSettings(exact_limit=0),
        ProfileSettings(sketch_size=1),
        ProfileSettings(max_categories=True),  # type: ignore[arg-type]
    ],
)
def test_profile_settings_are_checked(settings: ProfileSettings) -> None:
    with pytest.raises(InvalidInputError, match="must be an int"):
        ReferenceProfile.build({"x": [1.0]}, settings=settings)


def test_profile_unsupported_type_requested_explicitly_is_an_error() -> None:
    import pyarrow as pa

    table = pa.table({"tags": [[1], [2]], "x": [1.0, 2.0]})
    with pytest.raises(InvalidInputError, match="unsupported types"):
        ReferenceProfile.build(table, columns=["tags"])
    with pytest.raises(InvalidInputError, match="not numeric"):
        ReferenceProfile.build({"s": ["a", "b"]}, column_types={"s": "numeric"})
