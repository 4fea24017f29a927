"""How the CLI speaks: Rich for people, one JSON document for scripts, one-line errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from steward.core import (
    BackendUnavailableError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    SchemaVersionError,
    StewardError,
)

__all__ = ["EXIT_CODES", "console", "err_console", "exit_code_for", "print_json", "print_table"]

console = Console()
err_console = Console(stderr=True)

# Exit codes scripts can branch on; the first matching class wins.
EXIT_CODES: tuple[tuple[type[StewardError], int], ...] = (
    (InvalidInputError, 2),
    (NotFoundError, 3),
    (ConflictError, 4),
    (PermissionDeniedError, 5),
    (IntegrityError, 6),
    (BackendUnavailableError, 7),
    (SchemaVersionError, 8),
)


def exit_code_for(error: StewardError) -> int:
    """Return the process exit code for an error (1 when no class matches)."""
    for cls, code in EXIT_CODES:
        if isinstance(error, cls):
            return code
    return 1


def print_json(value: Any) -> None:
    """Write ``value`` as one JSON document on stdout."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print rows as a Rich table."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(table)
