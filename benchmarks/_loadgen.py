"""Load from ``loadgen.c``: the exact p99 of accepted requests when some are shed.

wrk keeps one latency distribution for every answer, so under shedding the p99 of
the accepted requests can only be bounded from it (see ``_wrk.py``). ``loadgen.c``
is a small closed-loop HTTP/1.1 client in C, like wrk (epoll loops on two
threads, keep-alive, the next request at once), that keeps each answer's latency
with its status class.
It is compiled with the system's C compiler on first use.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks._wrk import Point, reported_ms

__all__ = ["LoadgenUnavailable", "build_loadgen", "run_loadgen"]

_SOURCE = Path(__file__).with_name("loadgen.c")


class LoadgenUnavailable(RuntimeError):
    """No C compiler, or the build failed (the message says which)."""


def build_loadgen(tmp: Path) -> Path:
    """Compile ``loadgen.c`` into ``tmp``; return the binary.

    Raises:
        LoadgenUnavailable: no ``cc``/``gcc``/``clang`` on PATH, or it failed.
    """
    compiler = next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)
    if compiler is None:
        raise LoadgenUnavailable("no C compiler on PATH (cc, gcc or clang)")
    binary = tmp / "loadgen"
    done = subprocess.run(
        [compiler, "-O2", "-pthread", "-o", str(binary), str(_SOURCE)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise LoadgenUnavailable(f"{compiler} could not build loadgen.c:\n{done.stderr}")
    return binary


def run_loadgen(
    binary: Path, url: str, body: str, connections: int, seconds: int, tmp: Path
) -> Point:
    """POST ``body`` to ``url`` (http://IPv4:port/path) from ``connections`` connections."""
    parts = urlsplit(url)
    try:
        ipaddress.IPv4Address(parts.hostname or "")
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or port is None:
        raise ValueError(f"loadgen takes http://IPV4:PORT/PATH, got {url!r}")
    body_file = tmp / "loadgen-body.json"
    body_file.write_text(body)
    out = subprocess.run(
        [str(binary), str(parts.hostname), str(port), parts.path or "/", str(body_file),
         str(connections), str(seconds), "10", str(min(2, connections))],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    raw = json.loads(out.strip().splitlines()[-1])

    return Point(
        seconds=raw["seconds"],
        ok=raw["ok"],
        r429=raw["r429"],
        r503=raw["r503"],
        other=raw["other"],
        socket_errors=raw["socket_errors"],
        p50_ms=reported_ms(raw["p50_ms"]),
        p99_ms=reported_ms(raw["p99_ms"]),
        p99_accepted_ms=reported_ms(raw["p99_accepted_ms"]),
        # exact: both bounds are the value
        p99_accepted_low_ms=reported_ms(raw["p99_accepted_ms"]),
    )
