"""kill -9 of a gateway process under HTTP load, durable logging: no answered request is lost."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from tests.cli._helpers import run
from tests.serving._deploy_support import open_home, record
from tests.serving._gateway_process import Traffic, running_gateways, wait_until

from steward.serving import Variant
from steward.serving._predlog import PredictionLog

ANSWERED_BEFORE_KILL = 300


@pytest.mark.slow
def test_sigkill_under_load_loses_no_answered_prediction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = open_home(tmp_path / "home")
    home.deployments.create(
        "fraud-api",
        [Variant("champion", "fraud@champion")],
        settings={"log_mode": "durable", "timeout_ms": 30_000},
    )
    home.store.close()
    with running_gateways(home.path, 1) as (gateway,):
        url = gateway.predict_url("fraud-api")
        with Traffic([url], {"inputs": record()}, threads=16, stop_on_error=True) as traffic:
            wait_until(
                lambda: len(traffic.served(url, 1)) >= ANSWERED_BEFORE_KILL,
                120,
                f"{ANSWERED_BEFORE_KILL} answered predictions",
            )
            gateway.kill()  # mid-load: 16 senders keep requests in flight
            wait_until(
                lambda: sum(a.status == 0 for a in traffic.answers[url]) == 16,
                30,
                "every sender seeing the gateway gone",
            )
    answers = traffic.answers[url]
    answered = [a.request_id for a in answers if a.status == 200]
    assert len(answered) >= ANSWERED_BEFORE_KILL
    assert {a.status for a in answers} == {0, 200}  # no HTTP error before the kill

    log = PredictionLog(home.path / "prediction-log", worker_id="after-the-kill")
    try:
        assert log.recovery.corrupt == []
        stored = log.query("SELECT request_id FROM predictions").column("request_id").to_pylist()
    finally:
        log.close()
    assert set(answered) - set(stored) == set()  # every 200 is in the log
    assert max(Counter(stored).values()) == 1

    code, out, _ = run(["logs", "verify", "--json", "--home", str(home.path)], capsys, monkeypatch)
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["problems"] == [], report
    assert report["records"] >= len(answered)
