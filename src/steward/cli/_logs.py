"""``steward logs``: query, compact, verify and tail the prediction log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from steward.cli._common import HomeOption, JsonOption
from steward.cli._output import console, err_console, print_json, print_table
from steward.core import load_settings
from steward.serving._predlog import PredictionArchive, PredictionLogSettings

app = typer.Typer(
    help=(
        "Query and look after the prediction log: every request the gateway answered, with "
        "feedback. SQL runs on DuckDB over the views `predictions` and `feedback`."
    ),
    no_args_is_help=True,
)

_CELL = 60  # longest cell shown in a table; --json shows everything


def _archive(home: Path | None) -> PredictionArchive:
    overrides: dict[str, Any] = {} if home is None else {"home": home}
    return PredictionArchive.from_settings(load_settings(PredictionLogSettings, **overrides))


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= _CELL else text[: _CELL - 1] + "…"


def _print_rows(table: pa.Table, title: str) -> None:
    print_table(
        title, table.column_names, ([_cell(v) for v in row.values()] for row in table.to_pylist())
    )


@app.command("query")
def query(
    sql: str = typer.Argument(
        ...,
        help=(
            'DuckDB SQL, e.g. "SELECT variant, count(*) FROM predictions GROUP BY 1". JSON '
            "columns (inputs, features, outputs, label) read with json_extract(inputs, '$.x')."
        ),
        show_default=False,
    ),
    home: HomeOption = None,
    json: JsonOption = False,
    limit: int = typer.Option(1000, "--limit", min=1, help="Print at most this many rows."),
) -> None:
    """Run SQL over the predictions and feedback views (compacted and fresh records alike).

    Views: predictions(request_id, ts, deployment, revision, variant, model_version,
    inputs, features, outputs, latency_ms, caller, test, fallback, shadow, error) and
    feedback(request_id, ts, label, label_value, reward, caller); join on request_id.
    """
    table = _archive(home).query(sql, limit=limit + 1)
    truncated = table.num_rows > limit
    table = table.slice(0, limit)
    if json:
        print_json(table.to_pylist())
    else:
        _print_rows(table, f"{table.num_rows} rows")
    if truncated:
        err_console.print(f"showing the first {limit} rows; raise --limit to see more")


@app.command("tail")
def tail(
    home: HomeOption = None,
    json: JsonOption = False,
    deployment: str | None = typer.Option(None, "--deployment", "-d", help="Only this deployment."),
    count: int = typer.Option(20, "--count", "-n", min=1, help="How many predictions."),
) -> None:
    """Show the newest predictions, newest first."""
    table = _archive(home).tail(count, deployment=deployment)
    if json:
        print_json(table.to_pylist())
        return
    shown = table.select(
        ["ts", "deployment", "variant", "model_version", "request_id", "outputs", "latency_ms"]
    )
    _print_rows(shown, f"newest {table.num_rows} predictions")


@app.command("compact")
def compact(home: HomeOption = None, json: JsonOption = False) -> None:
    """Compact sealed segments into Parquet partitions (safe to interrupt and to rerun)."""
    archive = _archive(home)
    with Progress(
        TextColumn("compacting segments"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        disable=json,
        transient=True,
    ) as progress:
        task = progress.add_task("compact", total=None)
        report = archive.compact(
            progress=lambda done, total: progress.update(task, completed=done, total=total)
        )
    problems = [str(c) for c in report.corrupt]
    facts = {
        "segments": report.segments,
        "records": report.records,
        "parts": report.parts,
        "finished_earlier": report.finished_earlier,
        "recovered_segments": len(report.recovery.segments),
        "dropped_torn_bytes": report.recovery.dropped_bytes,
        "busy": report.busy,
        "problems": problems,
        "predictions": archive.store.location,
    }
    if json:
        print_json(facts)
    elif report.busy:
        console.print("another compaction is running on this log; nothing done")
    else:
        console.print(
            f"compacted {report.segments} segments ({report.records} records) into "
            f"{report.parts} Parquet parts under {archive.store.location}"
        )
        if report.recovery.segments:
            console.print(
                f"recovered {len(report.recovery.segments)} segments of stopped writers, "
                f"cutting {report.recovery.dropped_bytes} bytes of torn tails"
            )
        for problem in problems:
            err_console.print(f"[red]corrupt:[/] {problem}", highlight=False)
    if problems:
        raise typer.Exit(1)


@app.command("verify")
def verify(home: HomeOption = None, json: JsonOption = False) -> None:
    """Check every segment frame by frame and every Parquet part; exit 1 naming any damage."""
    archive = _archive(home)
    report = archive.verify()
    if json:
        print_json(
            {
                "ok": report.ok,
                "segments": report.segments,
                "records": report.records,
                "parts": report.parts,
                "torn_bytes": report.torn_bytes,
                "problems": report.problems,
            }
        )
    elif report.ok:
        torn = (
            f"; {report.torn_bytes} bytes of torn tails will be cut at the next compaction"
            if report.torn_bytes
            else ""
        )
        console.print(
            f"[green]prediction log OK[/]: {report.segments} segments ({report.records} "
            f"records), {report.parts} Parquet parts{torn}"
        )
    else:
        for problem in report.problems:
            err_console.print(f"[red]damaged:[/] {problem}", highlight=False)
    if not report.ok:
        raise typer.Exit(1)
