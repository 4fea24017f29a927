"""The governance part of the tour: a policy, failing gates, a fix, two sign-offs, a report.

The challenger reads ``account_age_days``, which the demo data makes a proxy
for ``gender``: its first request fails the fairness gate (disparate impact
measured by ``steward.quality`` on the recent slice) and the proxy check, and
its card is incomplete. The fix trains the same model without the proxy and
completes its card; that version passes, two approvers sign off, and the
governance report of the promoted version is written into the home.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from steward.core import PermissionDeniedError
from steward.demo._fraud import PROTECTED, PROXY
from steward.demo._training import TrainedModel, retrain_without, split
from steward.governance import PromotionRequest, build_report
from steward.sdk import Steward, connect

__all__ = ["POLICY", "approver_client", "govern_challenger"]

MODEL = "card-fraud"
Say = Callable[[str], None]

_DATA_CHECKS = f"""\
        - {{check: prohibited_attributes, attributes: [{PROTECTED}], proxy_threshold: 0.3}}
        - {{check: fairness, attribute: {PROTECTED}, dataset: recent, min: 0.8}}"""
POLICY = f"""\
policy: demo-high-risk
request_ttl: 7d
gates:
  high:
    staging:
      checks:
        - "holdout auc >= 0.60"
        - {{check: card_completeness, min: 0.9}}
{_DATA_CHECKS}
      approvals:
        - {{role: model-risk, count: 1}}
        - {{role: compliance, count: 1}}
    production:
      checks:
        - "holdout auc >= 0.60"
        - {{check: card_completeness, min: 0.9}}
{_DATA_CHECKS}
        - {{check: beats_champion, metric: auc, dataset: holdout, margin: 0.0}}
      approvals:
        - {{role: model-risk, count: 1}}
        - {{role: compliance, count: 1}}
