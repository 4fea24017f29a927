"""The gateway benchmark's own logic: wrk answers counted by status, accepted p99, the goals."""

from __future__ import annotations

import itertools
import math
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._loadgen import LoadgenUnavailable, build_loadgen, run_loadgen  # noqa: E402
from benchmarks._wrk import Point, parse_wrk, run_wrk  # noqa: E402

from benchmarks import bench_gateway  # noqa: E402

ACCEPTED_DELAY_S = 0.2


class _Mixed(BaseHTTPRequestHandler):
    """Answers 200 (slowly), 429, 503 (both with Retry-After), 503 and 500 in turn.

    Refusals come at once; a 503 without Retry-After is a failure, not shedding.
    """

    statuses = itertools.cycle([(200, False), (429, True), (503, True), (503, False), (500, False)])
    lock = threading.Lock()
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            status, retry = next(self.statuses)
        if status == 200:
            time.sleep(ACCEPTED_DELAY_S)
        self.send_response(status)
        if retry:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # wrk hangs up on the requests still running when its time is up


@pytest.fixture
def mixed_server() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Mixed)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not on PATH (apt-get install wrk)")
def test_wrk_counts_answers_by_status_and_bounds_the_accepted_p99(
    mixed_server: str, tmp_path: Path
) -> None:
    point = run_wrk(mixed_server, '{"inputs": [1.0]}', connections=4, seconds=1, tmp=tmp_path)
    assert point.ok > 0 and point.r429 > 0 and point.r503 > 0 and point.other > 0
    # The server cycles through five answers; wrk stops with a few requests unanswered.
    for count in (point.ok, point.r429, point.r503, point.other / 2):
        assert abs(count - point.answered / 5) <= 4, point
    assert point.shed == point.r429 + point.r503
    assert point.errors == point.other + point.socket_errors
    # Every accepted request took at least 200 ms, so their p99 (and its upper bound) did.
    assert point.p99_accepted_ms >= ACCEPTED_DELAY_S * 1000
    assert point.p99_accepted_low_ms <= point.p99_accepted_ms
    assert point.rps > point.accepted_rps > 0


@pytest.fixture(scope="module")
def loadgen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return build_loadgen(tmp_path_factory.mktemp("loadgen"))
    except LoadgenUnavailable as exc:
        pytest.skip(str(exc))


def test_loadgen_counts_answers_by_status_and_times_the_accepted_ones_alone(
    mixed_server: str, loadgen: Path, tmp_path: Path
) -> None:
    point = run_loadgen(loadgen, mixed_server, '{"inputs": [1.0]}', 4, 2, tmp_path)
    assert point.ok > 0 and point.r429 > 0 and point.r503 > 0 and point.other > 0
    for count in (point.ok, point.r429, point.r503, point.other / 2):
        assert abs(count - point.answered / 5) <= 4, point
    assert point.socket_errors == 0
    # Only the accepted answers took 200 ms; most answers were refusals sent at once,
    # so the p99 of all answers is no bound on theirs, and loadgen's is exact.
    assert point.p99_accepted_ms == point.p99_accepted_low_ms
    assert ACCEPTED_DELAY_S * 1000 <= point.p99_accepted_ms < ACCEPTED_DELAY_S * 1000 + 150
    assert point.p50_ms < ACCEPTED_DELAY_S * 1000


def test_loadgen_takes_an_ipv4_url_only(loadgen: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="IPV4:PORT"):
        run_loadgen(loadgen, "http://localhost:8000/", "{}", 1, 1, tmp_path)
    with pytest.raises(ValueError, match="IPV4:PORT"):
        run_loadgen(loadgen, "https://127.0.0.1:8000/", "{}", 1, 1, tmp_path)


def test_parse_wrk_reads_the_report_line_and_refuses_other_output() -> None:
    line = (
        'STEWARD_WRK {"duration_us": 2000000, "ok": 90, "r429": 0, "r503": 10, "other": 0, '
        '"connect": 0, "read": 1, "write": 0, "timeout": 2, "p50_ms": 1.5, "p99_ms": 9.0, '
        '"p99_accepted_ms": 9.5, "p99_accepted_low_ms": -1}'
    )
    point = parse_wrk(f"Running 2s test\n{line}\n")
    assert (point.answered, point.shed, point.errors) == (100, 10, 3)
    assert (point.rps, point.accepted_rps) == (50.0, 45.0)
    assert point.p99_accepted_ms == 9.5 and math.isnan(point.p99_accepted_low_ms)
    with pytest.raises(ValueError, match="STEWARD_WRK"):
        parse_wrk("Running 2s test\n  Requests/sec: 10\n")


def _point(ok: int, p99_ms: float, *, r503: int = 0, other: int = 0) -> Point:
    return Point(1.0, ok, 0, r503, other, 0, p99_ms / 2, p99_ms, p99_ms, p99_ms)


def test_gateway_goals_pair_c256_with_c64_of_the_same_workers() -> None:
    ours = {
        "c1": _point(500, 2.0),
        "c64_w1": _point(3000, 20.0),
        "c64_w2": _point(5000, 30.0),  # the best configuration: 2 workers
        "c256_w1": _point(3000, 25.0, r503=9000),
        "c256_w2": _point(4000, 60.0, r503=9000, other=1),
        "c64_100_w1": _point(400, 80.0),
        "c64_100_w2": _point(300, 90.0),
    }
    theirs = {
        "c64_w1": _point(100, 600.0),
        "c64_w2": _point(250, 500.0),
        "c64_100_w1": _point(80, 900.0),
        "c64_100_w2": _point(60, 900.0),
    }
    goals = bench_gateway._goals(ours, theirs, inprocess_ms=0.5)
    assert goals["goal_c64_rps_x_mlflow"] == (20.0, "x")  # 5000 / 250
    assert goals["goal_c64_p99_x_mlflow"] == (0.06, "x")  # 30 / 500
    assert goals["goal_100rows_x_mlflow"] == (5.0, "x")  # 400 / 80
    assert goals["goal_c1_p50_over_inprocess_ms"] == (0.5, "ms")  # p50 1.0 - 0.5
    assert goals["goal_c256_p99_x_c64_p99"] == (2.0, "x")  # 2 workers: 60 / 30, not 25 / 20
    assert goals["goal_c256_errors"] == (1.0, "")  # the 503s had Retry-After: shedding
    assert (goals["goals_met"], goals["goals_checked"]) == (5, 6)
    alone = bench_gateway._goals(ours, None, inprocess_ms=0.5)
    assert (alone["goals_met"], alone["goals_checked"]) == (2, 3)
    # With loadgen's c64 point beside the overload point, the ratio uses it (same client).
    ours["c64ref_w2"] = _point(5000, 40.0)
    assert bench_gateway._goals(ours, theirs, inprocess_ms=0.5)["goal_c256_p99_x_c64_p99"] == (
        1.5,
        "x",
    )  # 60 / 40
    measured = bench_gateway._point_measurements(ours)
    assert measured["c64ref_p99_ms_2w"] == (40.0, "ms")
    assert measured["c256_p99_x_c64_p99_2w"] == (1.5, "x")
    assert measured["c256_p99_x_c64_p99_1w"] == (1.25, "x")  # no reference: wrk's c64
