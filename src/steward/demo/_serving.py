"""The serving part of the tour: deploy the champion, canary a retrained version, query the log.

The candidate is the champion's recipe trained again on the first part of the
recent (drifted) slice, a new version compiled to ONNX; traffic is the rest of
that slice, labelled afterwards through the feedback endpoint.

The gateway runs in this process: its ASGI app behind httpx's ASGI transport,
no network port, so requests go through the same decoding, routing,
micro-batching and durable prediction log as under ``steward gateway``.  They
are sent 16 at a time, so concurrent requests share model calls and fsyncs.
The canary's steps are taken from the prediction log
(``CanaryService.evaluate_now``, what ``steward deployments canary step``
runs), so the tour decides at fixed points.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa

from steward.core import InvalidInputError, load_settings
from steward.demo._fraud import FEATURES, LABEL
from steward.demo._training import retrain_on, split
from steward.registry import ModelVersion
from steward.sdk import Steward
from steward.serving import (
    CanaryPlan,
    CanaryService,
    Decision,
    DeploymentService,
    GatewaySettings,
    PredictionArchive,
    create_app,
)

__all__ = ["DEPLOYMENT", "LOG_QUERY", "run_serving"]

Say = Callable[[str], None]

MODEL = "card-fraud"
DEPLOYMENT = "card-fraud-api"
# Short steps for the tour; production plans keep the defaults (500 requests, 5 minutes a step).
PLAN = CanaryPlan(
    steps=(50, 100),
    min_requests=100,
    min_prediction_samples=100,
    psi_bins=5,
    max_p95_latency_ratio=3.0,
    min_step_seconds=0,
    shadow_first=True,
)
LOG_QUERY = """\
SELECT p.variant || CASE WHEN p.shadow THEN ' (shadow)' ELSE '' END AS variant,
       count(*) AS requests, round(quantile_cont(p.latency_ms, 0.95), 1) AS p95_ms,
       round(avg(CAST(json_extract(p.outputs, '$[0].probabilities."1"') AS DOUBLE)), 3)
           AS mean_score,
       round(avg(f.label_value), 3) AS fraud_rate
FROM predictions p LEFT JOIN feedback f USING (request_id)
WHERE p.deployment = 'card-fraud-api'
GROUP BY ALL ORDER BY variant"""
_HEADER = "X-Customer-Id"
_CONCURRENCY = 16


class _Traffic:
    """Sends the data's rows to the in-process gateway, one request per row."""

    def __init__(self, client: httpx.AsyncClient, data: pa.Table) -> None:
        self.client = client
        self.rows = data.select(FEATURES).to_pylist()
        self.labels = data[LABEL].to_pylist()
        self.customers = data["customer_id"].to_pylist()
        self.next = 0
        self.answered: list[tuple[str, int]] = []  # (request id, row)
        self._gate = asyncio.Semaphore(_CONCURRENCY)

    async def send(self, count: int) -> list[dict[str, Any]]:
        rows = [(self.next + i) % len(self.rows) for i in range(count)]
        self.next += count
        answers = await asyncio.gather(*(self._one(i) for i in rows))
        self.answered += [(a["request_id"], i) for a, i in zip(answers, rows, strict=True)]
        return answers

    async def _one(self, row: int) -> dict[str, Any]:
        async with self._gate:
            response = await self.client.post(
                f"/v1/deployments/{DEPLOYMENT}/predict",
                json={"inputs": self.rows[row]},
                headers={_HEADER: str(self.customers[row])},
            )
        body: dict[str, Any] = response.json()
        return {"status": response.status_code, **body}

    async def feedback(self) -> int:
        async def one(request_id: str, row: int) -> None:
            async with self._gate:
                body = {"request_id": request_id, "deployment": DEPLOYMENT}
                await self.client.post("/v1/feedback", json={**body, "label": self.labels[row]})

        await asyncio.gather(*(one(r, i) for r, i in self.answered))
        return len(self.answered)


def _settings(home: Path) -> GatewaySettings:
    return load_settings(
        GatewaySettings,
        home=home,
        database_url=None,
        artifact_uri=None,
        prediction_log_dir=None,
        predictions_uri=None,
        gateway_insecure_local=True,  # in process, no port: nothing to authenticate
        gateway_poll_interval=0.05,
        gateway_max_shadow_in_flight=1024,  # every request of the shadow stage is mirrored
        gateway_canary_decide=False,  # the tour takes the canary's steps itself
    )


async def _await_revision(client: httpx.AsyncClient, revision: int) -> None:
    deadline = time.monotonic() + 30.0
    while True:
        status = (await client.get(f"/v1/deployments/{DEPLOYMENT}")).json()
        if status.get("revision") == revision:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the gateway did not load revision {revision} within 30 s: "
                f"{status.get('load_error') or status}"
            )
        await asyncio.sleep(0.02)


async def _settle(archive: PredictionArchive, records: int) -> None:
    """Wait until the log holds ``records`` predictions (shadow calls are logged after answers).

    Stops early when the count stays put for a second: a shadow copy over the
    in-flight cap is dropped, never logged.
    """
    sql = f"SELECT count(*) AS n FROM predictions WHERE deployment = '{DEPLOYMENT}'"
    seen, since = -1, time.monotonic()
    while (count := archive.query(sql).column("n")[0].as_py()) < records:
        now = time.monotonic()
        if count != seen:
            seen, since = count, now
        elif now - since > 1.0:
            return
        await asyncio.sleep(0.05)


