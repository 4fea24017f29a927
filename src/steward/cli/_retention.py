"""``steward retention``, ``steward holds``, ``steward governance``: keep and delete records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from steward.cli._common import HomeOption, JsonOption, connect_client
from steward.cli._output import console, print_json, print_table
from steward.core import InvalidInputError, load_settings
from steward.governance import (
    DEFAULT_RULES,
    HoldService,
    LegalHold,
    RetentionPlan,
    RetentionRule,
    RetentionService,
    build_inventory,
    build_report,
    inventory_csv,
    parse_rules,
    read_rules,
)
from steward.sdk import Steward
from steward.serving._predlog import PredictionArchive, PredictionLogSettings

__all__ = ["governance_app", "holds_app", "retention_app"]

retention_app = typer.Typer(
    help=(
        "Delete what retention rules let go — never what a legal hold keeps or a model "
        "version still uses. `plan` shows what would go and why; `apply` deletes and audits."
    ),
    no_args_is_help=True,
)
holds_app = typer.Typer(
    help="Legal holds: keep a model, a version, a time range or a data subject from deletion.",
    no_args_is_help=True,
)
governance_app = typer.Typer(
    help="The model inventory and per-version governance reports.", no_args_is_help=True
)

_RULE_HELP = (
    "A rule such as 'runs: archived for 90d' (repeatable). Kinds and conditions: runs "
    "(archived|finished), dataset_versions (unreferenced), model_versions (archived), "
    "predictions (older than). Units d, w, y."
)
RuleOption = typer.Option([], "--rule", help=_RULE_HELP)
RulesFileOption = typer.Option(
    None, "--rules", help='TOML file with a [retention] table, e.g. runs = "archived for 90d".'
)
_CELL = 70


def _client(home: Path | None) -> Steward:
    return connect_client(home)


def _rules(lines: list[str], path: Path | None) -> tuple[RetentionRule, ...]:
    if path is not None and lines:
        raise InvalidInputError("give rules with --rules FILE or with --rule, not both")
    if path is not None:
        return read_rules(path)
    return parse_rules(lines) if lines else DEFAULT_RULES


def _archive(home: Path | None, rules: Sequence[RetentionRule]) -> PredictionArchive | None:
    """The prediction log, when a rule covers predictions."""
    if not any(r.kind == "predictions" for r in rules):
        return None
    overrides: dict[str, Any] = {} if home is None else {"home": home}
    return PredictionArchive.from_settings(load_settings(PredictionLogSettings, **overrides))


def _cut(text: str) -> str:
    return escape(text if len(text) <= _CELL else text[: _CELL - 1] + "…")


def _print_plan(plan: RetentionPlan) -> None:
    rules = ", ".join(str(r) for r in plan.rules)
    rows = [(i.kind, i.id[:16], i.label, i.action, i.reason) for i in plan.items]
    rows += [
        ("predictions", f"{p.deployment}/{p.day.isoformat()}", p.deployment, p.action, p.reason)
        for p in plan.predictions
    ]
    print_table(
        f"retention at {plan.at.date().isoformat()} ({escape(rules)})",
        ["kind", "id", "label", "action", "reason"],
        (
            [
                kind,
                escape(ident),
                _cut(label),
                "[red]delete[/red]" if action == "delete" else "[green]keep[/green]",
                _cut(reason),
            ]
            for kind, ident, label, action, reason in rows
        ),
    )
    if plan.applied:
        console.print("deleted: " + ", ".join(f"{k} {v}" for k, v in plan.deleted.items()))


@retention_app.command("plan")
def plan(
    rule: list[str] = RuleOption,
    rules: Path | None = RulesFileOption,
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Show what retention would delete and what it keeps, with the reason for each; change nothing.

    Needs `admin`. Without --rule or --rules the defaults apply: runs archived for 90d,
    dataset versions unreferenced for 180d, model versions archived for 7y (their
    artifact bytes; the record stays), prediction partitions older than 400d.
    """
    chosen = _rules(rule, rules)
    with _client(home) as st:
        found = RetentionService(st.store, st.registry).plan(
            chosen, predictions=_archive(home, chosen)
        )
    if json:
        print_json(found.as_dict())
        return
    _print_plan(found)


