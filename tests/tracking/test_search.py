"""search_runs: the filter language in SQL, ordering, paging, and errors that point."""

from __future__ import annotations

import re

import pytest

from steward.tracking import FilterSyntaxError, TrackingService


@pytest.fixture
def runs(tracking: TrackingService) -> dict[str, str]:
    ids = {}
    for name, model, lr, auc, team in [
        ("a", "hgb", 0.1, 0.91, "risk"),
        ("b", "hgb", 0.2, 0.85, "risk"),
        ("c", "logreg", 1.0, 0.75, "risk"),
        ("d", "hgb", 0.05, 0.95, "growth"),
        ("e", "rf", 0.3, None, "risk"),
    ]:
        with tracking.start_run(
            "fraud", name=name, params={"model": model, "lr": lr}, tags={"team": team}
        ) as run:
            if auc is not None:
                run.log_metric("auc", auc)
        ids[name] = run.id
    return ids


def names(tracking: TrackingService, **kwargs: object) -> list[str]:
    return [r.name for r in tracking.search_runs("fraud", **kwargs).items]  # type: ignore[arg-type]


def test_search_issue_example(tracking: TrackingService, runs: dict[str, str]) -> None:
    found = names(
        tracking,
        filter="metrics.auc > 0.8 and params.model = 'hgb' and tags.team = 'risk'",
        order_by=["metrics.auc DESC"],
    )
    assert found == ["a", "b"]


@pytest.mark.parametrize(
    ("filter_text", "expected"),
    [
        ("params.lr >= 0.2", {"b", "c", "e"}),
        ("params.model in ('rf', 'logreg')", {"c", "e"}),
        ("params.model not in ('hgb')", {"c", "e"}),
        ("metrics.auc is null", {"e"}),
        ("metrics.auc < 0.8 or tags.team = 'growth'", {"c", "d"}),
        ("not (params.model = 'hgb')", {"c", "e"}),
        ("name like 'a%'", {"a"}),
        ("status = 'finished' and metrics.auc >= 0.95", {"d"}),
        ("tags.team != 'risk'", {"d"}),
    ],
)
def test_search_filters(
    tracking: TrackingService, runs: dict[str, str], filter_text: str, expected: set[str]
) -> None:
    assert set(names(tracking, filter=filter_text)) == expected


def test_search_orders_nulls_last_and_pages(
    tracking: TrackingService, runs: dict[str, str]
) -> None:
    first = tracking.search_runs("fraud", order_by=["metrics.auc ASC"], page_size=2)
    assert [r.name for r in first.items] == ["c", "b"]
    second = tracking.search_runs(
        "fraud", order_by=["metrics.auc ASC"], page_size=2, page_token=first.next_page_token
    )
    third = tracking.search_runs(
        "fraud", order_by=["metrics.auc ASC"], page_size=2, page_token=second.next_page_token
    )
    assert [r.name for r in second.items] == ["a", "d"]
    assert [r.name for r in third.items] == ["e"]
    assert third.next_page_token is None


def test_search_excludes_archived_unless_asked(
    tracking: TrackingService, runs: dict[str, str]
) -> None:
    tracking.set_run_archived(runs["a"], True)
    assert "a" not in names(tracking)
    assert "a" in [r.name for r in tracking.search_runs("fraud", include_archived=True).items]


@pytest.mark.parametrize(
    ("filter_text", "position", "message"),
    [
        ("metrics.auc >", 13, "expected a number"),
        ("metrics.auc > 0.8 and", 21, "expected a field"),
        ("metric.auc ~ 1", 11, "unexpected character '~'"),
        ("foo.bar = 1", 0, "unknown field prefix 'foo'"),
        ("nmae = 'a'", 0, "unknown attribute 'nmae'"),
        ("metrics.auc = 'high'", 0, "compare it with a number"),
        ("(metrics.auc > 1", 16, "expected ')'"),
        ("params.a in (1, 'x')", 20, "mixes numbers and strings"),
    ],
)
def test_search_bad_filter_points_at_token(
    tracking: TrackingService, runs: dict[str, str], filter_text: str, position: int, message: str
) -> None:
    with pytest.raises(FilterSyntaxError, match=re.escape(message)) as info:
        tracking.search_runs("fraud", filter=filter_text)
    assert f"at position {position}" in str(info.value)
    assert str(info.value).splitlines()[-1] == "  " + " " * position + "^"


def test_search_bad_order_and_page(tracking: TrackingService, runs: dict[str, str]) -> None:
    with pytest.raises(FilterSyntaxError, match="ASC or DESC"):
        tracking.search_runs("fraud", order_by=["metrics.auc DOWN"])
    with pytest.raises(Exception, match="page_token"):
        tracking.search_runs("fraud", page_token="garbage!")
    with pytest.raises(Exception, match="page_size"):
        tracking.search_runs("fraud", page_size=0)
