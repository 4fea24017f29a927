"""A promotion request's automated checks on a 100,000-row holdout.

- ``governance.promotion_checks``: a version of a HistGradientBoosting model (10
  numeric inputs) trained in a run that logged its ``train`` and ``holdout`` data
  (Parquet, with the label and a protected attribute) is checked against a gate
  with a metric threshold, the champion margin, the card completeness, signature
  compatibility, fairness by the protected attribute (predicting the whole holdout
  through the registry's loaded model), prohibited attributes with proxy
  detection, and drift between train and holdout. ``plan_s`` is
  ``PromotionService.plan`` (what ``steward promote --dry-run`` runs) end to end.

The target: at most 2 s for a 100,000-row holdout.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks._harness import Context, Measurements, benchmark
from steward.sdk import connect

POLICY = """\
policy: bench
gates:
  high:
    production:
      checks:
        - "holdout auc >= 0.5"
        - {check: beats_champion, metric: auc, dataset: holdout, margin: 0.0}
        - {check: card_completeness, min: 0.0}
        - {check: signature_compatible}
        - {check: fairness, attribute: group, dataset: holdout, min: 0.5}
        - {check: prohibited_attributes, attributes: [group], proxy_threshold: 0.9,
           dataset: holdout}
        - {check: drift, reference: train, current: holdout, max_drifted_share: 1.0}
"""
FEATURES = [f"x{i}" for i in range(10)]


def _table(rng: np.random.Generator, rows: int) -> pa.Table:
    x = rng.normal(size=(rows, len(FEATURES)))
    label = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=rows) > 0).astype(np.int64)
    columns = {name: x[:, i] for i, name in enumerate(FEATURES)}
    return pa.table({**columns, "label": label, "group": rng.choice(["a", "b"], rows)})


@benchmark("governance.promotion_checks", repeats=3, quick_repeats=1)
def promotion_checks(ctx: Context) -> Measurements:
    """Every automated check of a gate, data checks included, on a 100k-row holdout."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    rows = ctx.size(100_000, 10_000)
    rng = np.random.default_rng(3)
    train, holdout = _table(rng, 20_000), _table(rng, rows)
    pq.write_table(train, ctx.tmp / "train.parquet")
    pq.write_table(holdout, ctx.tmp / "holdout.parquet")
    frame = train.select(FEATURES).to_pandas()
    model = HistGradientBoostingClassifier(max_iter=50).fit(frame, train["label"].to_numpy())
    with connect(home=ctx.tmp / "home", capture_environment=False) as st:
        with st.start_run("bench", params={"label_column": "label"}) as run:
            run.log_dataset(ctx.tmp / "train.parquet", name="train", role="train")
            run.log_dataset(ctx.tmp / "holdout.parquet", name="holdout", role="holdout")
            run.log_metrics({"holdout.auc": 0.8})
            version = run.register_model(model, name="bench", sample_input=frame.head(100))
        st.registry.update_model("bench", risk_tier="high")
        policy = ctx.tmp / "policy.yaml"
        policy.write_text(POLICY)
        st.promotions.apply_policy(policy)
        with ctx.timer() as t:
            plan = st.promotions.plan(version.ref, "production")
        failed = [c.description for c in plan.checks if not c.passed]
        if failed:
            raise RuntimeError(f"checks failed: {failed}: {[c.detail for c in plan.checks]}")
    return {
        "plan_s": (t.seconds, "s"),
        "holdout_rows": (rows, "rows"),
        "checks": (len(plan.checks), "checks"),
    }
