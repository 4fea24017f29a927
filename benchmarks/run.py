"""Run steward's benchmarks: ``python -m benchmarks.run [NAMES or GROUPS ...] [--quick]``.

Discovers ``benchmarks/bench_*.py``, runs the selected benchmarks (each repeated),
prints a table of median/min/max per measurement and writes the results as JSON
to ``benchmarks/results/<UTC timestamp>.json`` and ``benchmarks/results/latest.json``
(or to ``--out``).  Exits 1 when a benchmark failed, 2 on a bad selection.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib
import json
import os
import pkgutil
import platform
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from benchmarks._harness import Benchmark, BenchmarkResult, execute, registered
from benchmarks._peers import Peers

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
SCHEMA_VERSION = 1
PACKAGES = (
    "steward", "sqlalchemy", "alembic", "psycopg", "numpy", "scipy", "pyarrow", "duckdb",
    "pandas", "scikit-learn", "pydantic", "rich",
)  # fmt: skip
_STATUS_STYLE = {"ok": "green", "skipped": "yellow", "failed": "red"}


def discover() -> dict[str, str]:
    """Import every ``benchmarks/bench_*.py``; return ``{module: error}`` for those that fail."""
    errors: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules([str(HERE)]), key=lambda m: m.name):
        if not info.name.startswith("bench_"):
            continue
        module = f"benchmarks.{info.name}"
        try:
            importlib.import_module(module)
        except Exception as exc:  # one broken module must not stop the others
            errors[module] = f"{type(exc).__name__}: {exc}"
    return errors


class SelectionError(ValueError):
    """A name or group given on the command line matches no benchmark."""


def select(benchmarks: list[Benchmark], selectors: Sequence[str]) -> list[Benchmark]:
    """Keep benchmarks whose name or group matches any selector (exact or shell glob).

    ``["audit", "quality.psi.*"]`` keeps group ``audit`` and names matching the glob.

    Raises:
        SelectionError: a selector matches nothing (the message lists the groups).
    """
    if not selectors:
        return benchmarks
    chosen: list[Benchmark] = []
    for selector in selectors:
        hits = [
            b for b in benchmarks if selector == b.group or fnmatch.fnmatchcase(b.name, selector)
        ]
        if not hits:
            groups = sorted({b.group for b in benchmarks})
            raise SelectionError(
                f"{selector!r} matches no benchmark name or group; groups: "
                f"{', '.join(groups) or 'none'} (see --list)"
            )
        chosen.extend(b for b in hits if b not in chosen)
    return chosen


# -- machine information --------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        out = _command(["sysctl", "-n", "machdep.cpu.brand_string"])
        if out:
            return out
    return platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _command(command: list[str]) -> str | None:
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=10, cwd=HERE)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """Describe the machine and software the numbers were measured on."""
    status = _command(["git", "status", "--porcelain", "--untracked-files=no"])
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "packages": {name: _version(name) for name in PACKAGES},
        "git_commit": _command(["git", "rev-parse", "HEAD"]),
        "git_dirty": None if status is None else bool(status),
    }


# -- report ---------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    # 12345678.9 -> "12.35M", 11887.8 -> "11,888", 3.14159 -> "3.14", 0.000123 -> "0.000123"
    if value != value:  # NaN
        return "nan"
    if abs(value) >= 10_000_000:
        return f"{value / 1e6:,.2f}M"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1 or value == 0:
        return f"{value:,.2f}"
    return f"{value:.3g}"


def _ratio_cell(ratio: float | None, unit: str) -> str:
    if ratio is None:
        return ""
    # Rates (units ending in /s) are better when higher; everything else when lower.
    better = ratio >= 1 if unit.endswith("/s") else ratio <= 1
    return f"[{'green' if better else 'red'}]{ratio:.2f}x[/]"


def results_table(results: list[BenchmarkResult]) -> Table:
    """Build the table printed at the end of a run."""
    table = Table(title="steward benchmarks (median of repeats)", title_justify="left")
    with_peers = any(s.peer for r in results for s in r.summaries.values())
    columns = [
        ("benchmark", "left"), ("measure", "left"), ("median", "right"), ("min", "right"),
        ("max", "right"), ("unit", "left"), ("peer", "left"), ("ratio", "right"),
    ]  # fmt: skip
    for column, justify in columns if with_peers else columns[:-2]:
        numeric = column in ("median", "min", "max", "ratio")
        table.add_column(column, justify=justify, no_wrap=numeric)  # type: ignore[arg-type]
    for result in results:
        name = result.benchmark.name
        if result.status != "ok" and not result.summaries:
            style = _STATUS_STYLE[result.status]
            cells = ["", "", "", ""] + (["", ""] if with_peers else [])
            table.add_row(name, f"[{style}]{result.status}[/]", *cells, end_section=True)
            continue
        if result.status != "ok":  # failed part-way: keep the repeats that completed
            name = f"[{_STATUS_STYLE[result.status]}]{name} ({result.status})[/]"
        rows = result.ordered()
        for i, summary in enumerate(rows):
            cells = [
                name if i == 0 else "",
                summary.measure,
                _fmt(summary.median),
                _fmt(min(summary.values)),
                _fmt(max(summary.values)),
                summary.unit,
            ]
            if with_peers:
                cells += [summary.peer or "", _ratio_cell(result.ratio(summary), summary.unit)]
            table.add_row(*cells, end_section=i == len(rows) - 1)
    return table


def run_document(
    results: list[BenchmarkResult],
    *,
    args: argparse.Namespace,
    started: datetime,
    import_errors: dict[str, str],
    peers: Peers,
) -> dict[str, Any]:
    """Assemble the JSON document of a run (layout in benchmarks/README.md)."""
    services: dict[str, str] = {}
    used: set[str] = set()
    for result in results:
        services.update(result.services)
        used |= result.peers
    return {
        "schema_version": SCHEMA_VERSION,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
        "quick": args.quick,
        "repeats_override": args.repeats,
        "machine": machine_info(),
        "services": services,
        "peers": {name: peers.ensure(name).as_dict() for name in sorted(used)},
        "import_errors": import_errors,
        "summary": {status: sum(r.status == status for r in results) for status in _STATUS_STYLE},
        "benchmarks": [result.as_dict() for result in results],
    }


def write_results(document: dict[str, Any], out: Path | None, started: datetime) -> list[Path]:
    """Write the run's JSON to ``out``, or to a timestamped file plus ``latest.json``."""
    text = json.dumps(document, indent=2) + "\n"
    paths = (
        [out]
        if out
        else [RESULTS_DIR / f"{started:%Y%m%dT%H%M%SZ}.json", RESULTS_DIR / "latest.json"]
    )
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return paths


