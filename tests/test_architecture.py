"""The dependency table of DESIGN.md, checked on every import in the source tree.

import-linter enforces the layering; this test adds what layers cannot say: the
exact contexts each one may use, and that contexts use one another only through
their public ``__init__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "steward"

# context -> contexts it may import directly (core is always allowed).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "store": set(),
    "quality": set(),
    "tracking": {"store", "quality"},
    "registry": {"store", "tracking", "quality"},
    "governance": {"store", "registry", "quality", "tracking"},
    "features": {"store", "quality"},
    "serving": {"store", "quality", "registry", "governance", "features"},
    "monitoring": {"store", "serving", "quality", "registry", "tracking"},
    "pipelines": {"store", "tracking", "registry", "quality"},
}
TOP = {"api", "ui", "cli", "demo", "sdk"}  # adapters: may use every context, publicly
# Packages used directly until their context's public __init__ exists: serving's is
# written when the gateway lands; then `steward logs` imports from steward.serving.
NOT_YET_PUBLIC = {"steward.serving._predlog"}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _context_of(path: Path) -> str:
    return path.relative_to(SRC).parts[0]


def _source_files() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.relative_to(SRC).parts[0] != "__init__.py")


@pytest.mark.parametrize("path", _source_files(), ids=lambda p: str(p.relative_to(SRC)))
def test_architecture_imports_follow_the_design(path: Path) -> None:
    context = _context_of(path)
    problems = []
    for line, module in _imports(path):
        parts = module.split(".")
        if parts[0] != "steward":
            continue
        if len(parts) == 1:
            problems.append(f"line {line}: `import steward` inside steward")
            continue
        target = parts[1]
        if target == context:
            continue
        if target != "core" and context not in TOP and target not in ALLOWED.get(context, set()):
            problems.append(f"line {line}: {context} may not import {target} ({module})")
        if len(parts) > 2 and parts[2].startswith("_") and module not in NOT_YET_PUBLIC:
            problems.append(
                f"line {line}: {module} is private to {target}; import from steward.{target}"
            )
    assert not problems, "\n".join(problems)
