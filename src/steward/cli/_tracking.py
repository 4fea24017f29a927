"""``steward experiments``, ``steward runs`` and ``steward gc``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from steward.cli._common import HomeOption, JsonOption, connect_client
from steward.cli._output import console, print_json, print_table
from steward.sdk import Steward

experiments_app = typer.Typer(help="List, inspect and archive experiments.", no_args_is_help=True)
runs_app = typer.Typer(help="List, inspect, compare and reproduce runs.", no_args_is_help=True)


def _client(home: Path | None) -> Steward:
    return connect_client(home)


@experiments_app.command("list")
def experiments_list(
    home: HomeOption = None,
    json: JsonOption = False,
    archived: bool = typer.Option(False, "--archived", help="Include archived experiments."),
) -> None:
    """List experiments, newest first."""
    with _client(home) as st:
        found = st.tracking.list_experiments(include_archived=archived)
    if json:
        print_json([e.as_dict() for e in found])
        return
    print_table(
        f"{len(found)} experiments",
        ["name", "owner", "created", "archived", "description"],
        (
            (
                e.name,
                e.owner,
                f"{e.created_at:%Y-%m-%d %H:%M}",
                "yes" if e.archived else "",
                e.description,
            )
            for e in found
        ),
    )


@experiments_app.command("show")
def experiments_show(name: str, home: HomeOption = None, json: JsonOption = False) -> None:
    """Show an experiment and its latest runs."""
    with _client(home) as st:
        exp = st.tracking.get_experiment(name)
        page = st.tracking.search_runs(exp.id, page_size=20)
    if json:
        print_json({**exp.as_dict(), "runs": [r.as_dict() for r in page.items]})
        return
    console.print(
        f"[bold]{exp.name}[/] ({exp.id}) owner {exp.owner}, created {exp.created_at:%Y-%m-%d %H:%M}"
    )
    if exp.description:
        console.print(exp.description)
    _runs_table(page.items, title="latest runs")


def _set_archived(kind: str, key: str, archived: bool, home: Path | None, json: bool) -> None:
    with _client(home) as st:
        if kind == "experiment":
            found: Any = st.tracking.set_experiment_archived(key, archived)
            label = found.name
        else:
            found = st.tracking.set_run_archived(key, archived)
            label = found.id
    if json:
        print_json(found.as_dict())
    else:
        console.print(f"{kind} {label} {'archived' if archived else 'restored'}")


@experiments_app.command("archive")
def experiments_archive(name: str, home: HomeOption = None, json: JsonOption = False) -> None:
    """Archive an experiment: hidden from lists, closed to new runs; nothing is deleted."""
    _set_archived("experiment", name, True, home, json)


@experiments_app.command("restore")
def experiments_restore(name: str, home: HomeOption = None, json: JsonOption = False) -> None:
    """Restore an archived experiment."""
    _set_archived("experiment", name, False, home, json)


def _runs_table(found: list[Any], *, title: str) -> None:
    metric_keys = sorted({k for r in found for k in r.metrics})[:6]
    print_table(
        title,
        ["id", "name", "status", "started", *metric_keys],
        (
            (
                r.id,
                r.name,
                r.status.value,
                f"{r.start_time:%Y-%m-%d %H:%M:%S}",
                *(f"{r.metrics[k]:.4g}" if k in r.metrics else "" for k in metric_keys),
            )
            for r in found
        ),
    )


@runs_app.command("list")
def runs_list(
    experiment: str | None = typer.Argument(None, help="Experiment name or id (default: all)."),
    home: HomeOption = None,
    json: JsonOption = False,
    filter_text: str | None = typer.Option(
        None, "--filter", "-f", help="e.g. \"metrics.auc > 0.8 and params.model = 'hgb'\""
    ),
    order_by: list[str] = typer.Option(
        [], "--order-by", "-o", help="e.g. 'metrics.auc DESC' (repeatable)."
    ),
    limit: int = typer.Option(50, min=1, max=1000, help="At most this many runs."),
    archived: bool = typer.Option(False, "--archived", help="Include archived runs."),
) -> None:
    """List runs, filtered and ordered in the database."""
    with _client(home) as st:
        page = st.tracking.search_runs(
            experiment,
            filter=filter_text,
            order_by=order_by,
            page_size=limit,
            include_archived=archived,
        )
    if json:
        print_json(
            {"runs": [r.as_dict() for r in page.items], "next_page_token": page.next_page_token}
        )
        return
    _runs_table(page.items, title=f"{len(page.items)} runs")


@runs_app.command("show")
def runs_show(run_id: str, home: HomeOption = None, json: JsonOption = False) -> None:
    """Show a run: params, latest metrics, tags, datasets, artifacts."""
    with _client(home) as st:
        run = st.tracking.get_run(run_id)
        datasets = st.tracking.run_datasets(run_id)
        artifacts = st.tracking.list_artifacts(run_id)
    if json:
        print_json(
            {**run.as_dict(), "datasets": [d.as_dict() for d in datasets], "artifacts": artifacts}
        )
        return
    console.print(
        f"[bold]{run.name}[/] {run.id}  [{run.status.value}]  experiment {run.experiment_name}"
    )
    console.print(
        f"user {run.user}, started {run.start_time:%Y-%m-%d %H:%M:%S}, "
        f"wall {run.wall_seconds or 0:.2f}s, cpu {run.cpu_seconds or 0:.2f}s"
    )
    for title, values in (("params", run.params), ("metrics", run.metrics), ("tags", run.tags)):
        if values:
            print_table(title, ["key", "value"], sorted(values.items()))
    if datasets:
        print_table(
            "datasets",
            ["role", "name", "digest", "rows", "columns"],
            ((d.role, d.name, d.digest[:23], d.num_rows, d.num_columns) for d in datasets),
        )
    if artifacts:
        print_table(
            "artifacts",
            ["path", "digest", "bytes"],
            ((a["path"], a["digest"][:16], a["size"]) for a in artifacts),
        )
    if run.error:
        console.print(f"[red]error[/]: {run.error.strip().splitlines()[-1]}")


@runs_app.command("compare")
def runs_compare(
    run_ids: list[str] = typer.Argument(..., help="Two or more run ids."),
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Show params and metrics of runs side by side; differences highlighted."""
    with _client(home) as st:
        table = st.tracking.compare_runs(run_ids)
    if json:
        print_json(table)
        return
    grid = Table(title="comparison", title_justify="left")
    grid.add_column("")
    for run in table["runs"]:
        grid.add_column(f"{run['name']}\n{run['id'][-8:]}")
    for section in ("params", "metrics"):
        for row in table[section]:
            style = "bold yellow" if row["differs"] else "dim"
            cells = [
                "" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
                for v in row["values"]
            ]
            grid.add_row(f"{section}.{row['key']}", *cells, style=style)
    console.print(grid)


