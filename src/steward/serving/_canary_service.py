"""Progressive canaries of deployments: start one, let the analysis move it, abort it, read it.

A canary puts a candidate model beside a deployment's one primary (the
baseline) and walks it through the plan's stages: optionally a shadow stage
(mirrored traffic, never answered), then growing traffic shares.  At each
stage :class:`~steward.serving._canary.CanaryAnalysis` judges the candidate's
window against the baseline's; every decision that changes something is stored,
audited with its numbers and applied as a new deployment revision, all in one
transaction:

- ``promote_step``: a revision with the next share;
- ``complete``: a revision where the candidate alone answers;
- ``rollback`` (a failed check, or an abort): a revision where the baseline
  alone answers, as before the canary.

``hold`` decisions (too little data, or the step is too young) change nothing
and are not stored.  A decision applies only to the step it was made for and
only on top of the revision it was derived from, so two gateway workers
deciding at once cannot double-step, and a deployment changed by hand during
a canary is never overwritten: the canary stops instead.

Starting and aborting need ``deployments:write`` on ``deployment:NAME``, like
any change to the deployment; the analysis's own decisions are made by the
gateway (or whoever runs :meth:`CanaryService.evaluate_now`) as its identity.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from steward.core import ConfigurationError, ConflictError, InvalidInputError, NotFoundError
from steward.serving._canary import CanaryAnalysis, Decision, share_text
from steward.serving._canary_log import log_windows
from steward.serving._canary_plan import CanaryPlan
from steward.serving._canary_specs import baseline_of, origin_spec, stage_spec
from steward.serving._canary_store import (
    CanaryRecord,
    StoredDecision,
    delete_windows,
    find_latest_canary,
    find_running_canary,
    list_canary_decisions,
    list_running_canaries,
    record_decision,
    start_canary,
)
from steward.serving._deployment_models import (
    Deployment,
    DeploymentSettings,
    check_deployment_name,
)
from steward.serving._deployments import WRITE_SCOPE, DeploymentService, append_revision
from steward.serving._predlog import PredictionArchive
from steward.serving._routing_spec import RoutingSpec, Variant
from steward.serving._windows import WindowStats

__all__ = ["CanaryReport", "CanaryService"]


@dataclass(frozen=True)
class CanaryReport:
    """A canary with every decision recorded about it, oldest first."""

    canary: CanaryRecord
    decisions: list[StoredDecision]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            **self.canary.to_dict(),
            "decisions": [
                {"id": d.id, "kind": d.kind, "decided_at": d.decided_at.isoformat(), **d.details}
                for d in self.decisions
            ],
        }


class CanaryService:
    """Start, step, abort and read the progressive canaries of deployments.

    Example:
        >>> canaries = CanaryService(deployments, archive=archive)  # doctest: +SKIP
        >>> canaries.start("fraud-api", "fraud@challenger", plan=CanaryPlan(shadow_first=True))
        >>> canaries.evaluate_now("fraud-api").kind  # doctest: +SKIP
        'promote_step'

    Args:
        deployments: the deployment service (its store acts as the caller).
        archive: the prediction log, for :meth:`evaluate_now`.
    """

    def __init__(
        self, deployments: DeploymentService, *, archive: PredictionArchive | None = None
    ) -> None:
        self.deployments = deployments
        self.store = deployments.store
        self.archive = archive

    # -- changes -----------------------------------------------------------

    def start(
        self,
        name: str,
        candidate: str,
        *,
        plan: CanaryPlan | None = None,
        variant: str = "canary",
        reason: str | None = None,
    ) -> CanaryRecord:
        """Start a canary of model ``candidate`` on deployment ``name``.

        Args:
            name: the deployment; it must have exactly one primary variant.
            candidate: the candidate's model reference (``fraud@challenger``, ``fraud:8``).
            plan: the stages and checks (default :class:`CanaryPlan`).
            variant: the candidate variant's name in the deployment's spec.
            reason: why, for the audit trail.

        Raises:
            PermissionDeniedError: the caller lacks ``deployments:write`` on it.
            NotFoundError: no such deployment or model version.
            ConflictError: a canary already runs there, the deployment has no single
                primary, or the candidate may not be deployed there.
            InvalidInputError: a malformed name, or the candidate is what already serves.
        """
        check_deployment_name(name)
        self.store.authorize(WRITE_SCOPE, resource=f"deployment:{name}")
        plan = plan or CanaryPlan()
        current = self.deployments.get(name)
        spec = current.latest.spec
        baseline = baseline_of(spec, name)
        if variant in spec.names:
            raise InvalidInputError(
                f"deployment {name!r} already has a variant named {variant!r}; give the "
                f"candidate another name (variants: {', '.join(spec.names)})"
            )
        origin = origin_spec(spec, baseline, variant)
        first = stage_spec(origin, baseline, Variant(variant, candidate), plan.stages[0])
        resolved, requested = self.deployments.resolve(name, first, production=current.production)
        served = spec.variant(baseline).model
        if resolved.variant(variant).model == served:
            raise InvalidInputError(
                f"the candidate {candidate!r} is {served}, which the baseline {baseline!r} "
                "already serves; a canary compares two different versions"
            )
        if current.latest.settings.feature_service is None:
            self._check_inputs(served, resolved.variant(variant).model)
        carried = {**current.latest.requested, variant: requested[variant]}
        with self.store.unit_of_work() as uow:
            record = start_canary(
                uow, deployment=name, baseline=baseline, canary=variant, plan=plan
            )
            append_revision(
                uow,
                name,
                resolved,
                _only(carried, resolved),
                _settings_for(current.latest.settings, resolved),
                current.production,
                _reason(record, f"started {share_text(plan.stages[0])}", reason),
                None,
                "canary",
                expected_revision=current.revision,
            )
        return record

    def abort(self, name: str, *, reason: str) -> Decision:
        """Roll the deployment's running canary back now: the baseline alone answers again.

        Raises:
            PermissionDeniedError: the caller lacks ``deployments:write`` on it.
            NotFoundError: no such deployment, or it has no running canary.
            InvalidInputError: no reason given.
        """
        check_deployment_name(name)
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidInputError("aborting a canary needs a reason, for the audit trail")
        self.store.authorize(WRITE_SCOPE, resource=f"deployment:{name}")
        record = self.get_running(name)
        now = self.store.clock.now()
        decision = CanaryAnalysis(record.plan).abort(
            record.state, f"aborted by {self.store.actor}: {reason.strip()}", now
        )
        return self._apply(record, decision, source="abort")

    def evaluate_now(self, name: str, *, apply: bool = True) -> Decision:
        """Analyse the running canary's current step from the prediction log; apply the decision.

        The windows run from the step's start until now (see ``log_windows``).

        Args:
            name: the deployment.
            apply: store and apply the decision (False: only say what it would be).

        Raises:
            PermissionDeniedError: ``apply`` and the caller lacks ``deployments:write``.
            NotFoundError: no such deployment, or it has no running canary.
            ConfigurationError: this service was built without the prediction log.
            ConflictError: another worker decided this step meanwhile.
        """
        check_deployment_name(name)
        if self.archive is None:
            raise ConfigurationError(
                "evaluating a canary from the prediction log needs the log: build "
                "CanaryService(..., archive=PredictionArchive.from_settings(settings))"
            )
        if apply:
            self.store.authorize(WRITE_SCOPE, resource=f"deployment:{name}")
        record = self.get_running(name)
        now = self.store.clock.now()
        canary, baseline = log_windows(self.archive, record, now)
        return self.decide(record, canary, baseline, now=now, source="prediction log", apply=apply)

    def decide(
        self,
        record: CanaryRecord,
        canary: WindowStats,
        baseline: WindowStats,
        *,
        now: datetime,
        source: str,
        apply: bool = True,
    ) -> Decision:
        """Analyse ``record``'s current step from these windows; apply what is not a hold.

        The caller has authorized (the gateway decides as itself).

        Raises:
            ConflictError: the canary moved on meanwhile (another worker decided).
        """
        decision = CanaryAnalysis(record.plan).evaluate(record.state, canary, baseline, now)
        if not apply:
            return decision
        if decision.kind == "hold":
            # A hold changes nothing, unless the deployment no longer runs this canary.
            current = self.deployments.get(record.deployment)
            if _changed_by_hand(record, current) is None:
                return decision
        return self._apply(record, decision, source=source)

    # -- reads -------------------------------------------------------------

    def get_running(self, name: str) -> CanaryRecord:
        """Return the deployment's running canary.

        Raises:
            NotFoundError: no such deployment, or no canary runs there.
        """
        self.deployments.get(name)
        with self.store.database.read() as conn:
            record = find_running_canary(conn, name)
            latest = find_latest_canary(conn, name)
        if record is not None:
            return record
        last = "" if latest is None else f"; its last canary {latest.id} is {latest.state.status}"
        raise NotFoundError(
            f"deployment {name!r} has no running canary{last} "
            f"(start one: steward deployments canary start {name} --candidate REF)"
        )

    def running(self) -> list[CanaryRecord]:
        """Return every running canary, by deployment."""
        with self.store.database.read() as conn:
            return list_running_canaries(conn)

    def status(self, name: str) -> CanaryReport:
        """Return the deployment's newest canary (running or finished) and its decisions.

        Raises:
            NotFoundError: no such deployment, or it never had a canary.
        """
        self.deployments.get(name)
        with self.store.database.read() as conn:
            record = find_latest_canary(conn, name)
            if record is None:
                raise NotFoundError(
                    f"deployment {name!r} has had no canary (start one: steward deployments "
                    f"canary start {name} --candidate REF)"
                )
            return CanaryReport(record, list_canary_decisions(conn, record.id))

    # -- applying a decision ----------------------------------------------

    def _check_inputs(self, baseline: str, candidate: str) -> None:
        """Refuse a candidate that cannot take the records the baseline is sent."""
        registry = self.deployments.registry
        theirs = registry.get_version(candidate).signature
        ours = registry.get_version(baseline).signature
        if theirs is None or ours is None or set(theirs.names) == set(ours.names):
            return
        missing = sorted(set(theirs.names) - set(ours.names))
        extra = sorted(set(ours.names) - set(theirs.names))
        raise InvalidInputError(
            f"the candidate {candidate} reads other inputs than the baseline {baseline} "
            f"(it needs {missing or 'nothing more'}, and does not take {extra or 'nothing less'}); "
            "both are sent the same records, so a canary needs the same input fields"
        )

    def _apply(self, record: CanaryRecord, decision: Decision, *, source: str) -> Decision:
        current = self.deployments.get(record.deployment)
        decision, spec = self._next_spec(record, decision, current)
        with self.store.unit_of_work() as uow:
            record_decision(uow, record.id, decision, source=source)
            delete_windows(uow.conn, record.id)
            if spec is not None:
                resolved, requested = spec
                append_revision(
                    uow,
                    record.deployment,
                    resolved,
                    requested,
                    _settings_for(current.latest.settings, resolved),
                    current.production,
                    _reason(record, _what(decision), None),
                    None,
                    "canary",
                    expected_revision=current.revision,
                )
        return decision

    def _next_spec(
        self, record: CanaryRecord, decision: Decision, current: Deployment
    ) -> tuple[Decision, tuple[RoutingSpec, dict[str, str]] | None]:
        """Return the decision to record and the revision it makes (None: leave the spec)."""
        spec = current.latest.spec
        analysis = CanaryAnalysis(record.plan)
        changed = _changed_by_hand(record, current)
        if changed is not None:  # stop the canary, and leave that change alone
            return analysis.abort(record.state, changed, decision.decided_at), None
        origin = origin_spec(spec, record.baseline, record.canary)
        candidate = spec.variant(record.canary)
        requested = dict(current.latest.requested)
        if decision.kind == "rollback":
            return decision, (origin, _only(requested, origin))
        target = stage_spec(origin, record.baseline, candidate, decision.next_share)
        try:
            resolved, _ = self.deployments.resolve(
                record.deployment, target, production=current.production
            )
        except (ConflictError, NotFoundError) as exc:  # e.g. the candidate was archived
            stop = analysis.abort(
                record.state, f"the next stage cannot be served: {exc}", decision.decided_at
            )
            return stop, (origin, _only(requested, origin))
        return decision, (resolved, _only(requested, resolved))


def _changed_by_hand(record: CanaryRecord, current: Deployment) -> str | None:
    """Say how the deployment's spec stopped being this canary's, or None if it still is."""
    spec = current.latest.spec
    try:
        origin_spec(spec, record.baseline, record.canary)
        spec.variant(record.canary)
    except (ConflictError, InvalidInputError) as exc:
        return f"revision {current.revision} of the deployment was not made by the canary: {exc}"
    return None


def _settings_for(settings: DeploymentSettings, spec: RoutingSpec) -> DeploymentSettings:
    # Per-variant settings follow their variant: a variant the stage drops takes them along.
    kept = {k: v for k, v in settings.variant_timeout_ms.items() if k in spec.names}
    if kept == settings.variant_timeout_ms:
        return settings
    return replace(settings, variant_timeout_ms=kept)


def _only(requested: dict[str, str], spec: RoutingSpec) -> dict[str, str]:
    # The references as requested, for the variants the spec keeps (concrete refs otherwise).
    return {v.name: requested.get(v.name, v.model) for v in spec.variants}


def _what(decision: Decision) -> str:
    if decision.kind == "rollback":
        return "rolled back; the baseline alone answers"
    if decision.kind == "complete":
        return "complete; the candidate alone answers"
    start = "shadow" if decision.share == 0 else f"{decision.share:g} %"
    return f"moved from {start} to {decision.next_share:g} %"


def _reason(record: CanaryRecord, what: str, reason: str | None) -> str:
    text = f"canary {record.id} of {record.canary!r}: {what}"
    return text if not reason else f"{text} ({reason})"
