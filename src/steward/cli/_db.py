"""``steward db``: the metadata database schema."""

from __future__ import annotations

import typer

from steward.cli._common import HomeOption, JsonOption, store_settings
from steward.cli._output import console, print_json
from steward.store import open_database

app = typer.Typer(help="Inspect and migrate the metadata database schema.", no_args_is_help=True)


@app.command("current")
def current(home: HomeOption = None, json: JsonOption = False) -> None:
    """Show the database's schema revision and the newest one this steward knows."""
    database = open_database(store_settings(home))
    status = database.schema_status()
    if json:
        print_json({"database": database.display_url, **status.as_dict()})
        return
    state = "up to date" if status.up_to_date else "needs `steward db upgrade`"
    if not status.known:
        state = "NEWER than this steward: upgrade steward"
    console.print(f"database  {database.display_url}")
    console.print(f"revision  {status.current or '(empty)'}  (code head {status.head}) — {state}")


@app.command("upgrade")
def upgrade(
    home: HomeOption = None,
    json: JsonOption = False,
    revision: str = typer.Option("head", help="Target revision."),
) -> None:
    """Migrate the database schema to the newest revision (safe to run twice)."""
    database = open_database(store_settings(home))
    before = database.schema_status().current
    status = database.upgrade(revision)
    if json:
        print_json({"database": database.display_url, "from": before, **status.as_dict()})
        return
    if before == status.current:
        console.print(f"{database.display_url} already at revision {status.current}")
    else:
        console.print(f"{database.display_url}: {before or '(empty)'} → {status.current}")
