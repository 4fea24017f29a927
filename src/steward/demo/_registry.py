"""The demo's registry steps: register the best run's model, compile, trace and document it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from steward.demo._fraud import FEATURES, PROTECTED
from steward.demo._training import EXPERIMENT, TrainedModel, features
from steward.sdk import Steward

__all__ = ["MODEL", "register_best"]

MODEL = "card-fraud"

_CARD = {
    "out_of_scope_use": (
        "Declining payments automatically, credit decisions, or any use on customers outside "
        "the card portfolio it was trained on."
    ),
    "limitations": (
        "Trained on two months of synthetic transactions; the late slice drifts (amounts, "
        "merchant mix), so monitor drift and retrain when it is confirmed."
    ),
    "caveats": (
        "Scores are calibrated on the holdout slice only; re-check thresholds after retraining."
    ),
}


def _ethics(fairness: dict[str, Any]) -> str:
    verdict = "violated" if fairness["four_fifths_violation"] else "met"
    return (
        f"{PROTECTED} is never a model input. On the holdout slice the disparate impact ratio "
        f"across {fairness['attribute']} is {fairness['disparate_impact_ratio']:.3f} "
        f"(four-fifths rule {verdict}); review it at every new version."
    )


def register_best(
    st: Steward,
    chosen: TrainedModel,
    holdout: pa.Table,
    fairness: dict[str, Any],
    *,
    out: Path,
    say: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Register, compile, promote, trace and document the chosen model; return report steps."""
    st.registry.create_model(
        MODEL,
        description="Scores card payments for fraud.",
        owners=[st.store.actor],
        team="risk",
        risk_tier="high",
        intended_use="Rank card payments for review by the fraud team.",
        decision_mode="decision_support",
    )
    sample = holdout.select(FEATURES).slice(0, 500)
    version = st.registry.register(
        chosen.estimator,
        name=MODEL,
        run_id=chosen.run.id,
        sample_input=sample,
        compile="onnx",
        description=f"best holdout AUC of the {EXPERIMENT} runs",
    )
    sig = version.signature
    say(
        f"registered {version.ref} from run {chosen.run.name} ({version.flavor}, skops), "
        f"artifact sha256:{version.artifact_digest[:16]}…, signature "
        f"{len(sig.inputs) if sig else 0} columns"
    )
    compiled = version.compilations["onnx"]
    state = "verified" if compiled.verified else "FAILED"
    say(
        f"compiled to ONNX: {compiled.report.get('rows_checked')} rows checked, max |diff| "
        f"{compiled.report.get('max_abs_diff') or 0:.1e}, {state}"
    )
    promoted = st.registry.transition(
        version.ref, "staging", reason="best holdout AUC", aliases=["champion"]
    )
    served = st.registry.load(f"{MODEL}@champion", prefer="onnx")
    rows = features(holdout.slice(0, 5))
    native = st.registry.load(f"{MODEL}@champion")
    agree = bool(np.array_equal(served.predict(rows), native.predict(rows)))
    say(
        f"{MODEL}@champion → {promoted.ref} in {promoted.stage.value}; ONNX and native "
        f"predictions {'agree' if agree else 'DIFFER'} on 5 holdout rows"
    )
    graph = st.registry.lineage(version.ref)
    kinds = sorted({n.kind for n in graph.nodes.values()} - {"model_version"})
    say(f"lineage of {version.ref}: {len(graph.nodes)} nodes ({', '.join(kinds)})")
    card = st.registry.update_card(
        version.ref, {**_CARD, "ethical_considerations": _ethics(fairness)}
    )
    markdown, html = out / "model-card.md", out / "model-card.html"
    markdown.write_text(card.to_markdown(), encoding="utf-8")
    html.write_text(card.to_html(), encoding="utf-8")
    say(f"model card revision {card.revision}: completeness {card.completeness:.0%} → {html}")
    return [
        {"step": "registry.register", **version.as_dict()},
        {"step": "registry.compile", "ref": version.ref, **compiled.as_dict()},
        {
            "step": "registry.promote",
            "ref": promoted.ref,
            "stage": promoted.stage.value,
            "alias": "champion",
            "onnx_matches_native": agree,
        },
        {"step": "registry.lineage", **graph.as_dict()},
        {
            "step": "registry.card",
            "ref": card.ref,
            "revision": card.revision,
            "completeness": card.completeness,
            "missing": card.missing,
            "markdown": str(markdown),
            "html": str(html),
        },
    ]
