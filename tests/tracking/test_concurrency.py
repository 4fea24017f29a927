"""Four processes logging into one home lose nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from steward.sdk import connect

STEPS = 120


def _log(home: str, database_url: str, worker: int) -> str:
    with connect(home=home, database_url=database_url, capture_environment=False) as st:
        with st.start_run("shared", name=f"worker-{worker}", params={"worker": worker}) as run:
            for step in range(STEPS):
                run.log_metrics({"loss": 1.0 / (step + 1), "worker": float(worker)}, step=step)
                if step % 30 == 0:
                    run.flush()  # interleave many small transactions with the other workers
        return run.id


def test_four_processes_log_without_loss(database_url: str, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    home = str(tmp_path / "home")
    with ctx.Pool(4) as pool:
        run_ids = pool.starmap(_log, [(home, database_url, w) for w in range(4)])
    with connect(home=home, database_url=database_url, capture_environment=False) as st:
        for worker, run_id in enumerate(run_ids):
            history = st.tracking.metric_history(run_id, "loss")
            assert [m.step for m in history] == list(range(STEPS))
            assert st.tracking.get_run(run_id).params == {"worker": worker}
            assert st.tracking.get_run(run_id).metrics["worker"] == worker
        assert len(st.tracking.list_experiments()) == 1
        assert st.store.audit.verify().ok
