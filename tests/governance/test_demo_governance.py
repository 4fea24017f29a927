"""The demo's governance step: a real fairness failure, the fix, two sign-offs, the report."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from steward.core import InvalidInputError
from steward.demo._fraud import PROXY, make_fraud_data
from steward.demo._governance import MODEL, approver_client, govern_challenger
from steward.demo._training import train_models
from steward.registry import Stage
from steward.sdk import Steward, connect


@pytest.fixture
def st(tmp_path: Path) -> Iterator[Steward]:
    """An embedded home, as the demo opens it (its approvers connect to the same folder)."""
    client = connect(
        home=tmp_path / "demo", database_url=None, artifact_uri=None, capture_environment=False
    )
    client.store.initialize()
    yield client
    client.close()


def test_demo_governance_fails_on_the_proxy_then_promotes_the_fix(
    st: Steward, tmp_path: Path
) -> None:
    home = tmp_path / "demo"
    early, late = make_fraud_data()
    datasets = home / "datasets"
    (forest,) = train_models(st, early, folder=datasets, candidates=["forest"])
    recent = datasets / "recent.parquet"
    pq.write_table(late, recent)
    st.registry.create_model(
        MODEL,
        owners=["risk-team"],
        team="risk",
        risk_tier="high",
        intended_use="Rank card payments for review.",
    )
    lines: list[str] = []

    steps = govern_challenger(
        st,
        forest,
        early,
        recent,
        datasets=datasets,
        out=home,
        connect_as=approver_client(home),
        say=lines.append,
    )

    by_step = {s["step"]: s for s in steps}
    first = by_step["governance.request"]
    assert first["status"] == "checks_failed"
    failed = {c["kind"]: c for c in first["checks"] if not c["passed"]}
    assert set(failed) == {"card_completeness", "prohibited_attributes", "fairness"}
    fairness = failed["fairness"]
    assert fairness["observed"] < 0.8
    assert fairness["evidence"]["rows"] == late.num_rows
    assert fairness["evidence"]["metrics"]["disparate_impact_ratio"] == fairness["observed"]
    assert failed["prohibited_attributes"]["evidence"]["scores"][PROXY] > 0.3
    assert f"proxies above threshold: {PROXY}" in failed["prohibited_attributes"]["detail"]

    assert by_step["governance.fix"]["dropped"] == PROXY
    approved = by_step["governance.approve"]
    assert approved["ref"] == f"{MODEL}:2"
    assert approved["status"] == "executed"
    assert all(c["passed"] for c in approved["checks"])
    fixed = next(c for c in approved["checks"] if c["kind"] == "fairness")
    assert fixed["observed"] >= 0.8
    assert "separation of duties" in approved["refusal"]
    assert {d["approver"] for d in approved["decisions"]} == {"maya", "colin"}
    assert st.registry.get_version(approved["ref"]).stage is Stage.STAGING

    report = by_step["governance.report"]
    markdown = Path(report["markdown"]).read_text(encoding="utf-8")
    page = Path(report["html"]).read_text(encoding="utf-8")
    assert f"# Governance report: {MODEL}:2" in markdown
    assert f"<h1>Governance report: {MODEL}:2</h1>" in page
    for check in approved["checks"]:
        assert f"| {check['description']} | True |" in markdown
        assert f"<td>{html.escape(check['description'])}</td><td>true</td>" in page
    for text in (markdown, page):
        for name in ("maya", "colin"):
            assert f"reviewed by {name}" in text
        assert "promotion.approve" in text
    assert any(str(report["html"]) in line for line in lines)


def test_demo_training_refuses_an_unknown_candidate(st: Steward, tmp_path: Path) -> None:
    early, _ = make_fraud_data(1_000)
    with pytest.raises(InvalidInputError, match=r"unknown demo model\(s\) \['svm'\]; choose from"):
        train_models(st, early, folder=tmp_path / "data", candidates=["svm"])
