from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats.contingency import association
from sklearn.metrics import mutual_info_score

from steward.core import InvalidInputError
from steward.quality import detect_proxies


@pytest.fixture(scope="module")
def people() -> pd.DataFrame:
    rng = np.random.default_rng(8)
    n = 5_000
    sex = rng.choice(["f", "m"], size=n)
    title = np.where(sex == "f", rng.choice(["ms", "mrs", "dr"], size=n, p=[0.6, 0.3, 0.1]), "mr")
    height = np.where(sex == "f", 165.0, 178.0) + rng.normal(0, 6, size=n)
    noise = rng.normal(size=n)
    city = rng.choice(["x", "y", "z"], size=n)
    age = rng.integers(18, 80, size=n).astype(float)
    return pd.DataFrame(
        {"sex": sex, "title": title, "height": height, "noise": noise, "city": city, "age": age}
    )


def test_proxies_flag_the_strong_associations(people: pd.DataFrame) -> None:
    report = detect_proxies(people, protected="sex", columns=["title", "height", "noise", "city"])
    assert report.proxies == ("title", "height")
    methods = {a.column: a.method for a in report.associations}
    assert methods == {
        "title": "cramers_v",
        "height": "correlation_ratio",
        "noise": "correlation_ratio",
        "city": "cramers_v",
    }
    assert [a.column for a in report.associations][:2] == ["title", "height"]


def test_cramers_v_matches_scipy(people: pd.DataFrame) -> None:
    report = detect_proxies(people, protected="sex", columns=["city", "title"])
    for column in ("city", "title"):
        table = pd.crosstab(people.sex, people[column]).to_numpy()
        expected = association(table, method="cramer", correction=False)
        found = next(a for a in report.associations if a.column == column)
        assert found.association == pytest.approx(expected, rel=1e-9)


def test_correlation_ratio_matches_definition(people: pd.DataFrame) -> None:
    report = detect_proxies(people, protected="sex", columns=["height"])
    grouped = people.groupby("sex").height
    overall = people.height.mean()
    between = (grouped.count() * (grouped.mean() - overall) ** 2).sum()
    total = ((people.height - overall) ** 2).sum()
    assert report.associations[0].association == pytest.approx(np.sqrt(between / total), rel=1e-9)


def test_mutual_information_matches_sklearn(people: pd.DataFrame) -> None:
    report = detect_proxies(people, protected="sex", columns=["title"])
    found = report.associations[0]
    assert found.mutual_information == pytest.approx(mutual_info_score(people.sex, people.title))
    entropy = -sum(p * np.log(p) for p in people.sex.value_counts(normalize=True))
    assert found.uncertainty_coefficient == pytest.approx(found.mutual_information / entropy)


def test_numeric_protected_attribute(people: pd.DataFrame) -> None:
    data = people.assign(
        tenure=people.age - 18 + np.random.default_rng(1).normal(0, 1, len(people))
    )
    report = detect_proxies(data, protected="age", columns=["tenure", "noise", "city"])
    methods = {a.column: (a.method, a.proxy) for a in report.associations}
    assert methods["tenure"] == ("spearman", True)
    assert methods["city"][0] == "correlation_ratio"
    assert not methods["noise"][1]


def test_proxies_drop_missing_pairs_and_handle_constants() -> None:
    data = {
        "group": ["a", "b", None, "a", "b", "a"],
        "same": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        "gappy": [1.0, 2.0, 3.0, float("nan"), 2.0, 1.0],
    }
    report = detect_proxies(data, protected="group")
    by_column = {a.column: a for a in report.associations}
    assert by_column["same"].association == 0.0
    assert by_column["gappy"].rows == 4
    assert by_column["gappy"].association == pytest.approx(1.0)


def test_proxies_reject_bad_arguments(people: pd.DataFrame) -> None:
    with pytest.raises(InvalidInputError, match=r"no column\(s\) \['religion'\]"):
        detect_proxies(people, protected="religion")
    with pytest.raises(InvalidInputError, match="threshold"):
        detect_proxies(people, protected="sex", threshold=0)
    with pytest.raises(InvalidInputError, match="bins"):
        detect_proxies(people, protected="sex", bins=1)


def test_proxy_report_renders(people: pd.DataFrame) -> None:
    report = detect_proxies(people, protected="sex")
    assert report.to_dict()["proxies"] == list(report.proxies)
    assert "likely proxies of 'sex'" in report.summary()
    assert "<table>" in report.to_html()
