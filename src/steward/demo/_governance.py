"""The governance part of the tour: a policy, a failing gate, a fix, two sign-offs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from steward.core import PermissionDeniedError
from steward.demo._fraud import PROTECTED
from steward.demo._training import TrainedModel
from steward.sdk import Steward, connect

__all__ = ["POLICY", "govern_challenger"]

MODEL = "card-fraud"

POLICY = f"""\
policy: demo-high-risk
request_ttl: 7d
gates:
  high:
    staging:
      checks:
        - "holdout auc >= 0.60"
        - {{check: card_completeness, min: 0.9}}
        - {{check: prohibited_attributes, attributes: [{PROTECTED}]}}
      approvals:
        - {{role: model-risk, count: 1}}
        - {{role: compliance, count: 1}}
    production:
      checks:
        - "holdout auc >= 0.60"
        - {{check: card_completeness, min: 0.9}}
        - {{check: beats_champion, metric: auc, dataset: holdout, margin: 0.0}}
      approvals:
        - {{role: model-risk, count: 1}}
        - {{role: compliance, count: 1}}
"""

_CARD = {
    "out_of_scope_use": "Declining payments automatically or scoring outside the card portfolio.",
    "limitations": "A shallower model kept as a challenger; compare it in staging before use.",
    "ethical_considerations": (
        f"{PROTECTED} is never an input; fairness is re-measured on every new version."
    ),
}


def govern_challenger(
    st: Steward,
    challenger: TrainedModel,
    sample: Any,
    *,
    out: Path,
    connect_as: Callable[[str], Steward],
    say: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Send a challenger to staging under a high-risk policy; return report steps.

    ``connect_as(token)`` opens the same home as another identity, as that person's
    own client would.
    """
    steps: list[dict[str, Any]] = []
    policy_file = out / "policy.yaml"
    policy_file.write_text(POLICY, encoding="utf-8")
    applied = st.promotions.apply_policy(policy_file)
    say(f"policy {applied.policy.policy!r} applied as version {applied.version}: {policy_file}")
    tokens = {}
    for name, role in (("maya", "model-risk"), ("colin", "compliance")):
        st.identities.create_user(name, roles=[role])
        tokens[name] = st.tokens.create_token(
            name, name="demo", scopes="models:read", expires_in="1d"
        )[1]
    say("identities: maya (model-risk) and colin (compliance), each with a read-only token")

    version = st.registry.register(
        challenger.estimator,
        name=MODEL,
        run_id=challenger.run.id,
        sample_input=sample,
        compile="onnx",
        description="challenger: second-best holdout AUC",
    )
    first = st.promotions.request(
        version.ref, "staging", reason="challenger for shadow traffic", aliases=["challenger"]
    )
    failed = [c for c in first.checks if not c["passed"]]
    say(
        f"promotion request for {version.ref} → staging: {first.status}; "
        + "; ".join(f"{c['description']} ({c['detail']})" for c in failed)
    )
    steps.append({"step": "governance.request", **first.as_dict()})

    st.registry.update_card(version.ref, _CARD)
    second = st.promotions.request(
        version.ref, "staging", reason="card completed", aliases=["challenger"]
    )
    say(f"card completed; new request {second.id[-8:]}: {second.status}, checks all pass")
    try:
        st.promotions.approve(second.id, comment="looks good to me")
        refusal = "not refused"
    except PermissionDeniedError as exc:
        refusal = str(exc)
    say(f"the model's author tries to approve: refused — {refusal}")
    for name in ("maya", "colin"):
        with connect_as(tokens[name]) as approver:
            decided = approver.promotions.approve(second.id, comment=f"reviewed by {name}")
        say(f"{name} approves: request {decided.status}")
    moved = st.registry.get_version(version.ref)
    say(f"{moved.ref} is in {moved.stage.value} as @{', @'.join(moved.aliases)}")
    final = st.promotions.get(second.id)
    evidence = out / "promotion-evidence.json"
    evidence.write_text(json.dumps(final.as_dict(), indent=2), encoding="utf-8")
    say(f"promotion evidence (checks, approvals, policy version) → {evidence}")
    steps.append({"step": "governance.approve", "refusal": refusal, **final.as_dict()})
    return steps


def approver_client(home: Path) -> Callable[[str], Steward]:
    """Open the demo home as the holder of a token."""

    def open_as(token: str) -> Steward:
        return connect(
            home=home, token=token, database_url=None, artifact_uri=None, capture_environment=False
        )

    return open_as
