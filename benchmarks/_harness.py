"""The benchmark harness: declare benchmarks, give each run a context, summarize the runs.

A benchmark is a function of a :class:`Context` that returns its measurements::

    @benchmark("audit.append.sqlite.1proc", group="audit", repeats=3, quick_repeats=1)
    def append_sqlite(ctx: Context) -> Measurements:
        ...
        return {"events_per_s": (1234.0, "events/s"), "events": (2000, "events")}

A measurement is a number, or ``(number, unit)``.  A measurement named
``"<measure>@<peer>"`` is the same quantity measured with a peer tool; the report
puts it next to ``<measure>`` with ``ratio = steward median / peer median``.
"""

from __future__ import annotations

import gc
import math
import multiprocessing
import os
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, NoReturn, ParamSpec, TypeVar

import sqlalchemy as sa

from benchmarks._peers import PeerInstallError, Peers

__all__ = [
    "PEER_SEPARATOR",
    "Benchmark",
    "BenchmarkError",
    "BenchmarkResult",
    "Context",
    "Measurements",
    "PeakMemory",
    "PeerUnavailable",
    "SkipBenchmark",
    "Summary",
    "Timer",
    "benchmark",
    "execute",
    "measure_peak_memory",
    "registered",
    "timer",
]

PEER_SEPARATOR = "@"
Measurement = float | int | tuple[float | int, str]
Measurements = Mapping[str, Measurement]
BenchmarkFn = Callable[["Context"], Measurements]
Status = Literal["ok", "skipped", "failed"]
F = TypeVar("F", bound=BenchmarkFn)
T = TypeVar("T")
P = ParamSpec("P")

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
_NAME = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_-]+)*$")
_REGISTRY: dict[str, Benchmark] = {}


class SkipBenchmark(Exception):
    """Raised by a benchmark (or ``ctx.skip``) when it cannot run here; reported as skipped."""


class PeerUnavailable(SkipBenchmark):
    """A peer's environment could not be built; catch it to report steward's numbers alone."""


class BenchmarkError(Exception):
    """A benchmark is declared wrongly, returned bad measurements, or needs a missing service."""


def _services_required() -> bool:
    # CI sets this so that a service that is down fails the run instead of skipping.
    return os.environ.get("STEWARD_REQUIRE_SERVICES", "") in ("1", "true", "yes")


# -- declaration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Benchmark:
    """A declared benchmark."""

    name: str
    group: str
    fn: BenchmarkFn
    repeats: int
    quick_repeats: int
    description: str
    module: str

    def repeats_for(self, *, quick: bool) -> int:
        """Return how many times to run in full or quick mode."""
        return self.quick_repeats if quick else self.repeats


