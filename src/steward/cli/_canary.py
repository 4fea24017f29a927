"""``steward deployments canary ...``: start, follow, step and abort progressive canaries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from steward.cli._common import HomeOption, JsonOption, connect_client
from steward.cli._output import console, print_json, print_table
from steward.core import InvalidInputError, load_settings
from steward.sdk import Steward
from steward.serving import (
    CanaryPlan,
    CanaryReport,
    CanaryService,
    Decision,
    DeploymentService,
    PredictionArchive,
    PredictionLogSettings,
)

__all__ = ["canary_app", "print_decisions"]

canary_app = typer.Typer(
    help=(
        "Progressive canaries: a candidate model beside a deployment's primary, moved through "
        "traffic steps (optionally after a shadow stage) by an analysis of errors, p95 latency "
        "and prediction drift; every decision is audited and applied as a new revision."
    ),
    no_args_is_help=True,
)

ReasonOption = Annotated[
    str | None, typer.Option("--reason", help="Why, for the audit trail.", show_default=False)
]


def _service(st: Steward, home: Path | None) -> CanaryService:
    overrides: dict[str, Any] = {} if home is None else {"home": home}
    archive = PredictionArchive.from_settings(load_settings(PredictionLogSettings, **overrides))
    return CanaryService(DeploymentService(st.store, st.registry), archive=archive)


def _steps(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise InvalidInputError(
            f"--plan {text!r} must be percentages separated by commas, e.g. 5,10,25,50,100"
        ) from None


@canary_app.command("start")
def start(
    name: str,
    candidate: Annotated[
        str,
        typer.Option(
            "--candidate", help="The model to try: fraud@challenger or fraud:8.", show_default=False
        ),
    ],
    plan: Annotated[
        str, typer.Option("--plan", help="Traffic shares in percent, the last one 100.")
    ] = "5,10,25,50,100",
    shadow_first: Annotated[
        bool,
        typer.Option("--shadow-first", help="Mirror traffic to the candidate before any share."),
    ] = False,
    variant: Annotated[
        str, typer.Option("--variant", help="The candidate variant's name in the deployment.")
    ] = "canary",
    min_requests: Annotated[
        int, typer.Option("--min-requests", min=1, help="Requests each side needs per step.")
    ] = 500,
    min_samples: Annotated[
        int,
        typer.Option("--min-samples", min=1, help="Prediction samples each side needs for PSI."),
    ] = 200,
    min_step_seconds: Annotated[
        float, typer.Option("--min-step-seconds", min=0, help="The least time a step runs.")
    ] = 300.0,
    max_error_rate_delta: Annotated[
        float,
        typer.Option(
            "--max-error-rate-delta", help="Error rate the candidate may add (0.01: 1 %)."
        ),
    ] = 0.01,
    max_p95_ratio: Annotated[
        float, typer.Option("--max-p95-ratio", help="Candidate p95 latency / baseline's, at most.")
    ] = 1.5,
    max_psi: Annotated[
        float | None,
        typer.Option("--max-psi", help="PSI of the predictions, at most (omit with --no-psi)."),
    ] = 0.2,
    no_psi: Annotated[bool, typer.Option("--no-psi", help="Turn the PSI check off.")] = False,
    reason: ReasonOption = None,
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Start a canary: steward deployments canary start fraud-api --candidate fraud@challenger."""
    canary_plan = CanaryPlan(
        steps=_steps(plan),
        min_requests=min_requests,
        min_prediction_samples=min_samples,
        min_step_seconds=min_step_seconds,
        max_error_rate_delta=max_error_rate_delta,
        max_p95_latency_ratio=max_p95_ratio,
        max_psi=None if no_psi else max_psi,
        shadow_first=shadow_first,
    )
    with connect_client(home) as st:
        record = _service(st, home).start(
            name, candidate, plan=canary_plan, variant=variant, reason=reason
        )
    if json:
        print_json(record.to_dict())
        return
    stages = " → ".join("shadow" if s == 0 else f"{s:g} %" for s in canary_plan.stages)
    console.print(
        f"canary {record.id} of {record.canary!r} against {record.baseline!r} on {name} "
        f"started: {stages}"
    )


