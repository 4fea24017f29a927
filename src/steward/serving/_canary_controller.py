"""One gateway worker's part in progressive canaries: feed the windows, publish them, decide.

While a deployment has a running canary, every request its baseline answers
and every request (or shadow call) of its candidate is counted in this worker's
windows of the current step by :meth:`CanaryController.observe`, on the hot
path: a dict lookup when no canary runs, a lock and a few additions when one
does.  Test traffic (``X-Steward-Variant`` overrides) never counts.

Every ``gateway_canary_interval`` seconds the controller runs one round
(:meth:`CanaryController.tick`, in a thread):

1. read the running canaries (one query); a canary that moved to a new step
   gets fresh windows;
2. publish this worker's windows (one row per worker and step, replaced);
3. unless ``gateway_canary_decide`` is off, merge every worker's windows of
   each canary's step and let :class:`CanaryService` decide.  Every worker may
   try; a decision applies only to the step it was made for, so the first
   one wins and the others get a ConflictError, which they skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from steward.core import ConflictError, InvalidInputError, NotFoundError
from steward.serving._canary import Decision
from steward.serving._canary_log import prediction_samples
from steward.serving._canary_service import CanaryService
from steward.serving._canary_store import CanaryRecord, merged_window, publish_window
from steward.serving._windows import WindowStats

__all__ = ["CanaryController"]

_log = logging.getLogger("steward.serving.canary")


@dataclass
class _Active:
    """A running canary as this worker sees it, with its windows of the current step."""

    record: CanaryRecord
    canary: WindowStats = field(default_factory=WindowStats)
    baseline: WindowStats = field(default_factory=WindowStats)

    @property
    def step(self) -> int:
        return self.record.state.step_index


class CanaryController:
    """Feed, publish and judge the windows of running canaries for one gateway worker.

    Args:
        service: the canary service (its store's identity makes the decisions).
        worker_id: names this worker's published windows.
        decide: whether this worker decides (False: it only feeds and publishes).
        interval_s: seconds between rounds of :meth:`run`.
    """

    def __init__(
        self,
        service: CanaryService,
        *,
        worker_id: str = "worker",
        decide: bool = True,
        interval_s: float = 5.0,
    ) -> None:
        self.service = service
        self.worker_id = worker_id
        self.decide = decide
        self.interval_s = interval_s
        self._active: dict[str, _Active] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def active(self) -> Mapping[str, CanaryRecord]:
        """The running canaries this worker feeds, by deployment."""
        return {name: a.record for name, a in self._active.items()}

    # -- the hot path ------------------------------------------------------

    def observe(
        self,
        deployment: str,
        variant: str,
        latency_ms: float,
        *,
        shadow: bool = False,
        test: bool = False,
        error: bool = False,
        outputs: Any = None,
    ) -> None:
        """Count one served request (or shadow call) if a canary of ``deployment`` needs it.

        Args:
            deployment: the deployment that served it.
            variant: the variant that answered (or ran in shadow).
            latency_ms: its latency.
            shadow: it was a shadow call.
            test: it was test traffic (never counted).
            error: the model failed (a fallback answered, or nothing did).
            outputs: the model's outputs, one per row (ignored on error).
        """
        active = self._active.get(deployment)
        if active is None or test:
            return
        if variant == active.record.canary:
            window = active.canary
        elif variant == active.record.baseline and not shadow:
            window = active.baseline
        else:
            return
        samples = () if error or outputs is None else prediction_samples(outputs)
        try:
            window.record(max(latency_ms, 0.0), error=error, samples=samples)
        except InvalidInputError:  # a malformed sample must never fail a served request
            _log.warning("canary of %s: could not count a request of %s", deployment, variant)

    # -- rounds ------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> list[Decision]:
        """Run one round: refresh the running canaries, publish the windows, decide.

        Blocking (database and analysis): the gateway runs it in a thread.

        Returns:
            The decisions this worker made (holds included), in deployment order.
        """
        now = now or self.service.store.clock.now()
        self._refresh()
        self._publish(now)
        if not self.decide:
            return []
        decisions = []
        for name, active in sorted(self._active.items()):
            decision = self._decide(active, now)
            if decision is not None:
                decisions.append(decision)
                self._advance(name, active, decision)
        return decisions

    def _refresh(self) -> None:
        running = {r.deployment: r for r in self.service.running()}
        fresh: dict[str, _Active] = {}
        for name, record in running.items():
            current = self._active.get(name)
            same_step = (
                current is not None
                and current.record.id == record.id
                and current.step == record.state.step_index
            )
            fresh[name] = current if same_step and current is not None else _Active(record)
        self._active = fresh  # one assignment: the hot path sees the old dict or the new one

    def _publish(self, now: datetime) -> None:
        busy = [a for a in self._active.values() if a.canary.requests or a.baseline.requests]
        if not busy:
            return
        with self.service.store.database.write() as conn:
            for active in busy:
                publish_window(
                    conn,
                    active.record.id,
                    active.step,
                    self.worker_id,
                    {"canary": active.canary, "baseline": active.baseline},
                    now,
                )

    def _decide(self, active: _Active, now: datetime) -> Decision | None:
        record = active.record
        with self.service.store.database.read() as conn:
            merged = merged_window(conn, record.id, active.step)
        canary = merged.get("canary", (WindowStats(), 0))[0]
        baseline = merged.get("baseline", (WindowStats(), 0))[0]
        workers = max((n for _, n in merged.values()), default=0)
        try:
            decision = self.service.decide(
                record, canary, baseline, now=now, source=f"gateway ({workers} worker(s))"
            )
        except (ConflictError, NotFoundError) as exc:  # another worker decided first
            _log.info("canary %s: %s", record.id, exc)
            return None
        if decision.kind != "hold":
            _log.info(
                "canary %s of %s: %s (%s)",
                record.id,
                record.deployment,
                decision.kind,
                "; ".join(decision.reasons),
            )
        return decision

    def _advance(self, name: str, active: _Active, decision: Decision) -> None:
        if decision.kind == "hold":
            return
        if decision.state.status != "running":
            self._active.pop(name, None)
            return
        # Start the next step's windows now rather than at the next round.
        self._active[name] = _Active(replace(active.record, state=decision.state))

    # -- the background task -----------------------------------------------

    def start(self, worker_id: str | None = None) -> None:
        """Start the rounds in the background (on the running event loop)."""
        if worker_id is not None:
            self.worker_id = worker_id
        self._task = asyncio.create_task(self._run(), name="steward-gateway-canary")

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.tick)
            except Exception:  # the database may be away for a moment; keep serving
                _log.exception("a canary round failed; the next one tries again")
            await asyncio.sleep(self.interval_s)

    async def close(self) -> None:
        """Stop the rounds."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