def _said(decision: Decision) -> str:
    where = "shadow" if decision.share == 0 else f"{decision.share:g} %"
    text = f"canary step {where}: {decision.kind}: {'; '.join(decision.reasons)}"
    m = decision.metrics
    if m is None:
        return text
    psi = next((c.value for c in decision.checks if c.name == "prediction_psi"), None)
    return (
        f"{text} (candidate/champion: requests {m.canary_requests}/{m.baseline_requests}, "
        f"errors {m.canary_errors}/{m.baseline_errors}, p95 {m.canary_p95_ms or 0:.1f}/"
        f"{m.baseline_p95_ms or 0:.1f} ms" + ("" if psi is None else f", PSI {psi:.3f}") + ")"
    )


def _retrain(st: Steward, recent: pa.Table, home: Path, say: Say) -> ModelVersion:
    """Train the champion's recipe on ``recent``; register and compile the new version."""
    champion = st.registry.get_version(f"{MODEL}@champion")
    if champion.run_id is None:
        raise InvalidInputError(f"{champion.ref} has no training run to retrain from")
    run = st.tracking.get_run(champion.run_id)
    model = retrain_on(st, run, recent, folder=home / "datasets" / "recent")
    version = st.registry.register(
        model.estimator,
        name=MODEL,
        run_id=model.run.id,
        sample_input=split(recent)[1].select(FEATURES).slice(0, 500),
        compile="onnx",
        description=f"{run.name} retrained on recent data",
    )
    say(
        f"retrained {run.name} on {recent.num_rows} recent rows (run {model.run.id[-8:]}, holdout "
        f"AUC {model.run.metrics['holdout_auc']:.4f}) → {version.ref}, compiled to ONNX"
    )
    return version


async def _canary(
    client: httpx.AsyncClient, traffic: _Traffic, canaries: CanaryService, ref: str, say: Say
) -> None:
    record = await asyncio.to_thread(
        canaries.start,
        DEPLOYMENT,
        ref,
        plan=PLAN,
        variant="retrained",
        reason="demo: try the retrained version",
    )
    say(
        f"canary {record.id[-8:]} of {ref} (variant 'retrained'): shadow → 50 % → 100 %, at "
        f"least {PLAN.min_requests} requests a side per step; errors, p95 latency, PSI vs the "
        "champion"
    )
    logged = len(traffic.answered)
    for revision, count, shadow in ((2, 200, True), (3, 300, False)):
        await _await_revision(client, revision)
        answers = await traffic.send(count)
        logged += 2 * len(answers) if shadow else len(answers)
        await _settle(canaries.archive, logged)  # type: ignore[arg-type]
        decision = await asyncio.to_thread(canaries.evaluate_now, DEPLOYMENT)
        say(_said(decision))
        if decision.kind in ("rollback", "complete"):
            return


async def _tour(st: Steward, data: pa.Table, ref: str, home: Path, say: Say) -> dict[str, Any]:
    deployments = DeploymentService(st.store, st.registry)
    deployed = deployments.create(
        DEPLOYMENT,
        {
            "variants": [{"name": "champion", "model": f"{MODEL}@champion"}],
            "strategy": "sticky",
            "sticky_key": {"source": "header", "name": _HEADER},
        },
        reason="serve the champion",
    )
    settings = _settings(home)
    canaries = CanaryService(deployments, archive=PredictionArchive.from_settings(settings))
    app = create_app(settings, store=st.store)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway") as client,
    ):
        traffic = _Traffic(client, data)
        started = time.perf_counter()
        first = await traffic.send(200)
        say(
            f"deployed card-fraud@champion → {deployed.latest.spec.variants[0].model} as "
            f"{DEPLOYMENT} (gateway in process); {len(first)} requests in "
            f"{time.perf_counter() - started:.2f} s, {sum(a['status'] == 200 for a in first)} "
            "answered, each on disk in the prediction log before its answer"
        )
        await _canary(client, traffic, canaries, ref, say)
        labelled = await traffic.feedback()
        final = deployments.get(DEPLOYMENT)
        await _await_revision(client, final.revision)
    served = ", ".join(f"{v.name}={v.model}" for v in final.latest.spec.primaries)
    say(f"{labelled} labels sent as feedback; {DEPLOYMENT} revision {final.revision}: {served}")
    return {"deployment": deployed.as_dict(), "canary": canaries.status(DEPLOYMENT).to_dict()}


def run_serving(st: Steward, late: pa.Table, *, home: Path, say: Say) -> list[dict[str, Any]]:
    """Retrain on recent data, then serve: champion, canary, feedback, log query.

    The first 60% of ``late`` retrains the champion's recipe; the rest is traffic.
    """
    cut = int(late.num_rows * 0.6)
    version = _retrain(st, late.slice(0, cut), home, say)
    facts = asyncio.run(_tour(st, late.slice(cut), version.ref, home, say))
    table = PredictionArchive.from_settings(_settings(home)).query(LOG_QUERY)
    say(f"steward logs query over the prediction log, joined with feedback: {table.num_rows} rows")
    return [
        {"step": "serving.retrain", **version.as_dict()},
        {"step": "serving.deploy", **facts["deployment"]},
        {"step": "serving.canary", **facts["canary"]},
        {
            "step": "serving.log_query",
            "sql": LOG_QUERY,
            "columns": table.column_names,
            "rows": table.to_pylist(),
        },
    ]
