"""Load from ``wrk`` with answers counted by status, and the latency of accepted requests.

wrk reports one latency distribution for every answered request. Under overload a
gateway answers some requests at once with 429/503 and ``Retry-After`` (shedding),
and those fast refusals would pull the percentiles down. A Lua ``response()`` hook
counts per thread 2xx, shedding (429 or 503 *with* ``Retry-After``) and the rest
(errors, among them a 503 without ``Retry-After``: a failed model or an open
breaker); ``done()`` adds them up and bounds the p99 of the accepted (2xx)
requests from the shared distribution:

- at most the overall quantile at ``(shed + 0.99 * accepted) / answered`` (as if
  every refusal were faster than every accepted request, which is what an
  admission gate that refuses at once gives: then the bound is exact);
- at least the overall quantile at ``0.99 * accepted / answered``.

With no shedding both bounds are the overall p99.
"""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Point", "parse_wrk", "reported_ms", "run_wrk", "wrk_script"]

_MARK = "STEWARD_WRK "

_LUA = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = __BODY__

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok, r429, r503, other = 0, 0, 0, 0
end

function response(status, headers, body)
  local retry = headers["retry-after"] or headers["Retry-After"]
  if status >= 200 and status < 300 then
    ok = ok + 1
  elseif status == 429 and retry then
    r429 = r429 + 1
  elseif status == 503 and retry then
    r503 = r503 + 1
  else
    other = other + 1
  end
end

local function quantile_ms(latency, q)
  if q ~= q or q <= 0 then
    return -1
  end
  return latency:percentile(math.min(q * 100, 100)) / 1000
end

function done(summary, latency, requests)
  local c = {ok = 0, r429 = 0, r503 = 0, other = 0}
  for _, thread in ipairs(threads) do
    for key, _ in pairs(c) do
      c[key] = c[key] + thread:get(key)
    end
  end
  local n = c.ok + c.r429 + c.r503 + c.other
  local shed = n - c.ok
  local e = summary.errors
  io.write(string.format(
    '__MARK__{"duration_us": %d, "ok": %d, "r429": %d, "r503": %d, "other": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "timeout": %d, ' ..
    '"p50_ms": %.6f, "p99_ms": %.6f, "p99_accepted_ms": %.6f, "p99_accepted_low_ms": %.6f}\\n',
    summary.duration, c.ok, c.r429, c.r503, c.other,
    e.connect, e.read, e.write, e.timeout,
    quantile_ms(latency, n > 0 and 0.5 or -1), quantile_ms(latency, n > 0 and 0.99 or -1),
    quantile_ms(latency, c.ok > 0 and (shed + 0.99 * c.ok) / n or -1),
    quantile_ms(latency, c.ok > 0 and 0.99 * c.ok / n or -1)))
end
"""


@dataclass(frozen=True)
class Point:
    """What wrk measured at one point; latencies in ms (NaN when nothing was answered)."""

    seconds: float
    ok: int
    r429: int
    r503: int
    other: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    p99_accepted_ms: float
    p99_accepted_low_ms: float

    @property
    def answered(self) -> int:
        """Requests that got an HTTP answer."""
        return self.ok + self.r429 + self.r503 + self.other

    @property
    def rps(self) -> float:
        """Answered requests per second, whatever their status."""
        return self.answered / self.seconds

    @property
    def accepted_rps(self) -> float:
        """2xx answers per second."""
        return self.ok / self.seconds

    @property
    def shed(self) -> int:
        """Deliberate refusals: 429 (rate limit) and 503 (overload) with ``Retry-After``."""
        return self.r429 + self.r503

    @property
    def errors(self) -> int:
        """Everything that is neither a 2xx nor deliberate shedding, socket errors included."""
        return self.other + self.socket_errors


def reported_ms(value: float) -> float:
    """A latency a load generator reported, in ms; NaN where it had none (it writes -1)."""
    return math.nan if value < 0 else float(value)


def wrk_script(body: str) -> str:
    """Return the Lua script that POSTs ``body`` (JSON text) and reports by status."""
    return _LUA.replace("__BODY__", json.dumps(body)).replace("__MARK__", _MARK)


def parse_wrk(stdout: str) -> Point:
    """Read the line ``done()`` wrote into wrk's output.

    Raises:
        ValueError: wrk's output has no such line (not our script, or wrk failed).
    """
    lines = [line for line in stdout.splitlines() if line.startswith(_MARK)]
    if not lines:
        raise ValueError(f"wrk wrote no {_MARK.strip()} line; its output:\n{stdout}")
    raw = json.loads(lines[-1][len(_MARK) :])

    return Point(
        seconds=raw["duration_us"] / 1e6,
        ok=raw["ok"],
        r429=raw["r429"],
        r503=raw["r503"],
        other=raw["other"],
        socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        p50_ms=reported_ms(raw["p50_ms"]),
        p99_ms=reported_ms(raw["p99_ms"]),
        p99_accepted_ms=reported_ms(raw["p99_accepted_ms"]),
        p99_accepted_low_ms=reported_ms(raw["p99_accepted_low_ms"]),
    )


def run_wrk(url: str, body: str, connections: int, seconds: int, tmp: Path) -> Point:
    """POST ``body`` to ``url`` from ``connections`` connections for ``seconds``."""
    script = tmp / "post.lua"
    script.write_text(wrk_script(body))
    threads = min(2, connections)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
         "--timeout", "10s", "-s", str(script), url],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return parse_wrk(out)