@retention_app.command("apply")
def apply(
    rule: list[str] = RuleOption,
    rules: Path | None = RulesFileOption,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Delete what the rules let go; audited, idempotent; held and used objects stay.

    Runs go with their params, metrics, tags and links; archived model versions lose
    their artifact bytes but keep their record, card and lineage; a blob goes only when
    nothing else refers to it; prediction partitions are purged unless a hold covers
    their date.
    """
    chosen = _rules(rule, rules)
    if not yes and not json:
        typer.confirm("Delete everything the plan lists for deletion?", abort=True)
    with _client(home) as st:
        done = RetentionService(st.store, st.registry).apply(
            chosen, predictions=_archive(home, chosen)
        )
    if json:
        print_json(done.as_dict())
        return
    _print_plan(done)


@retention_app.command("delete-run")
def delete_run(
    run_id: str = typer.Argument(..., help="The run to delete now, whatever its age."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the audit chain)."),
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Delete one run and its unshared artifacts; refused under a legal hold or while used."""
    with _client(home) as st:
        done = RetentionService(st.store, st.registry).delete_run(run_id, reason=reason)
    if json:
        print_json(done.as_dict())
        return
    counts = ", ".join(f"{k} {v}" for k, v in done.deleted.items())
    console.print(f"deleted run {escape(run_id)}: {counts}")


def _moment(text: str | None, *, end: bool) -> datetime | None:
    """``2026-01-31`` (the whole day) or an ISO time; naive times are UTC."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time.max if end else time.min, UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(
            f"{'--end' if end else '--start'} {text!r} is not a date (2026-01-31) or ISO time"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _print_holds(holds: Sequence[LegalHold]) -> None:
    print_table(
        "legal holds",
        ["id", "selector", "reason", "placed", "status"],
        (
            [
                h.id,
                escape(h.selector),
                _cut(h.reason),
                f"{escape(h.placed_by)} {h.placed_at.date().isoformat()}",
                "active" if h.active else f"released by {escape(h.released_by or '')}",
            ]
            for h in holds
        ),
    )


@holds_app.command("place")
def holds_place(
    kind: str = typer.Argument(..., help="model | version | runs | predictions | subject"),
    target: str | None = typer.Argument(
        None, help="NAME, NAME:V, a deployment (predictions) or a data subject id."
    ),
    reason: str = typer.Option(..., "--reason", help="The case or request behind the hold."),
    start: str | None = typer.Option(None, "--start", help="Range start: 2026-01-01 or ISO."),
    end: str | None = typer.Option(None, "--end", help="Range end (inclusive): 2026-01-31."),
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Place a legal hold (needs `admin` or the `legal` role); it is audited.

    Examples: `steward holds place version fraud:3 --reason "case 114"`;
    `steward holds place predictions fraud-api --start 2026-01-01 --end 2026-03-31 --reason ...`;
    `steward holds place subject cust-42 --reason "DSAR 7"` (runs tagged subject=cust-42,
    dataset versions named cust-42, and with a range every prediction partition in it).
    """
    with _client(home) as st:
        hold = HoldService(st.store).place(
            kind,
            target,
            reason=reason,
            start=_moment(start, end=False),
            end=_moment(end, end=True),
        )
    if json:
        print_json(hold.as_dict())
        return
    console.print(f"placed legal hold {hold.id}: {escape(hold.selector)}")


@holds_app.command("list")
def holds_list(
    all_: bool = typer.Option(False, "--all", help="Include released holds."),
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """List legal holds in force (or all of them)."""
    with _client(home) as st:
        found = HoldService(st.store).list_holds(include_released=all_)
    if json:
        print_json([h.as_dict() for h in found])
        return
    _print_holds(found)


@holds_app.command("release")
def holds_release(
    hold_id: str = typer.Argument(..., help="The hold's id (from `steward holds list`)."),
    reason: str = typer.Option(..., "--reason", help="Why it may be lifted."),
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Release a hold (needs `admin` or the `legal` role); its record stays."""
    with _client(home) as st:
        hold = HoldService(st.store).release(hold_id, reason=reason)
    if json:
        print_json(hold.as_dict())
        return
    console.print(f"released legal hold {hold.id}: {escape(hold.selector)}")


@governance_app.command("inventory")
def inventory(
    format_: str = typer.Option("table", "--format", help="table | csv | json"),
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Every model with owners, risk tier, stages, last validation, open requests, violations."""
    if format_ not in ("table", "csv", "json"):
        raise InvalidInputError(f"--format {format_!r} is not known; use table, csv or json")
    with _client(home) as st:
        rows = build_inventory(st.store, st.promotions)
    if json or format_ == "json":
        print_json([r.as_dict() for r in rows])
    elif format_ == "csv":
        typer.echo(inventory_csv(rows), nl=False)
    else:
        print_table(
            "model inventory",
            ["model", "owners", "tier", "stages", "production", "validated", "open", "violations"],
            (
                [
                    escape(r.name),
                    escape(", ".join(r.owners)),
                    r.risk_tier or "[red]none[/red]",
                    " ".join(f"{k[:4]}:{v}" for k, v in r.versions_by_stage.items() if v),
                    r.production_version or "",
                    r.last_validation.date().isoformat() if r.last_validation else "never",
                    r.open_requests,
                    escape("; ".join(r.violations)),
                ]
                for r in rows
            ),
        )


@governance_app.command("report")
def report(
    ref: str = typer.Argument(..., help="The version: fraud:3 or fraud@champion."),
    html: bool = typer.Option(False, "--html", help="Write HTML instead of Markdown."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file."),
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Assemble card, lineage, check evidence, approvals, transitions and audit of one version."""
    with _client(home) as st:
        found = build_report(st.store, st.promotions, ref)
    if json:
        print_json(found.as_dict())
        return
    text = found.to_html() if html else found.to_markdown()
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    console.print(f"wrote {escape(str(output))}")
