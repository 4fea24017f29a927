"""The ``steward`` command: Typer app and the error boundary around it."""

from __future__ import annotations

import os
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from steward.cli import (
    _audit,
    _db,
    _deployments,
    _features,
    _gateway,
    _governance,
    _lineage,
    _logs,
    _policy,
    _promotions,
    _registry,
    _retention,
    _tracking,
    quality,
)
from steward.cli._canary import print_decisions
from steward.cli._common import HomeOption, JsonOption, open_store, set_token, store_settings
from steward.cli._lineage import render_lineage
from steward.cli._output import console, err_console, exit_code_for, print_json, print_table
from steward.core import StewardError
from steward.demo import run_demo
from steward.registry import LineageGraph

__all__ = ["app", "main"]

app = typer.Typer(
    name="steward",
    help="steward: carry a model from data to prediction with a tamper-evident record.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(_db.app, name="db")
app.add_typer(_audit.app, name="audit")
app.add_typer(_tracking.experiments_app, name="experiments")
app.add_typer(_tracking.runs_app, name="runs")
app.command("gc")(_tracking.gc)
app.add_typer(quality.app, name="quality")
app.add_typer(_registry.models_app, name="models")
app.add_typer(_lineage.lineage_app, name="lineage")
app.add_typer(_lineage.import_app, name="import")
app.add_typer(_policy.app, name="policy")
app.command("promote")(_promotions.promote)
app.add_typer(_promotions.approvals_app, name="approvals")
app.add_typer(_governance.users_app, name="users")
app.add_typer(_governance.roles_app, name="roles")
app.add_typer(_governance.tokens_app, name="tokens")
app.command("whoami")(_governance.whoami)
app.add_typer(_logs.app, name="logs")
app.add_typer(_features.app, name="features")
app.add_typer(_deployments.deployments_app, name="deployments")
app.command("gateway")(_gateway.gateway)
app.add_typer(_retention.retention_app, name="retention")
app.add_typer(_retention.holds_app, name="holds")
app.add_typer(_retention.governance_app, name="governance")

_DEBUG = "STEWARD_DEBUG"


def _version() -> str:
    try:
        return metadata.version("steward")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "unknown"


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks for errors.")
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help=(
                "Act as the owner of this steward token (stw_...) or identity-provider JWT "
                "(default: STEWARD_TOKEN; without one, the local identity unless "
                "STEWARD_AUTH=required)."
            ),
            show_default=False,
        ),
    ] = None,
) -> None:
    if debug:
        os.environ[_DEBUG] = "1"
    set_token(token)


@app.command("version")
def version(json: JsonOption = False) -> None:
    """Print steward's version."""
    if json:
        print_json({"steward": _version(), "python": sys.version.split()[0]})
    else:
        console.print(f"steward {_version()}")


@app.command("init")
def init(home: HomeOption = None, json: JsonOption = False) -> None:
    """Create (or upgrade) a steward home: metadata database, artifact store, audit chain."""
    store = open_store(home, authenticate=False)
    try:
        facts = store.initialize()
    finally:
        store.close()
    if json:
        print_json({"home": str(store_settings(home).home), **facts})
        return
    verb = "initialized" if facts["initialized"] else "already initialized; schema checked"
    console.print(f"steward home {verb}")
    console.print(f"  database   {facts['database']} (schema {facts['schema_revision']})")
    console.print(f"  artifacts  {facts['artifacts']}")


@app.command("demo")
def demo(
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="Folder for the demo's home (default: a new temporary folder).",
            show_default=False,
        ),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Run the guided tour on an embedded home and print what steward recorded."""
    target = home or Path(tempfile.mkdtemp(prefix="steward-demo-"))
    say = (lambda _: None) if json else (lambda line: console.print(f"• {line}"))
    report = run_demo(target, say=say)
    if json:
        print_json({"home": report.home, "steps": report.steps})
        return
    _print_comparison(next(s for s in report.steps if s["step"] == "tracking.compare"))
    fairness = next(s for s in report.steps if s["step"] == "quality.fairness")
    print_table(
        f"fairness of the chosen model by {fairness['attribute']}",
        ["group", "rows", "selection rate", "TPR", "FPR"],
        (
            (
                g["group"],
                g["count"],
                f"{g['selection_rate']:.3f}",
                f"{g['true_positive_rate']:.3f}",
                f"{g['false_positive_rate']:.3f}",
            )
            for g in fairness["groups"]
        ),
    )
    lineage = next((s for s in report.steps if s["step"] == "registry.lineage"), None)
    if lineage is not None:
        console.print("[bold]lineage of the registered model[/]")
        console.print(render_lineage(LineageGraph.from_dict(lineage)))
    _print_serving(report.steps)
    events = next(s["events"] for s in report.steps if s["step"] == "audit.log")
    print_table(
        "audit log",
        ["seq", "actor", "action", "object", "hash"],
        (
            (
                e["seq"],
                e["actor"],
                e["action"],
                f"{e['object_type']}/{e['object_id'][:16]}",
                e["hash"][:16] + "…",
            )
            for e in events
        ),
    )
    console.print(f"home kept at {report.home}; try: steward audit verify --home {report.home}")
    console.print(
        f"  steward models show card-fraud --home {report.home}   "
        f"(model card: {report.home}/model-card.html)"
    )
    governed = next((s for s in report.steps if s["step"] == "governance.report"), None)
    if governed is not None:
        console.print(
            f"  steward governance report {governed['ref']} --html --home {report.home}   "
            f"(written: {governed['html']})"
        )


def _print_serving(steps: list[dict[str, Any]]) -> None:
    found = {s["step"]: s for s in steps if s["step"].startswith("serving.")}
    if "serving.canary" in found:
        canary = found["serving.canary"]
        title = f"canary decisions on {canary['deployment']} (pairs: {canary['canary']}/baseline)"
        print_decisions(title, canary["decisions"], brief=True)
    if "serving.log_query" in found:
        query = found["serving.log_query"]
        console.print(f"[bold]steward logs query[/] {' '.join(query['sql'].split())!r}")
        print_table(
            "the prediction log by variant",
            query["columns"],
            ([str(v) for v in row.values()] for row in query["rows"]),
        )


def _print_comparison(step: dict[str, Any]) -> None:
    runs = step["runs"]
    rows = []
    for row in step["metrics"]:
        if row["key"].startswith("holdout_"):
            rows.append([row["key"], *(f"{v:.4f}" if v is not None else "" for v in row["values"])])
    best = next(i for i, r in enumerate(runs) if r["id"] == step["best_run"])
    columns = ["metric", *(r["name"] + (" ★" if i == best else "") for i, r in enumerate(runs))]
    print_table("tracked runs (card-fraud)", columns, rows)


def main() -> None:
    """Entry point: run the app; user errors become one line on stderr and an exit code.

    Usage errors and ``--help`` are handled by Typer itself (exit code 2 and 0).
    """
    try:
        app()
    except StewardError as exc:
        if os.environ.get(_DEBUG) in ("1", "true"):
            raise
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exit_code_for(exc))
