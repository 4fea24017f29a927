"""``steward policy``: promotion policies as code."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from steward.cli._common import HomeOption, JsonOption, connect_client
from steward.cli._output import console, print_json, print_table
from steward.governance import Policy, PolicyError, read_policy

app = typer.Typer(help="Promotion policies: validate, apply, show, history.", no_args_is_help=True)


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


@app.command("apply")
def apply(
    path: Path = typer.Argument(..., help="Policy file (.yaml, .yml or .toml)."),
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Make a policy file the policy in force (a new version; the same content changes nothing).

    From the first applied policy on, moves into staging or production go through
    `steward promote`. Needs the admin scope.
    """
    with connect_client(home) as st:
        before = st.promotions.current_policy().version
        applied = st.promotions.apply_policy(path)
    if json:
        print_json({**applied.as_dict(), "changed": applied.version != before})
    elif applied.version == before:
        console.print(f"policy {applied.policy.policy!r} unchanged (version {applied.version})")
    else:
        console.print(
            f"policy {applied.policy.policy!r} is now in force as version {applied.version} "
            f"(digest {applied.digest[:12]})"
        )


@app.command("show")
def show(
    version: int | None = typer.Option(None, "--version", help="A past version (default: now)."),
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Print the policy in force (or a past version) as it was written."""
    with connect_client(home) as st:
        if version is None:
            found = st.promotions.current_policy()
        else:
            matches = [p for p in st.promotions.policy_history() if p.version == version]
            if not matches:
                raise typer.BadParameter(f"no policy version {version}", param_hint="--version")
            found = matches[0]
    if json:
        print_json({**found.as_dict(), "document": found.document, **_summary(found.policy)})
    elif found.version == 0:
        console.print("no policy applied yet: stage moves need no checks or approvals")
    else:
        console.print(found.document, markup=False, highlight=False)


@app.command("history")
def history(home: HomeOption = None, json: JsonOption = False) -> None:
    """List every policy version applied, newest first."""
    with connect_client(home) as st:
        versions = st.promotions.policy_history()
    if json:
        print_json([v.as_dict() for v in versions])
        return
    print_table(
        "policy versions",
        ["version", "name", "digest", "applied by", "applied at"],
        (
            (
                v.version,
                v.policy.policy,
                v.digest[:12],
                v.created_by,
                f"{v.created_at:%Y-%m-%d %H:%M}" if v.created_at else "",
            )
            for v in versions
        ),
    )
