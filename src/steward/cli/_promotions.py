"""``steward promote`` and ``steward approvals``: promotion requests and sign-offs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from steward.cli._common import HomeOption, JsonOption, connect_client
from steward.cli._output import console, print_json, print_table
from steward.core import InvalidInputError
from steward.governance import PromotionPlan, PromotionRequest
from steward.sdk import Steward

__all__ = ["approvals_app", "promote"]

approvals_app = typer.Typer(
    help="Promotion requests waiting for sign-off: list, show, approve, reject.",
    no_args_is_help=True,
)

_STYLE = {
    "executed": "green",
    "pending": "yellow",
    "approved": "cyan",
    "checks_failed": "red",
    "rejected": "red",
    "failed": "red",
    "expired": "dim",
}


def _client(home: Path | None) -> Steward:
    return connect_client(home)


def _data(pairs: list[str]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        role, sep, path = pair.partition("=")
        if not sep or not role or not path:
            raise InvalidInputError(
                f"--data takes ROLE=PATH (e.g. recent=recent.parquet), got {pair!r}"
            )
        found[role] = path
    return found


def _print_checks(checks: list[dict[str, Any]]) -> None:
    for check in checks:
        mark = "[green]pass[/green]" if check["passed"] else "[red]FAIL[/red]"
        console.print(f"  {mark}  {escape(check['description'])} — {escape(check['detail'])}")


def _print_plan(plan: PromotionPlan) -> None:
    console.print(
        f"[bold]{plan.ref} → {plan.target_stage}[/bold] (tier {plan.risk_tier}, "
        f"policy version {plan.policy_version})"
    )
    _print_checks([c.to_dict() for c in plan.checks])
    for rule in plan.approvals:
        console.print(f"  needs   {rule.count} approval(s) from {escape(rule.role)}")
    for name, why in plan.excluded.items():
        console.print(f"  [dim]{escape(name)} may not approve: {escape(why)}[/dim]")
    if plan.blocked_by:
        console.print("[red]would be refused:[/red]")
        for reason in plan.blocked_by:
            console.print(f"  {escape(reason)}")
    else:
        console.print("[green]checks pass; the request would wait only for its sign-offs[/green]")


def _print_request(request: PromotionRequest) -> None:
    style = _STYLE.get(request.status, "")
    console.print(
        f"request {request.id}: {request.ref} → {request.target_stage} "
        f"[{style}]{request.status}[/{style}]"
    )
    console.print(f"  reason  {escape(request.reason)} (by {escape(request.requested_by)})")
    _print_checks(list(request.checks))
    for decision in request.decisions:
        console.print(
            f"  {decision['decision']}d by {escape(decision['approver'])} "
            f"({', '.join(decision['roles'])}): {escape(decision['comment'])}"
        )
    if request.status == "pending":
        console.print(f"  waiting for {request.tally.describe_missing()}")
        console.print(f"  expires {request.expires_at:%Y-%m-%d %H:%M} UTC")
    if request.outcome:
        console.print(f"  outcome {escape(request.outcome)}")


def promote(
    ref: str = typer.Argument(..., help="The version: NAME:VERSION or NAME@ALIAS."),
    to: str = typer.Option(..., "--to", help="Target stage: staging or production."),
    reason: str = typer.Option("", "--reason", "-r", help="Why (required unless --dry-run)."),
    alias: list[str] = typer.Option(
        [], "--alias", help="Alias to move here when it executes (repeatable), e.g. champion."
    ),
    emergency: bool = typer.Option(
        False, "--emergency", help="Through a freeze window, with the policy's extra approvals."
    ),
    data: list[str] = typer.Option(
        [], "--data", help="ROLE=PATH data for data checks, e.g. recent=last_week.parquet."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show which gates would pass or fail; store nothing."
    ),
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Ask to move a version to staging or production under the policy in force.

    The automated checks run now and their evidence is stored; the request then
    waits for the approvals its risk tier needs (`steward approvals`), and executes
    (stage and aliases move together) when the last one arrives. Exits 4 when the
    checks fail.
    """
    with _client(home) as st:
        if dry_run:
            plan = st.promotions.plan(ref, to, emergency=emergency, data=_data(data))
            if json:
                print_json(plan.as_dict())
            else:
                _print_plan(plan)
            return
        request = st.promotions.request(
            ref, to, reason=reason, aliases=alias, emergency=emergency, data=_data(data)
        )
    if json:
        print_json(request.as_dict())
    else:
        _print_request(request)
    if request.status == "checks_failed":
        raise typer.Exit(4)


@approvals_app.command("list")
def approvals_list(
    status: str | None = typer.Option(
        "pending", "--status", help="pending (default), executed, rejected, ... or 'all'."
    ),
    model: str | None = typer.Option(None, "--model", help="Only this model's requests."),
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """List promotion requests (pending ones by default), newest first."""
    with _client(home) as st:
        found = st.promotions.list_requests(status=None if status == "all" else status, model=model)
    if json:
        print_json([r.as_dict() for r in found])
        return
    print_table(
        "promotion requests",
        ["id", "version", "to", "status", "waiting for", "requested by", "created"],
        (
            (
                r.id,
                r.ref,
                r.target_stage,
                r.status,
                r.tally.describe_missing() if r.status == "pending" else "",
                r.requested_by,
                f"{r.created_at:%Y-%m-%d %H:%M}",
            )
            for r in found
        ),
    )


@approvals_app.command("show")
def approvals_show(
    request_id: str = typer.Argument(..., help="Request id."),
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Show a request: its checks with evidence, decisions and what it waits for."""
    with _client(home) as st:
        request = st.promotions.get(request_id)
    if json:
        print_json(request.as_dict())
    else:
        _print_request(request)


@approvals_app.command("approve")
def approvals_approve(
    request_id: str = typer.Argument(..., help="Request id."),
    comment: str = typer.Option("", "--comment", "-m", help="Why you approve."),
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Approve a pending request with one of the roles it needs."""
    with _client(home) as st:
        request = st.promotions.approve(request_id, comment=comment)
    if json:
        print_json(request.as_dict())
    else:
        _print_request(request)


@approvals_app.command("reject")
def approvals_reject(
    request_id: str = typer.Argument(..., help="Request id."),
    comment: str = typer.Option(..., "--comment", "-m", help="Why you reject (required)."),
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Reject a pending request; it is closed."""
    with _client(home) as st:
        request = st.promotions.reject(request_id, comment=comment)
    if json:
        print_json(request.as_dict())
    else:
        _print_request(request)


@approvals_app.command("execute")
def approvals_execute(
    request_id: str = typer.Argument(..., help="Request id."),
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Execute a fully approved request that a freeze window held (needs models:promote)."""
    with _client(home) as st:
        request = st.promotions.execute(request_id)
    if json:
        print_json(request.as_dict())
    else:
        _print_request(request)
