from __future__ import annotations

import json

import numpy as np
import pytest
from rich.console import Console

from steward.quality import (
    DriftDetector,
    DriftReport,
    Schema,
    evaluate_fairness,
    evaluate_segments,
)
from steward.quality._render import fmt, pct, svg_overlay


@pytest.fixture(scope="module")
def wide_report() -> DriftReport:
    rng = np.random.default_rng(12)
    rows, width = 300, 1_000
    reference = {f"f{i}": rng.normal(size=rows) for i in range(width)}
    current = {f"f{i}": rng.normal(1.0 if i % 10 == 0 else 0.0, size=rows) for i in range(width)}
    reference["city<b>"] = rng.choice(["a", "b"], size=rows)
    current["city<b>"] = rng.choice(["a", "c"], size=rows)
    return DriftDetector().fit(reference).score(current)


def render(renderable: object) -> str:
    console = Console(record=True, width=200)
    console.print(renderable)
    return console.export_text()


def test_drift_report_json_round_trips(wide_report: DriftReport) -> None:
    document = json.loads(wide_report.to_json())
    assert document == wide_report.to_dict()
    assert document["n_columns"] == 1_001
    assert document["format"] == "steward.drift-report/1"


def test_drift_report_html_charts_only_drifted_columns(wide_report: DriftReport) -> None:
    page = wide_report.to_html()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == len(wide_report.drifted_columns)
    assert "<script" not in page
    assert "city&lt;b&gt;" in page
    assert len(page) < 1_000_000


def test_drift_report_rich_table_lists_every_column(wide_report: DriftReport) -> None:
    text = render(wide_report)
    assert "f999" in text
    assert "columns drifted" in text


def test_validation_and_diff_render() -> None:
    schema = Schema.infer({"a": [1, 2, 3], "b": ["x", "y", "x"]})
    report = schema.validate({"a": [1, 2, 99], "b": ["x", "z", None]})
    text = render(report)
    assert "out_of_range" in text
    assert "validation failed" in text or "validation passed" in text
    assert json.loads(report.to_json())["format"] == "steward.validation-report/1"
    assert "<table>" in report.to_html()
    diff = schema.diff(Schema.infer({"a": [1.5], "c": [1]}))
    assert "removed" in render(diff)
    assert json.loads(diff.to_json())["breaking"] is True


def test_fairness_and_segments_render() -> None:
    fairness = evaluate_fairness(
        [1, 0, 1, 0], [1, 1, 0, 0], sensitive_features=["a", "a", "b", "b"]
    )
    text = render(fairness)
    assert "four-fifths rule" in text
    assert "(small)" in text
    assert "Fairness" in fairness.to_html()
    segments = evaluate_segments([1, 0, 1, 0], [1, 1, 0, 0], segments=["a", "a", "b", "b"])
    assert "overall" in render(segments)
    assert json.loads(segments.to_json())["format"] == "steward.segment-report/1"
    assert "<table>" in segments.to_html()


def test_formatting_helpers() -> None:
    assert fmt(None) == "—"
    assert fmt(float("nan")) == "—"
    assert fmt(0.000123) == "1.23e-04"
    assert fmt(0.0) == "0"
    assert pct(0.125) == "12.5%"
    assert pct(None) == "—"
    svg = svg_overlay(["a", "b"], [0.5, 0.5], [0.9, 0.1])
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "a: 50.0% → 90.0%" in svg
