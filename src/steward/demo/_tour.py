"""``steward demo``: initialise a home and walk through what steward records.

Each step uses only public APIs, the way a user's script would, and reports
what it did through a callback so the CLI can print it as it happens.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import sqlalchemy as sa

from steward.core import load_settings
from steward.demo._checks import check_data, check_fairness
from steward.demo._features import run_feature_store
from steward.demo._fraud import make_fraud_data
from steward.demo._governance import approver_client, govern_challenger
from steward.demo._registry import register_best
from steward.demo._serving import run_serving
from steward.demo._training import EXPERIMENT, features, split, train_models
from steward.features import FeatureSettings
from steward.sdk import Steward
from steward.store import AuditLog, Database, Store, StoreSettings

__all__ = ["DemoReport", "run_demo"]

Say = Callable[[str], None]


@dataclass
class DemoReport:
    """What the demo did, for ``--json`` and for tests."""

    home: str
    steps: list[dict[str, Any]] = field(default_factory=list)

    def add(self, step: str, **facts: Any) -> None:
        """Record one step and its facts."""
        self.steps.append({"step": step, **facts})


def _store_artifacts(store: Store, report: DemoReport, say: Say) -> None:
    samples = {
        "customers.csv": b"customer_id,segment\n1,retail\n2,business\n",
        "policy.toml": b'[tiers.high]\napprovals = ["model-risk", "compliance"]\n',
    }
    for name, data in samples.items():
        with store.unit_of_work() as uow:
            info = store.artifacts.put(data)
            uow.audit("artifact.store", "artifact", info.digest, {"name": name, "size": info.size})
        say(f"stored {name:<14} sha256:{info.digest[:16]}…  {info.size} bytes")
        report.add("artifact.store", name=name, digest=info.digest, size=info.size)
    again = store.artifacts.put(samples["customers.csv"])
    say(f"stored customers.csv again → same digest {again.digest[:16]}…, kept once")
    report.add("artifact.dedup", digest=again.digest)
    data = store.artifacts.get(again.digest)
    say(f"read it back, digest verified ({len(data)} bytes)")


def _show_tamper_detection(store: Store, report: DemoReport, say: Say) -> None:
    url = store.database.url
    if url.get_backend_name() != "sqlite" or not url.database:
        return
    copy = Path(url.database).with_name("tamper-copy.db")
    with store.database.engine.connect() as conn:  # checkpoint WAL so the copy is whole
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(url.database, copy)
    tampered = Database(f"sqlite:///{copy}")
    with tampered.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    result = AuditLog(tampered).verify()
    tampered.dispose()
    copy.unlink()
    say(f"on a copy, changed event 2's actor to 'mallory' → verify: {result.problem}")
    report.add("audit.tamper_demo", detected=not result.ok, first_bad_seq=result.first_bad_seq)


def _track_training(st: Steward, report: DemoReport, say: Say) -> None:
    """Train tracked runs, check the data and fairness, register the best model, govern."""
    early, late = make_fraud_data()
    say(f"generated card-fraud data: {early.num_rows} rows, then {late.num_rows} drifted rows")
    out = Path(report.home)
    datasets = out / "datasets"
    trained = train_models(st, early, folder=datasets, say=say)
    best = st.tracking.search_runs(
        EXPERIMENT, order_by=["metrics.holdout_auc DESC"], page_size=1
    ).items[0]
    say(f"best run by holdout AUC: {best.name} ({best.id[-8:]})")
    comparison = st.tracking.compare_runs([t.run.id for t in trained])
    report.add("tracking.compare", best_run=best.id, **comparison)
    report.add("quality.data", **check_data(early, late, say))
    chosen = next(t for t in trained if t.run.id == best.id)
    holdout = split(early)[1]
    decisions = (chosen.estimator.predict_proba(features(holdout))[:, 1] >= 0.3).astype(int)
    fairness = check_fairness(holdout, decisions, say)
    report.add("quality.fairness", **fairness)
    report.steps.extend(register_best(st, chosen, holdout, fairness, out=out, say=say))
    ranked = st.tracking.search_runs(EXPERIMENT, order_by=["metrics.holdout_auc DESC"]).items
    challenger = next(t for t in trained if t.run.id == ranked[1].id)
    recent = datasets / "recent.parquet"
    pq.write_table(late, recent)
    report.steps.extend(
        govern_challenger(
            st,
            challenger,
            early,
            recent,
            datasets=datasets,
            out=out,
            connect_as=approver_client(out),
            say=say,
        )
    )


def _feature_store(st: Steward, report: DemoReport, say: Say) -> None:
    early, _ = make_fraud_data()
    folder = st.features.settings.home / "feature_repo"
    report.add("features", **run_feature_store(st.features, early, folder, say))


def _serve(st: Steward, report: DemoReport, say: Say) -> None:
    """Serve the champion through the gateway, canary the challenger, query the log."""
    _, late = make_fraud_data()
    report.steps.extend(run_serving(st, late, home=Path(report.home), say=say))


def run_demo(home: Path, *, say: Say = lambda _: None) -> DemoReport:
    """Run the demo in ``home`` (created if needed) and return what it did."""
    settings = load_settings(StoreSettings, home=home, database_url=None, artifact_uri=None)
    # The demo is embedded whatever the environment says: SQLite online store in the home.
    embedded = load_settings(FeatureSettings, home=home, online_store_url=None, offline_dir=None)
    st = Steward(Store.open(settings), feature_settings=embedded)
    store = st.store
    report = DemoReport(home=str(settings.home))
    try:
        facts = store.initialize()
        say(f"home {settings.home}: schema {facts['schema_revision']}")
        report.add("home.initialize", **facts)
        _store_artifacts(store, report, say)
        _track_training(st, report, say)
        _feature_store(st, report, say)
        _serve(st, report, say)
        _show_tamper_detection(store, report, say)
        result = store.audit.verify()
        say(f"audit chain: {result.events} events, verified {'OK' if result.ok else 'BROKEN'}")
        report.add("audit.verify", **result.as_dict())
        events = store.audit.list_events(limit=None, newest_first=False)
        report.add("audit.log", events=[e.as_dict() for e in events])
    finally:
        st.close()
    return report