"""

_CARD = {
    "out_of_scope_use": "Declining payments automatically or scoring outside the card portfolio.",
    "limitations": (
        f"Trained without {PROXY}, a proxy for {PROTECTED}; a little less accurate than the "
        "champion. Compare it in staging before use."
    ),
    "ethical_considerations": (
        f"{PROTECTED} is never an input and {PROXY} was dropped as its proxy; fairness is "
        "re-measured on recent data at every promotion."
    ),
}


def govern_challenger(
    st: Steward,
    challenger: TrainedModel,
    early: pa.Table,
    recent: Path,
    *,
    datasets: Path,
    out: Path,
    connect_as: Callable[[str], Steward],
    say: Say,
) -> list[dict[str, Any]]:
    """Send a challenger to staging under a high-risk policy; return report steps.

    ``early`` is the data the challenger was trained on (the fix retrains on it
    and logs its slices in ``datasets``), ``recent`` a Parquet file of later
    labelled data for the fairness gate, and ``connect_as(token)`` opens the same
    home as another identity, as that person's own client would.
    """
    tokens = _setup(st, out, say)
    data = {"recent": recent}
    holdout = split(early)[1]
    first = _request(st, challenger, holdout, data, note="second-best holdout AUC")
    say(f"promotion request for {first.ref} → staging: {first.status}")
    _say_checks(first, say, failed_only=True)

    fixed = retrain_without(st, challenger, PROXY, early, folder=datasets)
    say(
        f"fix: retrained {challenger.run.name} without {PROXY} (run {fixed.run.id[-8:]}, "
        f"holdout AUC {fixed.run.metrics['holdout_auc']:.4f}); its card completed"
    )
    second = _request(st, fixed, holdout, data, note=f"retrained without {PROXY}", card=_CARD)
    say(f"new request {second.id[-8:]} for {second.ref}: {second.status}")
    _say_checks(second, say, failed_only=False)
    final, refusal = _sign_off(st, second, tokens, connect_as, say)
    return [
        {"step": "governance.request", **first.as_dict()},
        {"step": "governance.fix", "run_id": fixed.run.id, "dropped": PROXY, "ref": final.ref},
        {"step": "governance.approve", "refusal": refusal, **final.as_dict()},
        _write_evidence(st, final, out, say),
    ]


def _request(
    st: Steward,
    model: TrainedModel,
    holdout: pa.Table,
    data: Mapping[str, Path],
    *,
    note: str,
    card: Mapping[str, str] | None = None,
) -> PromotionRequest:
    """Register ``model`` (with a card when given) and ask to move it to staging."""
    version = st.registry.register(
        model.estimator,
        name=MODEL,
        run_id=model.run.id,
        sample_input=holdout.select(list(model.columns)).slice(0, 500),
        description=f"challenger: {note}",
    )
    if card is not None:
        st.registry.update_card(version.ref, card)
    return st.promotions.request(
        version.ref, "staging", reason=f"challenger ({note})", aliases=["challenger"], data=data
    )


def _setup(st: Steward, out: Path, say: Say) -> dict[str, str]:
    """Apply the policy and create the two approvers; return their tokens."""
    policy_file = out / "policy.yaml"
    policy_file.write_text(POLICY, encoding="utf-8")
    applied = st.promotions.apply_policy(policy_file)
    say(f"policy {applied.policy.policy!r} applied as version {applied.version}: {policy_file}")
    say(
        "from now on a high-risk version reaches staging only with a complete card, no proxy "
        f"for {PROTECTED} among its inputs, disparate impact >= 0.8 on recent data and two "
        "sign-offs (the champion predates the policy)"
    )
    tokens = {}
    for name, role in (("maya", "model-risk"), ("colin", "compliance")):
        st.identities.create_user(name, roles=[role])
        tokens[name] = st.tokens.create_token(
            name, name="demo", scopes="models:read", expires_in="1d"
        )[1]
    say("identities: maya (model-risk) and colin (compliance), each with a read-only token")
    return tokens


def _say_checks(request: PromotionRequest, say: Say, *, failed_only: bool) -> None:
    for check in request.checks:
        if failed_only and check["passed"]:
            continue
        verdict = "pass" if check["passed"] else "FAIL"
        say(f"  {verdict}: {check['description']} — {check['detail']}")


def _sign_off(
    st: Steward,
    request: PromotionRequest,
    tokens: Mapping[str, str],
    connect_as: Callable[[str], Steward],
    say: Say,
) -> tuple[PromotionRequest, str]:
    """The author is refused (separation of duties); the two approvers sign off."""
    try:
        st.promotions.approve(request.id, comment="looks good to me")
        refusal = "not refused"
    except PermissionDeniedError as exc:
        refusal = str(exc)
    say(f"the model's author tries to approve: refused — {refusal}")
    for name in ("maya", "colin"):
        with connect_as(tokens[name]) as approver:
            decided = approver.promotions.approve(request.id, comment=f"reviewed by {name}")
        say(f"{name} approves: request {decided.status}")
    moved = st.registry.get_version(request.ref)
    say(f"{moved.ref} is in {moved.stage.value} as @{', @'.join(moved.aliases) or 'no alias'}")
    return st.promotions.get(request.id), refusal


def _write_evidence(st: Steward, request: PromotionRequest, out: Path, say: Say) -> dict[str, Any]:
    """Write the request's evidence and the version's governance report into the home."""
    evidence = out / "promotion-evidence.json"
    evidence.write_text(json.dumps(request.as_dict(), indent=2), encoding="utf-8")
    say(f"promotion evidence (checks, approvals, policy version) → {evidence}")
    report = build_report(st.store, st.promotions, request.ref)
    markdown, html = out / "governance-report.md", out / "governance-report.html"
    markdown.write_text(report.to_markdown(), encoding="utf-8")
    html.write_text(report.to_html(), encoding="utf-8")
    say(
        f"governance report of {request.ref} (card, lineage, check evidence, approvals, "
        f"audit: {len(report.audit)} events) → {html} and {markdown.name}"
    )
    return {
        "step": "governance.report",
        "ref": request.ref,
        "evidence": str(evidence),
        "markdown": str(markdown),
        "html": str(html),
        "requests": len(report.requests),
        "audit_events": len(report.audit),
    }


def approver_client(home: Path) -> Callable[[str], Steward]:
    """Open the demo home as the holder of a token."""

    def open_as(token: str) -> Steward:
        return connect(
            home=home, token=token, database_url=None, artifact_uri=None, capture_environment=False
        )

    return open_as
