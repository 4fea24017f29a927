"""``steward policy``: promotion policies as code."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from steward.cli._common import JsonOption
from steward.cli._output import console, print_json
from steward.governance import Policy, PolicyError, read_policy

app = typer.Typer(help="Check and inspect promotion policies.", no_args_is_help=True)


@app.command("validate")
def validate(
    path: Path = typer.Argument(..., help="Policy file (.yaml, .yml or .toml)."),
    json: JsonOption = False,
) -> None:
    """Check a policy file; list every problem with its line number, or summarize its gates.

    Exits with status 2 when the policy is invalid.
    """
    try:
        policy, _ = read_policy(path)
    except PolicyError as exc:
        if json:
            print_json(
                {
                    "valid": False,
                    "file": str(path),
                    "problems": [
                        {"line": p.line, "path": p.path, "message": p.message} for p in exc.problems
                    ],
                }
            )
        else:
            console.print(f"[red]{escape(str(path))} is not a valid policy[/red]", soft_wrap=True)
            for problem in exc.problems:
                console.print(f"  {escape(str(problem))}", soft_wrap=True)
        raise typer.Exit(2) from None
    if json:
        print_json({"valid": True, "file": str(path), "digest": policy.digest, **_summary(policy)})
        return
    console.print(
        f"[green]{escape(str(path))}: policy {policy.policy!r} is valid[/green]", soft_wrap=True
    )
    console.print(f"digest {policy.digest}")
    console.print(f"tiers  {', '.join(policy.tiers)}; requests expire after {policy.request_ttl}")
    for tier in policy.tiers:
        for stage in ("staging", "production"):
            gate = policy.gate(tier, stage)
            if not gate.checks and not gate.approvals:
                continue
            console.print(f"[bold]{tier} → {stage}[/bold]")
            for check in gate.checks:
                console.print(f"  check     {escape(check.describe())}")
            for rule in gate.approvals:
                console.print(f"  approval  {rule.count} x {escape(rule.role)}")
            if gate.separation_of_duties:
                console.print("  separation of duties: the author cannot approve")
    for window in policy.freeze_windows:
        console.print(f"freeze  {escape(window.describe())} ({', '.join(window.stages)})")


def _summary(policy: Policy) -> dict[str, object]:
    return {
        "policy": policy.policy,
        "tiers": policy.tiers,
        "gates": {
            tier: {
                stage: {
                    "checks": [check.describe() for check in policy.gate(tier, stage).checks],
                    "approvals": [
                        {"role": rule.role, "count": rule.count}
                        for rule in policy.gate(tier, stage).approvals
                    ],
                }
                for stage in ("staging", "production")
            }
            for tier in policy.tiers
        },
        "freeze_windows": [window.describe() for window in policy.freeze_windows],
    }