@runs_app.command("reproduce")
def runs_reproduce(run_id: str, home: HomeOption = None, json: JsonOption = False) -> None:
    """Print what is needed to re-run: commit, command, params, data digests, environment diff."""
    with _client(home) as st:
        recipe = st.tracking.reproduction(run_id)
    if json:
        print_json(recipe)
        return
    git = recipe.get("git") or {}
    console.print(f"[bold]reproduce run {run_id}[/]")
    console.print(
        f"  code     commit {git.get('commit') or 'unknown'}"
        f"{' (dirty!)' if git.get('dirty') else ''}  remote {git.get('remote') or '-'}"
    )
    console.print(f"  command  {' '.join(recipe.get('command') or []) or 'unknown'}")
    console.print(f"  seed     {recipe.get('seed')}")
    if recipe["params"]:
        print_table("params", ["key", "value"], sorted(recipe["params"].items()))
    if recipe["datasets"]:
        print_table(
            "data",
            ["role", "name", "digest", "source"],
            ((d["role"], d["name"], d["digest"], d["source_uri"]) for d in recipe["datasets"]),
        )
    changes = recipe["environment_changes"]
    if changes:
        print_table(
            "environment: then → now",
            ["what", "then", "now"],
            ((c["what"], c["old"], c["new"]) for c in changes),
        )
    else:
        console.print("  environment matches the current one")


@runs_app.command("archive")
def runs_archive(run_id: str, home: HomeOption = None, json: JsonOption = False) -> None:
    """Archive (soft-delete) a run; `steward gc` later removes its artifacts."""
    _set_archived("run", run_id, True, home, json)


@runs_app.command("restore")
def runs_restore(run_id: str, home: HomeOption = None, json: JsonOption = False) -> None:
    """Restore an archived run."""
    _set_archived("run", run_id, False, home, json)


def gc(
    home: HomeOption = None,
    json: JsonOption = False,
    older_than: float = typer.Option(
        30.0, "--older-than", min=0, help="Days since the run was archived."
    ),
    execute: bool = typer.Option(False, "--execute", help="Really delete (default: a dry run)."),
) -> None:
    """Remove artifacts of runs archived longer than N days (dry run unless --execute).

    Needs `admin`. Runs under a legal hold keep their artifacts (reported as skipped),
    and so does any blob another run or a model version still uses.
    """
    with _client(home) as st:
        report = st.tracking.collect_garbage(older_than_days=older_than, dry_run=not execute)
    if json:
        print_json(report)
        return
    verb = "would delete" if report["dry_run"] else "deleted"
    console.print(
        f"{len(report['runs'])} archived runs; {verb} {len(report['artifacts'])} artifacts "
        f"({report['bytes']} bytes); kept {len(report['kept_shared'])} shared with live runs"
        f" and {len(report['kept_in_use'])} used by model versions"
    )
    if report["held"]:
        holds = ", ".join(sorted({h["hold"] for h in report["held"] if h["hold"]}))
        count = len(report["held"])
        runs = "run" if count == 1 else "runs"
        console.print(f"skipped {count} {runs} under a legal hold ({escape(holds)})")
        for held in report["held"]:
            console.print(f"  {held['run']}: {escape(held['reason'])}")
    if report["dry_run"] and report["artifacts"]:
        console.print("run again with --execute to delete")
