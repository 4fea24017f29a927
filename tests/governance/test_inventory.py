"""The model inventory and the governance report of one version."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from tests.governance._support import train_scored

from steward.core import FrozenClock, NotFoundError, PermissionDeniedError, Principal
from steward.governance import PromotionService, build_inventory, build_report, inventory_csv
from steward.sdk import Steward

POLICY = """\
policy: credit
gates:
  high:
    production:
      checks:
        - "holdout auc >= 0.80"
        - {check: card_completeness, min: 0.8}
      approvals:
        - {role: model-risk, count: 1}
"""
HOSTILE = '<script>alert(1)</script> | & "quoted"'


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))


def _approve(st: Steward, request_id: str, comment: str) -> None:
    rita = Principal.of("rita", roles=["model-risk"], scopes=["models:read"])
    store = st.store.as_principal(rita)
    PromotionService(store, st.registry).approve(request_id, comment=comment)


@pytest.fixture
def estate(st: Steward) -> Steward:
    """credit: legacy production model promoted before the policy; fraud: governed; churn: new."""
    legacy = train_scored(st, "credit", 0.9)
    st.registry.transition(legacy, "production", reason="before the policy")
    st.promotions.apply_policy("policy.yaml", text=POLICY)
    first = train_scored(st, "fraud", 0.9)
    st.registry.update_model("fraud", risk_tier="high", owners=["=HYPERLINK(1)"], team="risk")
    st.registry.update_model("credit", risk_tier="high")
    st.registry.update_card(
        first,
        {
            "intended_use": HOSTILE,
            "out_of_scope_use": "none",
            "limitations": "small sample",
            "ethical_considerations": "reviewed",
            "caveats": "none",
        },
    )
    request = st.promotions.request(first, "production", reason=HOSTILE)
    _approve(st, request.id, comment=f"ok {HOSTILE}")
    train_scored(st, "churn", 0.5)
    return st


def test_inventory_rows_and_violations(estate: Steward) -> None:
    rows = {r.name: r for r in build_inventory(estate.store, estate.promotions)}

    assert sorted(rows) == ["churn", "credit", "fraud"]
    fraud = rows["fraud"]
    assert fraud.production_version == 1
    assert fraud.versions_by_stage["production"] == 1
    assert fraud.owners == ("=HYPERLINK(1)",)
    assert fraud.last_validation is not None
    assert fraud.open_requests == 0
    assert fraud.violations == ()
    credit = rows["credit"]
    assert "production credit:1 has no executed promotion request" in credit.violations
    assert any("card completeness" in v for v in credit.violations)
    assert rows["churn"].violations == ("no risk tier",)
    assert rows["churn"].production_version is None


def test_inventory_csv_neutralizes_formulas(estate: Steward) -> None:
    text = inventory_csv(build_inventory(estate.store, estate.promotions))
    table = list(csv.DictReader(io.StringIO(text)))
    fraud = next(r for r in table if r["name"] == "fraud")
    assert fraud["owners"] == "'=HYPERLINK(1)"
    assert fraud["versions_production"] == "1"


def test_inventory_needs_models_read(estate: Steward) -> None:
    store = estate.store.as_principal(Principal.of("nobody"))
    with pytest.raises(PermissionDeniedError):
        build_inventory(store, estate.promotions)


def test_report_assembles_every_record(estate: Steward) -> None:
    report = build_report(estate.store, estate.promotions, "fraud:1")

    assert [r.status for r in report.requests] == ["executed"]
    assert report.requests[0].decisions[0]["approver"] == "rita"
    assert [t.to_stage.value for t in report.transitions] == ["production"]
    actions = {e.action for e in report.audit}
    assert {"model.version.register", "promotion.approve"} <= actions
    markdown = report.to_markdown()
    assert "# Governance report: fraud:1" in markdown
    assert "rita" in markdown
    assert "holdout auc" in markdown
    assert "\\| & " in markdown  # table cells escaped
    assert report.as_dict()["ref"] == "fraud:1"


def test_report_html_escapes_everything(estate: Steward) -> None:
    page = build_report(estate.store, estate.promotions, "fraud:1").to_html()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.startswith("<!DOCTYPE html>")


def test_report_of_unknown_version(estate: Steward) -> None:
    with pytest.raises(NotFoundError):
        build_report(estate.store, estate.promotions, "fraud:9")


def test_report_needs_audit_read(estate: Steward) -> None:
    store = estate.store.as_principal(Principal.of("vic", scopes=["models:read"]))
    with pytest.raises(PermissionDeniedError, match="audit:read"):
        build_report(store, estate.promotions, "fraud:1")
