"""``steward audit``: read, verify and export the tamper-evident record."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import typer

from steward.cli._common import HomeOption, JsonOption, open_store
from steward.cli._output import console, err_console, print_json, print_table
from steward.core import InvalidInputError
from steward.store import ChainAnchor, Store

app = typer.Typer(help="Verify, list and export the audit chain.", no_args_is_help=True)


def _reader(home: Path | None) -> Store:
    """Open the store as the caller, who needs the ``audit:read`` scope."""
    store = open_store(home)
    store.authorize("audit:read")
    return store


def _parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(
            f"{option} {value!r} is not an ISO date or time, e.g. 2026-11-01 or 2026-11-01T12:00Z"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command("verify")
def verify(
    home: HomeOption = None,
    json: JsonOption = False,
    anchor: str | None = typer.Option(
        None, help="SEQ:HASH recorded earlier by `steward audit head`; detects removed tail events."
    ),
) -> None:
    """Check every link of the chain; exit 1 naming the first bad event if any was tampered with."""
    store = _reader(home)
    result = store.audit.verify(anchor=ChainAnchor.parse(anchor) if anchor else None)
    if json:
        print_json(result.as_dict())
    elif result.ok:
        head = f", head {result.head}" if result.head else ""
        console.print(f"[green]audit chain OK[/]: {result.events} events{head}")
    else:
        err_console.print(
            f"[red]audit chain BROKEN at event {result.first_bad_seq}[/]: {result.problem}"
        )
    if not result.ok:
        raise typer.Exit(1)


@app.command("head")
def head(home: HomeOption = None, json: JsonOption = False) -> None:
    """Print the newest event as SEQ:HASH: keep it elsewhere to detect truncation later."""
    anchor = _reader(home).audit.head()
    if json:
        print_json({"head": str(anchor) if anchor else None})
    else:
        console.print(str(anchor) if anchor else "(empty chain)")


@app.command("log")
def log(
    home: HomeOption = None,
    json: JsonOption = False,
    actor: str | None = typer.Option(None, help="Only events by this actor."),
    action: str | None = typer.Option(None, help="Only this action, e.g. home.initialize."),
    object_type: str | None = typer.Option(None, "--object-type", help="Only this object type."),
    object_id: str | None = typer.Option(None, "--object-id", help="Only this object id."),
    since: str | None = typer.Option(None, help="From this time (ISO 8601, UTC if no zone)."),
    until: str | None = typer.Option(None, help="Before this time (ISO 8601)."),
    limit: int = typer.Option(50, min=1, help="At most this many events, newest first."),
) -> None:
    """List audit events, newest first, filtered by actor, object and time."""
    events = _reader(home).audit.list_events(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        since=_parse_time(since, "--since"),
        until=_parse_time(until, "--until"),
        limit=limit,
    )
    if json:
        print_json([event.as_dict() for event in events])
        return
    print_table(
        f"{len(events)} audit events",
        ["seq", "time (UTC)", "actor", "action", "object", "details"],
        (
            (
                e.seq,
                e.ts.strftime("%Y-%m-%d %H:%M:%S"),
                e.actor,
                e.action,
                f"{e.object_type}/{e.object_id}",
                ", ".join(f"{k}={v}" for k, v in e.details.items())[:80],
            )
            for e in events
        ),
    )


@app.command("export")
def export(
    home: HomeOption = None,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write to this file instead of stdout."
    ),
    export_format: str = typer.Option("jsonl", "--format", help="Output format: jsonl."),
    since: str | None = typer.Option(None, help="From this time (ISO 8601)."),
    until: str | None = typer.Option(None, help="Before this time (ISO 8601)."),
) -> None:
    """Write events oldest first as JSON lines, one event per line, for a SIEM."""
    if export_format != "jsonl":
        raise InvalidInputError(f"--format {export_format!r} is not supported; valid: jsonl")
    store = _reader(home)
    filters = {"since": _parse_time(since, "--since"), "until": _parse_time(until, "--until")}
    if output is None:
        store.audit.export_jsonl(sys.stdout, **filters)
        return
    with output.open("w", encoding="utf-8") as handle:
        count = store.audit.export_jsonl(handle, **filters)
    err_console.print(f"wrote {count} events to {output}")
