"""``steward features``: register definitions, list and show views (online commands joined)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markdown import Markdown
from rich.markup import escape

from steward.cli import _features_online
from steward.cli._common import HomeOption, JsonOption
from steward.cli._features_common import feature_settings, open_feature_store
from steward.cli._output import console, print_json, print_table
from steward.features import ApplyPlan, Change, FeatureView, load_definitions, window_label

__all__ = ["app"]

app = typer.Typer(
    help=(
        "Feature store: register definitions (features.py), list and show views, build "
        "training sets, materialize and read online features."
    ),
    no_args_is_help=True,
)

_COLORS = {"add": "green", "change": "yellow", "remove": "red"}


def _print_change(change: Change) -> None:
    sign = {"add": "+", "change": "~", "remove": "-"}[change.action]
    flag = " [bold red](breaking)[/]" if change.breaking else ""
    color = _COLORS[change.action]
    console.print(f"[{color}]{sign} {change.kind} {escape(change.name)}[/]{flag}")
    for detail in change.details:
        console.print(f"    {escape(detail)}", highlight=False)


def _print_plan(plan: ApplyPlan) -> None:
    if not plan.changed:
        console.print(f"no changes; definitions version {plan.version or 'none'} is current")
        return
    for change in plan.changes:
        _print_change(change)
    breaking = sum(c.breaking for c in plan.changes)
    summary = (
        f"{plan.count('add')} to add, {plan.count('change')} to change, "
        f"{plan.count('remove')} to remove"
    )
    if breaking:
        summary += f", [bold red]{breaking} breaking[/]"
    console.print(summary)
    if plan.dry_run:
        console.print("dry run: nothing recorded")
    else:
        console.print(f"recorded definitions version {plan.version}")
        if plan.docs:
            console.print(f"docs: {Path(plan.docs[0]).parent}")


@app.command("apply")
def apply(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="features.py file or package folder (default: STEWARD_FEATURE_REPO or "
            "./features.py).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan without recording it.")
    ] = False,
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Register feature definitions: diff against the registered ones, print the plan, record.

    Changed dtypes and removed views, features or service members are breaking.
    Every recorded version is audited (features.apply); documentation pages per
    view are regenerated under STEWARD_HOME/features/docs.
    """
    definitions = load_definitions(path or feature_settings(home).feature_repo)
    with open_feature_store(home) as features:
        plan = features.apply(definitions, dry_run=dry_run)
    if json:
        print_json(plan.as_dict())
    else:
        _print_plan(plan)


def _ttl(view: FeatureView) -> str:
    if view.is_window:
        return "windows " + ", ".join(sorted({window_label(a.window) for a in view.aggregations}))
    return window_label(view.ttl) if view.ttl else "none"


def _summary(view: FeatureView) -> dict[str, Any]:
    return {
        "name": view.name,
        "kind": "window" if view.is_window else "features",
        "join_keys": list(view.join_keys),
        "features": list(view.feature_names),
        "pii": [f.name for f in view.output_features if f.pii],
        "ttl": _ttl(view),
        "owner": view.owner,
        "source": view.source.name,
        "description": view.description,
    }


@app.command("list")
def list_views(home: HomeOption = None, json: JsonOption = False) -> None:
    """List the registered feature views."""
    with open_feature_store(home) as features:
        views = features.list_views()
        version = features.definitions_version()
    if json:
        print_json({"version": version, "views": [_summary(v) for v in views]})
        return
    print_table(
        f"{len(views)} feature views (definitions version {version or 'none'})",
        ["view", "keys", "features", "PII", "TTL / windows", "owner", "source"],
        (
            (
                v.name,
                ", ".join(v.join_keys),
                len(v.feature_names),
                sum(f.pii for f in v.output_features) or "",
                _ttl(v),
                v.owner,
                v.source.name,
            )
            for v in views
        ),
    )


@app.command("show")
def show(view: str, home: HomeOption = None, json: JsonOption = False) -> None:
    """Show one feature view: entities, source, TTL, features with dtypes and PII flags."""
    with open_feature_store(home) as features:
        found = features.get_view(view)
        page = features.view_markdown(view)
    if json:
        print_json(
            {**_summary(found), "definition": found.to_dict(), "source": found.source.to_dict()}
        )
        return
    console.print(Markdown(page))


_features_online.register(app)  # get, materialize, status: the online side