# -- command line ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description="Run steward's benchmarks."
    )
    parser.add_argument(
        "selectors", nargs="*", metavar="NAME",
        help="benchmark names, groups, or shell globs over names (default: all)",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats")
    parser.add_argument("--repeats", type=int, help="repeat each benchmark N times")
    parser.add_argument(
        "--out", type=Path, help="write the JSON here (default: benchmarks/results/)"
    )
    parser.add_argument("--list", action="store_true", help="list benchmarks and exit")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    return args


def _print_list(console: Console, benchmarks: list[Benchmark]) -> None:
    table = Table("name", "group", "repeats", "quick", "description")
    for b in benchmarks:
        table.add_row(b.name, b.group, str(b.repeats), str(b.quick_repeats), b.description)
    console.print(table)


def run_all(
    console: Console, benchmarks: list[Benchmark], args: argparse.Namespace, peers: Peers
) -> list[BenchmarkResult]:
    """Run the benchmarks one after another with a progress bar."""
    results: list[BenchmarkResult] = []
    columns = (
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(),
    )  # fmt: skip
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("benchmarks", total=len(benchmarks))
        for bench in benchmarks:
            repeats = args.repeats or bench.repeats_for(quick=args.quick)
            progress.update(task, description=f"{bench.name} x{repeats}")
            result = execute(bench, quick=args.quick, repeats=repeats, peers=peers)
            style = _STATUS_STYLE[result.status]
            note = f": {result.reason}" if result.reason else ""
            progress.console.print(
                f"[{style}]{result.status:>7}[/] {bench.name} ({result.seconds:.1f} s){note}",
                markup=True,
                highlight=False,
            )
            results.append(result)
            progress.advance(task)
        progress.update(task, description="benchmarks")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = parse_args(argv)
    # Logs of `make bench` are read in wide editors; don't squeeze the table to 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 140)
    import_errors = discover()
    for module, error in import_errors.items():
        console.print(f"[red]cannot import {module}[/]: {error}", highlight=False)
    try:
        chosen = select(registered(), args.selectors)
    except SelectionError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        return 2
    if args.list:
        _print_list(console, chosen)
        return 0
    peers = Peers()
    started = datetime.now(UTC)
    results = run_all(console, chosen, args, peers)
    console.print(results_table(results))
    for result in results:
        if result.status == "failed" and result.traceback:
            console.print(
                f"[red]{result.benchmark.name} failed[/]\n{result.traceback}", highlight=False
            )
    document = run_document(
        results, args=args, started=started, import_errors=import_errors, peers=peers
    )
    for path in write_results(document, args.out, started):
        console.print(f"results written to {path}", highlight=False)
    failed = any(r.status == "failed" for r in results)
    # A module that cannot be imported fails a full run; a selected run only warns.
    return 1 if failed or (import_errors and not args.selectors) else 0


if __name__ == "__main__":
    sys.exit(main())
