"""Options and state shared by every command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from steward.core import load_settings
from steward.store import Store, StoreSettings

__all__ = ["HomeOption", "JsonOption", "open_store", "store_settings"]

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document for scripts.")]
HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="steward home folder (default: STEWARD_HOME or ./.steward).",
        show_default=False,
    ),
]


def store_settings(home: Path | None = None, **overrides: Any) -> StoreSettings:
    """Load store settings from the environment, with ``--home`` taking precedence."""
    if home is not None:
        overrides["home"] = home
    return load_settings(StoreSettings, **overrides)


def open_store(home: Path | None = None) -> Store:
    """Open the store of the home in force."""
    return Store.open(store_settings(home))
