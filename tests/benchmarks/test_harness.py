"""The benchmark harness's own logic: declaration, repeats, statuses, peers, the report."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

# `benchmarks` lives at the project root, which pytest does not put on sys.path.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._harness import (  # noqa: E402
    Benchmark,
    BenchmarkError,
    Context,
    Measurements,
    benchmark,
    execute,
    measure_peak_memory,
    normalize,
)
from benchmarks._peers import PeerError, Peers, requirement_names  # noqa: E402

from benchmarks import _harness, run  # noqa: E402


def _bench(fn: _harness.BenchmarkFn, name: str = "demo.case") -> Benchmark:
    return Benchmark(name, "demo", fn, repeats=3, quick_repeats=1, description="", module=__name__)


def _allocate(megabytes: int) -> int:
    block = bytearray(megabytes * 1024 * 1024)
    return len(block)


def test_benchmark_decorator_registers_with_group_and_docstring(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_harness, "_REGISTRY", {})

    @benchmark("demo.fast.case", quick_repeats=2)
    def fast(ctx: Context) -> Measurements:
        """Do little, quickly.

        More words.
        """
        return {}

    (declared,) = _harness.registered()
    assert (declared.name, declared.group, declared.description) == (
        "demo.fast.case",
        "demo",
        "Do little, quickly.",
    )
    assert declared.repeats_for(quick=True) == 2
    with pytest.raises(BenchmarkError, match="declared twice"):
        benchmark("demo.fast.case")(fast)


@pytest.mark.parametrize("name", ["Audit.x", "audit..x", "audit.x@peer", ""])
def test_benchmark_decorator_rejects_bad_names(name: str) -> None:
    with pytest.raises(BenchmarkError, match="dotted lowercase"):
        benchmark(name)


def test_normalize_gives_units_and_rejects_non_numbers() -> None:
    assert normalize({"n": 3, "rate": (2.5, "rows/s")}) == {"n": (3.0, ""), "rate": (2.5, "rows/s")}
    with pytest.raises(BenchmarkError, match="must be a number"):
        normalize({"ok": True})
    with pytest.raises(BenchmarkError, match="dict of measurements"):
        normalize([1.0])


def test_execute_summarizes_repeats_and_pairs_peer_values(tmp_path: Path) -> None:
    values = iter([10.0, 30.0, 20.0])
    seen: list[Path] = []

    def fn(ctx: Context) -> Measurements:
        seen.append(ctx.tmp)
        assert ctx.tmp.is_dir() and not any(ctx.tmp.iterdir())
        value = next(values)
        return {"rate": (value, "ev/s"), "rate@other": (value / 4, "ev/s")}

    result = execute(_bench(fn), quick=False, repeats=3, peers=Peers(tmp_path, tmp_path))
    doc = result.as_dict()
    assert doc["status"] == "ok" and doc["repeats"] == 3
    rate = doc["measurements"]["rate"]
    assert (rate["median"], rate["min"], rate["max"]) == (20.0, 10.0, 30.0)
    peer = doc["measurements"]["rate@other"]
    assert (peer["peer"], peer["ratio"]) == ("other", 4.0)
    assert len(set(seen)) == 3 and not any(p.exists() for p in seen)


def test_execute_reports_skips_and_failures_without_raising(tmp_path: Path) -> None:
    peers = Peers(tmp_path, tmp_path)
    calls = []

    def skipper(ctx: Context) -> Measurements:
        calls.append(1)
        ctx.skip("no GPU here")

    def breaker(ctx: Context) -> Measurements:
        raise ValueError("boom 7")

    skipped = execute(_bench(skipper), quick=True, repeats=3, peers=peers)
    assert (skipped.status, skipped.reason, len(calls)) == ("skipped", "no GPU here", 1)
    failed = execute(_bench(breaker), quick=True, repeats=3, peers=peers)
    assert (failed.status, failed.reason) == ("failed", "ValueError: boom 7")
    assert failed.traceback and "boom 7" in failed.traceback


def test_postgres_url_skips_when_server_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEWARD_TEST_POSTGRES_URL", "postgresql+psycopg://nobody@127.0.0.1:1/x")
    monkeypatch.delenv("STEWARD_REQUIRE_SERVICES", raising=False)
    result = execute(
        _bench(lambda ctx: {"url": len(ctx.postgres_url())}),
        quick=True,
        repeats=1,
        peers=Peers(tmp_path, tmp_path),
    )
    assert result.status == "skipped"
    assert "PostgreSQL is not reachable at postgresql+psycopg://nobody@127.0.0.1:1/x" in (
        result.reason or ""
    )


def _fake_peer(tmp_path: Path, requirements: str) -> Peers:
    """A peer whose venv is already built: its python is this interpreter."""
    reqs, venvs = tmp_path / "reqs", tmp_path / "venvs"
    reqs.mkdir()
    (reqs / "fake.txt").write_text(requirements)
    bin_dir = venvs / "fake" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    digest = hashlib.sha256(requirements.encode()).hexdigest()
    marker = {"requirements_sha256": digest, "python": "3.x", "packages": {"fakepkg": "1.0"}}
    (venvs / "fake" / "steward-peer.json").write_text(json.dumps(marker))
    return Peers(reqs, venvs)


def test_run_peer_returns_the_last_json_line(tmp_path: Path) -> None:
    peers = _fake_peer(tmp_path, "fakepkg==1.0\n")
    ctx = Context(quick=True, tmp=tmp_path, peers=peers)
    script = "import json, sys\nprint('noise')\nprint(json.dumps({'args': sys.argv[1:]}))"
    assert ctx.run_peer("fake", script, "a", "b") == {"args": ["a", "b"]}
    assert ctx.peers_used == {"fake"}
    assert peers.ensure("fake").as_dict() == {"python": "3.x", "packages": {"fakepkg": "1.0"}}
    with pytest.raises(PeerError, match="JSON object on its last stdout line"):
        ctx.run_peer("fake", "print('not json')")
    with pytest.raises(PeerError, match="exited 3"):
        ctx.run_peer("fake", "raise SystemExit(3)")
    with pytest.raises(FileNotFoundError, match="known peers: \\['fake'\\]"):
        ctx.run_peer("missing", "print(1)")


def test_requirement_names_ignore_options_and_comments() -> None:
    text = "# python: 3.12\nnumpy>=2  # fast\n-r other.txt\nevidently[all]==0.4\n\n"
    assert requirement_names(text) == ["numpy", "evidently"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_measure_peak_memory_sees_allocations_in_the_child() -> None:
    peak = measure_peak_memory(_allocate, 64)
    assert peak.result == 64 * 1024 * 1024
    assert peak.delta_bytes >= 60 * 1024 * 1024


def test_select_matches_groups_names_and_globs() -> None:
    a = _bench(lambda ctx: {}, "audit.append.sqlite")
    b = Benchmark("quality.psi", "quality", a.fn, 1, 1, "", __name__)
    assert run.select([a, b], ["quality"]) == [b]
    assert run.select([a, b], ["audit.*", "audit.append.sqlite"]) == [a]
    with pytest.raises(run.SelectionError, match="groups: demo, quality"):
        run.select([a, b], ["nothing"])


def test_results_document_is_written_with_latest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "RESULTS_DIR", tmp_path)
    peers = Peers(tmp_path, tmp_path)
    result = execute(_bench(lambda ctx: {"n": (1, "rows")}), quick=True, repeats=1, peers=peers)
    args = run.parse_args(["--quick"])
    started = run.datetime(2026, 1, 2, 3, 4, 5, tzinfo=run.UTC)
    doc = run.run_document([result], args=args, started=started, import_errors={}, peers=peers)
    paths = run.write_results(doc, None, started)
    assert [p.name for p in paths] == ["20260102T030405Z.json", "latest.json"]
    loaded = json.loads(paths[1].read_text())
    assert loaded["summary"] == {"ok": 1, "skipped": 0, "failed": 0}
    assert loaded["machine"]["packages"]["steward"]
    assert loaded["benchmarks"][0]["measurements"]["n"]["unit"] == "rows"


def test_results_table_shows_peer_columns_only_when_a_peer_was_measured(tmp_path: Path) -> None:
    peers = Peers(tmp_path, tmp_path)

    def render(measurements: Measurements) -> str:
        result = execute(_bench(lambda ctx: measurements), quick=True, repeats=1, peers=peers)
        console = run.Console(record=True, width=200)
        console.print(run.results_table([result]))
        return console.export_text()

    plain = render({"rate": (10.0, "ev/s")})
    assert "ratio" not in plain
    compared = render({"rate": (10.0, "ev/s"), "rate@other": (4.0, "ev/s")})
    assert "ratio" in compared and "2.50x" in compared and "other" in compared