@canary_app.command("status")
def status(name: str, home: HomeOption = None, json: JsonOption = False) -> None:
    """Show the deployment's newest canary, its decisions, and (if running) what it would decide."""
    with connect_client(home) as st:
        service = _service(st, home)
        report = service.status(name)
        preview = None
        if report.canary.state.status == "running":
            preview = service.evaluate_now(name, apply=False)
    if json:
        print_json({**report.to_dict(), "now": None if preview is None else preview.to_dict()})
        return
    _print_report(report)
    if preview is not None:
        console.print(
            f"now (from the prediction log): {preview.kind}: {'; '.join(preview.reasons)}"
        )


@canary_app.command("step")
def step(
    name: str,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be decided; change nothing.")
    ] = False,
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Analyse the running canary's step from the prediction log now and apply the decision."""
    with connect_client(home) as st:
        decision = _service(st, home).evaluate_now(name, apply=not dry_run)
    _print_decision(decision, json)


@canary_app.command("abort")
def abort(
    name: str,
    reason: Annotated[
        str, typer.Option("--reason", help="Why, for the audit trail.", show_default=False)
    ],
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Roll the running canary back now: the baseline alone answers again."""
    with connect_client(home) as st:
        decision = _service(st, home).abort(name, reason=reason)
    _print_decision(decision, json)


def _print_decision(decision: Decision, json: bool) -> None:
    if json:
        print_json(decision.to_dict())
        return
    console.print(
        f"{decision.kind}: {_move(decision.kind, decision.share, decision.next_share)}; "
        + "; ".join(decision.reasons)
    )


def _share(share: float) -> str:
    return "shadow" if share == 0 else f"{share:g} %"


def _move(kind: str, share: float, next_share: float) -> str:
    def short(value: float) -> str:
        return "shadow" if value == 0 else f"{value:g}%"

    after = "0%" if kind == "rollback" else short(next_share)
    return f"{short(share)}→{after}"


def _print_report(report: CanaryReport) -> None:
    canary = report.canary
    state = canary.state
    running_shadow = state.status == "running" and state.share == 0
    where = "in shadow" if running_shadow else f"at {state.share:g} %"
    console.print(
        f"canary {canary.id} on {canary.deployment}: {canary.canary!r} against "
        f"{canary.baseline!r}, {state.status.replace('_', ' ')} {where} "
        f"(started by {canary.created_by} {canary.created_at:%Y-%m-%d %H:%M:%S})"
    )
    print_decisions(
        f"{len(report.decisions)} decisions (pairs: canary/baseline)",
        [d.details for d in report.decisions],
    )


def print_decisions(title: str, decisions: list[dict[str, Any]], *, brief: bool = False) -> None:
    """Print stored canary decisions (``Decision.to_dict`` forms) as a table, oldest first.

    Pairs read canary/baseline; ``brief`` leaves out the time of day.
    """
    columns = ["decision", "share", "requests", "errors", "p95 ms", "PSI"]
    rows = [_decision_row(d) for d in decisions]
    if not brief:
        columns = ["at", *columns]
        rows = [[d["decided_at"][11:19], *row] for d, row in zip(decisions, rows, strict=True)]
    print_table(title, columns, rows)


def _decision_row(details: dict[str, Any]) -> list[str]:
    metrics = details.get("metrics") or {}
    psi = next((c["value"] for c in details["checks"] if c["name"] == "prediction_psi"), None)

    def pair(key: str, fmt: str = "{}") -> str:
        a, b = metrics.get(f"canary_{key}"), metrics.get(f"baseline_{key}")
        return "" if a is None and b is None else f"{_fmt(a, fmt)}/{_fmt(b, fmt)}"

    return [
        details["kind"],
        _move(details["kind"], details["share"], details["next_share"]),
        pair("requests"),
        pair("errors"),
        pair("p95_ms", "{:.1f}"),
        "" if psi is None else f"{psi:.3f}",
    ]


def _fmt(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)
