"""Every CLI command reaches the services through the helpers that carry ``--token``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CLI = Path(__file__).resolve().parents[2] / "src" / "steward" / "cli"
# The only ways into a home; each must get the caller's token, so only _common calls them.
OPENERS = {"connect", "Store.open", "authenticated_store"}


def _called_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return func.id if isinstance(func, ast.Name) else ""


def _openers_called(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        f"line {node.lineno}: {_called_name(node)}(...)"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _called_name(node) in OPENERS
    ]


@pytest.mark.parametrize(
    "path",
    sorted(p for p in CLI.glob("*.py") if p.name != "_common.py"),
    ids=lambda p: p.name,
)
def test_cli_modules_connect_only_through_common(path: Path) -> None:
    assert _openers_called(path) == [], (
        f"{path.name} opens the home itself; use connect_client() or open_store() from "
        "steward.cli._common so the global --token is honoured"
    )


def test_cli_common_is_what_opens_the_home() -> None:
    # Guards the guard: if the helpers moved, the check above would pass vacuously.
    assert len(_openers_called(CLI / "_common.py")) == len(OPENERS)
