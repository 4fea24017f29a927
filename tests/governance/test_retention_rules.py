"""The grammar of retention rules, from lines and from TOML files, and its refusals."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from steward.core import InvalidInputError
from steward.governance import DEFAULT_RULES, RetentionRule, parse_rules, read_rules


@pytest.mark.parametrize(
    ("text", "kind", "condition", "days"),
    [
        ("runs: archived for 90d", "runs", "archived", 90),
        ("runs:finished for 2w", "runs", "finished", 14),
        ("  dataset_versions :  unreferenced for 180 d ", "dataset_versions", "unreferenced", 180),
        ("model_versions: archived for 7y", "model_versions", "archived", 7 * 365),
        ("predictions: older than 400d", "predictions", "older", 400),
        ("runs: archived for 0d", "runs", "archived", 0),
    ],
)
def test_rules_parse(text: str, kind: str, condition: str, days: int) -> None:
    rule = RetentionRule.parse(text)
    assert (rule.kind, rule.condition, rule.age) == (kind, condition, timedelta(days=days))
    assert RetentionRule.parse(str(rule)) == rule


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("runs archived for 90d", "is not understood"),
        ("runs: archived for 90", "is not understood"),
        ("runs: archived for -1d", "is not understood"),
        ("runs: archived for 90m", "is not understood"),
        ("experiments: archived for 9d", "use one of runs, dataset_versions"),
        ("runs: deleted for 9d", "archived or finished"),
        ("predictions: archived for 9d", "older, not 'archived'"),
        ("runs: archived for 999999y", "100 years"),
        ("runs: archived for 9d; DROP TABLE runs", "is not understood"),
        ("x" * 500, "not a short line"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        RetentionRule.parse(text)


def test_later_rules_replace_earlier_ones() -> None:
    rules = parse_rules(
        ["runs: archived for 9d", "runs: archived for 30d", "runs: finished for 1y"]
    )
    assert [str(r) for r in rules] == ["runs: archived for 30d", "runs: finished for 365d"]


def test_defaults_cover_every_kind() -> None:
    assert {r.kind for r in DEFAULT_RULES} == {
        "runs",
        "dataset_versions",
        "model_versions",
        "predictions",
    }


def test_rules_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "retention.toml"
    path.write_text(
        '[retention]\nruns = ["archived for 90d", "finished for 2y"]\n'
        'predictions = "older than 400d"\n',
        encoding="utf-8",
    )
    assert [str(r) for r in read_rules(path)] == [
        "runs: archived for 90d",
        "runs: finished for 730d",
        "predictions: older than 400d",
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("[retention\n", "is not TOML"),
        ("[other]\nx = 1\n", "has no \\[retention\\] table"),
        ("[retention]\nruns = 90\n", "must be text"),
        ('[retention]\nruns = "archived for ever"\n', "is not understood"),
    ],
)
def test_bad_rule_files_are_refused(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "retention.toml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidInputError, match=message):
        read_rules(path)