def benchmark(
    name: str,
    *,
    group: str | None = None,
    repeats: int = 3,
    quick_repeats: int = 1,
    description: str | None = None,
) -> Callable[[F], F]:
    """Declare a benchmark; ``group`` defaults to the part of ``name`` before the first dot.

    Raises:
        BenchmarkError: the name is malformed or already taken, or a repeat count is < 1.
    """
    if not _NAME.match(name):
        raise BenchmarkError(
            f"benchmark name {name!r} must be dotted lowercase words, e.g. 'audit.append.sqlite'"
        )
    if repeats < 1 or quick_repeats < 1:
        raise BenchmarkError(f"benchmark {name!r}: repeats and quick_repeats must be >= 1")

    def register(fn: F) -> F:
        if name in _REGISTRY:
            raise BenchmarkError(
                f"benchmark {name!r} is declared twice ({_REGISTRY[name].module} and "
                f"{fn.__module__})"
            )
        doc = (description or fn.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = Benchmark(
            name=name,
            group=group or name.split(".", 1)[0],
            fn=fn,
            repeats=repeats,
            quick_repeats=quick_repeats,
            description=doc[0] if doc else "",
            module=fn.__module__,
        )
        return fn

    return register


def registered() -> list[Benchmark]:
    """Return every declared benchmark, in declaration order."""
    return list(_REGISTRY.values())


# -- timing and memory ------------------------------------------------------------------------


@dataclass
class Timer:
    """Wall-clock seconds of a ``with timer()`` block (``perf_counter``), set when it ends."""

    seconds: float = math.nan


@contextmanager
def timer() -> Iterator[Timer]:
    """Time a block: ``with timer() as t: work()`` then read ``t.seconds``."""
    result = Timer()
    start = time.perf_counter()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - start


@dataclass(frozen=True)
class PeakMemory(Generic[T]):
    """What ``fn`` returned and the peak resident memory of the process that ran it."""

    result: T
    peak_bytes: int
    baseline_bytes: int

    @property
    def delta_bytes(self) -> int:
        """Peak RSS above the baseline (the interpreter, imports and pickled arguments)."""
        return max(0, self.peak_bytes - self.baseline_bytes)


_PROC_STATUS = Path("/proc/self/status")
_PROC_CLEAR_REFS = Path("/proc/self/clear_refs")


def _proc_status_bytes(key: str) -> int | None:
    # "VmHWM:     123456 kB" -> 126418944
    try:
        for line in _PROC_STATUS.read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_peak_rss() -> bool:
    # Linux >= 4.0: writing 5 to clear_refs resets VmHWM to the current RSS.
    try:
        _PROC_CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def _call_with_rss(
    fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[T, int, int]:
    gc.collect()
    if _proc_status_bytes("VmHWM") is not None:
        # /proc's VmHWM belongs to this process image only; ru_maxrss of a spawned
        # child also counts the parent's pages from before the exec.
        baseline = _proc_status_bytes("VmRSS" if _reset_peak_rss() else "VmHWM") or 0
        result = fn(*args, **kwargs)
        return result, baseline, _proc_status_bytes("VmHWM") or 0
    usage = resource.getrusage
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    baseline = usage(resource.RUSAGE_SELF).ru_maxrss * scale
    result = fn(*args, **kwargs)
    return result, baseline, usage(resource.RUSAGE_SELF).ru_maxrss * scale


def measure_peak_memory(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> PeakMemory[T]:
    """Run ``fn(*args, **kwargs)`` in a fresh process and report its peak RSS.

    Peak RSS counts what numpy, Arrow and C extensions allocate, which tracemalloc
    misses.  ``fn`` must be a module-level function and its arguments and result
    picklable; pass paths or sizes rather than data so that inputs are built inside
    the measured process.  ``baseline_bytes`` is the RSS just before ``fn`` runs
    (interpreter, imports, arguments), so ``delta_bytes`` is what ``fn`` itself
    added.  On Linux the peak comes from ``/proc/self/status`` (VmHWM, reset before
    ``fn`` runs); elsewhere from ``getrusage`` high-water marks, which can only
    grow, so a small ``fn`` may read as zero there.  POSIX only.
    """
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        result, baseline, peak = pool.submit(_call_with_rss, fn, args, kwargs).result()
    return PeakMemory(result=result, peak_bytes=peak, baseline_bytes=baseline)


# -- context --------------------------------------------------------------------------------


class Context:
    """What one run of a benchmark gets: mode, a fresh folder, services and peers.

    A new context (new ``tmp``, new PostgreSQL databases) is made for every repeat
    and cleaned up after it.
    """

    def __init__(self, *, quick: bool, tmp: Path, peers: Peers) -> None:
        self.quick = quick
        self.tmp = tmp
        self._peers = peers
        self.services: dict[str, str] = {}
        self.peers_used: set[str] = set()
        self._cleanups: list[Callable[[], None]] = []

    def timer(self) -> AbstractContextManager[Timer]:
        """Time a block: ``with ctx.timer() as t: work()`` then read ``t.seconds``."""
        return timer()

    def measure_peak_memory(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> PeakMemory[T]:
        """Run ``fn`` in a fresh process; report its peak RSS (module-level function)."""
        return measure_peak_memory(fn, *args, **kwargs)

    def size(self, full: int, quick: int) -> int:
        """Return ``quick`` in quick mode, else ``full``: ``n = ctx.size(100_000, 10_000)``."""
        return quick if self.quick else full

    def skip(self, reason: str) -> NoReturn:
        """Stop this benchmark and report it as skipped with ``reason``."""
        raise SkipBenchmark(reason)

    def postgres_url(self) -> str:
        """Create a throwaway database on the server of ``STEWARD_TEST_POSTGRES_URL``.

        The database is dropped when the run ends.  Skips the benchmark when the
        server is unreachable (fails it when ``STEWARD_REQUIRE_SERVICES=1``).
        """
        server = sa.make_url(os.environ.get("STEWARD_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
        shown = server.render_as_string(hide_password=True)
        name = f"steward_bench_{uuid.uuid4().hex[:12]}"
        try:
            admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        except ModuleNotFoundError as exc:
            self._unavailable(
                f"the PostgreSQL driver is missing ({exc.name}); uv sync --all-extras"
            )
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                version = conn.execute(sa.text("SHOW server_version")).scalar_one()
        except sa.exc.OperationalError as exc:
            admin.dispose()
            first_line = str(exc.orig or exc).strip().splitlines()[0]
            self._unavailable(f"PostgreSQL is not reachable at {shown}: {first_line}")
        self.services["postgresql"] = str(version)
        self._cleanups.append(lambda: _drop_database(admin, name))
        return server.set(database=name).render_as_string(hide_password=False)

    def _unavailable(self, reason: str) -> NoReturn:
        if _services_required():
            raise BenchmarkError(f"{reason} (STEWARD_REQUIRE_SERVICES is set)")
        raise SkipBenchmark(reason)

    def peer_python(self, name: str) -> Path:
        """Return the Python of peer ``name``'s venv, building it on first use.

        Raises:
            PeerUnavailable: the venv could not be built (reported as skipped).
        """
        try:
            env = self._peers.ensure(name)
        except PeerInstallError as exc:
            if _services_required():
                raise BenchmarkError(f"{exc} (STEWARD_REQUIRE_SERVICES is set)") from exc
            raise PeerUnavailable(str(exc)) from exc
        self.peers_used.add(name)
        return env.python

    def run_peer(
        self, name: str, script: str | Path, *args: str, timeout_s: float = 600.0
    ) -> dict[str, Any]:
        """Run a snippet or file in peer ``name``'s Python, in ``tmp``; return its JSON.

        The script gets ``args`` as ``sys.argv[1:]`` and must print one JSON object
        on its last stdout line.

        Raises:
            PeerUnavailable: the venv could not be built (reported as skipped).
            PeerError: the script failed (reported as a failure).
        """
        self.peer_python(name)
        return self._peers.run(name, script, *args, cwd=self.tmp, timeout_s=timeout_s)

    def close(self) -> None:
        """Undo what the run created (databases), newest first."""
        while self._cleanups:
            self._cleanups.pop()()


def _drop_database(admin: sa.Engine, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@contextmanager
def open_context(*, quick: bool, peers: Peers) -> Iterator[Context]:
    """Yield a fresh context; remove its folder and databases afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="steward-bench-"))
    ctx = Context(quick=quick, tmp=tmp, peers=peers)
    try:
        yield ctx
    finally:
        try:
            ctx.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# -- results --------------------------------------------------------------------------------


def normalize(raw: object) -> dict[str, tuple[float, str]]:
    """Check a benchmark's return value and give every measurement a unit.

    ``{"n": 3, "rate": (2.5, "rows/s")}`` -> ``{"n": (3.0, ""), "rate": (2.5, "rows/s")}``

    Raises:
        BenchmarkError: not a mapping of names to numbers or (number, unit) pairs.
    """
    if not isinstance(raw, Mapping):
        raise BenchmarkError(f"a benchmark must return a dict of measurements, got {raw!r}")
    out: dict[str, tuple[float, str]] = {}
    for name, value in raw.items():
        number, unit = value if isinstance(value, tuple) and len(value) == 2 else (value, "")
        if not isinstance(name, str) or not name or name.count(PEER_SEPARATOR) > 1:
            raise BenchmarkError(f"measurement name {name!r} must be 'measure' or 'measure@peer'")
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise BenchmarkError(f"measurement {name!r} must be a number, got {value!r}")
        if not isinstance(unit, str):
            raise BenchmarkError(f"measurement {name!r} has a unit that is not a string: {unit!r}")
        out[name] = (float(number), unit)
    return out


@dataclass
class Summary:
    """One measurement over the repeats of a benchmark."""

    name: str
    unit: str
    values: list[float] = field(default_factory=list)

    @property
    def measure(self) -> str:
        """The measured quantity: the name without its ``@peer`` suffix."""
        return self.name.split(PEER_SEPARATOR, 1)[0]

    @property
    def peer(self) -> str | None:
        """The peer tool that produced the values, or None for steward's own."""
        parts = self.name.split(PEER_SEPARATOR, 1)
        return parts[1] if len(parts) == 2 else None

    @property
    def median(self) -> float:
        """Median over the repeats."""
        return statistics.median(self.values)

    def as_dict(self, ratio: float | None) -> dict[str, Any]:
        """Return the JSON view (see benchmarks/README.md)."""
        return {
            "unit": self.unit,
            "median": self.median,
            "min": min(self.values),
            "max": max(self.values),
            "values": self.values,
            "peer": self.peer,
            "ratio": ratio,
        }


@dataclass
class BenchmarkResult:
    """The outcome of running one benchmark ``repeats`` times."""

    benchmark: Benchmark
    status: Status = "ok"
    reason: str | None = None
    traceback: str | None = None
    repeats: int = 0
    seconds: float = 0.0
    summaries: dict[str, Summary] = field(default_factory=dict)
    services: dict[str, str] = field(default_factory=dict)
    peers: set[str] = field(default_factory=set)

    def add(self, run: dict[str, tuple[float, str]]) -> None:
        """Fold one repeat's measurements in."""
        for name, (value, unit) in run.items():
            summary = self.summaries.setdefault(name, Summary(name, unit))
            if summary.unit != unit:
                raise BenchmarkError(
                    f"measurement {name!r} changed unit: {summary.unit!r} -> {unit!r}"
                )
            summary.values.append(value)
        self.repeats += 1

    def ratio(self, summary: Summary) -> float | None:
        """Return steward median / peer median for a peer measurement, else None."""
        own = self.summaries.get(summary.measure)
        if summary.peer is None or own is None or summary.median == 0:
            return None
        return own.median / summary.median

    def ordered(self) -> list[Summary]:
        """Return measurements in declaration order, each followed by its peers' values."""
        own = [s for s in self.summaries.values() if s.peer is None]
        out: list[Summary] = []
        for summary in own:
            out.append(summary)
            out.extend(s for s in self.summaries.values() if s.peer and s.measure == summary.name)
        out.extend(s for s in self.summaries.values() if s not in out)
        return out

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON view (see benchmarks/README.md)."""
        bench = self.benchmark
        return {
            "name": bench.name,
            "group": bench.group,
            "module": bench.module,
            "description": bench.description,
            "status": self.status,
            "reason": self.reason,
            "traceback": self.traceback,
            "repeats": self.repeats,
            "seconds": round(self.seconds, 3),
            "services": self.services,
            "peers": sorted(self.peers),
            "measurements": {s.name: s.as_dict(self.ratio(s)) for s in self.ordered()},
        }


def execute(bench: Benchmark, *, quick: bool, repeats: int, peers: Peers) -> BenchmarkResult:
    """Run a benchmark ``repeats`` times, each in a fresh context; never raises.

    A skip stops the repeats and reports ``skipped``; any other exception stops
    them and reports ``failed`` with the message, keeping the repeats already done.
    """
    result = BenchmarkResult(bench)
    start = time.perf_counter()
    try:
        for _ in range(repeats):
            gc.collect()
            with open_context(quick=quick, peers=peers) as ctx:
                try:
                    run = normalize(bench.fn(ctx))
                finally:
                    result.services.update(ctx.services)
                    result.peers |= ctx.peers_used
            result.add(run)
    except SkipBenchmark as exc:
        result.status, result.reason = "skipped", str(exc) or type(exc).__name__
    except Exception as exc:
        result.status = "failed"
        result.reason = f"{type(exc).__name__}: {exc}"
        result.traceback = traceback.format_exc()
    result.seconds = time.perf_counter() - start
    return result
