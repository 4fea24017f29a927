"""Real gateway processes for scale-out and crash tests: ``steward gateway`` on a loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

STARTUP_TIMEOUT_S = 180.0  # imports and model loads are slow on a busy machine


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class GatewayProcess:
    """One ``steward gateway`` process (one uvicorn worker, so its pid is the worker's)."""

    process: subprocess.Popen[bytes]
    base_url: str
    output: Path

    def predict_url(self, deployment: str) -> str:
        """The predict endpoint of ``deployment`` on this gateway."""
        return f"{self.base_url}/v1/deployments/{deployment}/predict"

    def kill(self) -> None:
        """SIGKILL the process: no shutdown hooks, no flush, no goodbye."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """Stop the process gracefully (SIGTERM), killing it if it does not go."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def wait_ready(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Wait until ``/readyz`` answers 200 (every deployment loaded and warmed)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the gateway exited with {self.process.returncode} before it was ready:\n"
                    + self.output.read_text(errors="replace")[-4000:]
                )
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(
            f"the gateway at {self.base_url} was not ready after {timeout_s:.0f} s:\n"
            + self.output.read_text(errors="replace")[-4000:]
        )


def start_gateway(home: Path, output: Path, **env: str) -> GatewayProcess:
    """Start ``steward gateway --insecure-local`` on ``home`` and a free port (not yet ready).

    ``env`` adds ``STEWARD_*`` variables, e.g. ``STEWARD_DATABASE_URL``.
    """
    port = free_port()
    command = [
        sys.executable,
        "-c",
        "from steward.cli import main; main()",
        "gateway",
        "--port",
        str(port),
        "--insecure-local",
        "--home",
        str(home),
    ]
    with output.open("wb") as out:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return GatewayProcess(process, f"http://127.0.0.1:{port}", output)


@contextmanager
def running_gateways(home: Path, count: int, **env: str) -> Iterator[list[GatewayProcess]]:
    """Start ``count`` gateways on one home and wait until all are ready; stop them after."""
    with ExitStack() as stack:
        gateways = []
        for i in range(count):
            gateway = start_gateway(home, home.parent / f"gateway-{i}.log", **env)
            stack.callback(gateway.stop)
            gateways.append(gateway)
        for gateway in gateways:  # they start side by side
            gateway.wait_ready()
        yield gateways


@dataclass(frozen=True)
class Answer:
    """What one request got: status 0 means no HTTP answer at all (a transport error)."""

    sent: float
    received: float
    status: int
    request_id: str | None = None
    revision: int | None = None
    model_version: str | None = None
    error: str | None = None


class Traffic:
    """Threads that send one record after another to each URL and record every answer.

    Args:
        urls: predict endpoints; each gets ``threads`` senders of its own.
        body: the JSON body of every request.
        threads: concurrent senders per URL (each keeps one connection open).
        stop_on_error: a sender stops at its first transport error (the server is gone).
    """

    def __init__(
        self, urls: list[str], body: object, *, threads: int, stop_on_error: bool = False
    ) -> None:
        self.answers: dict[str, list[Answer]] = {url: [] for url in urls}
        self._body = body
        self._stop = threading.Event()
        self._stop_on_error = stop_on_error
        self._threads = [
            threading.Thread(target=self._send, args=(url,), daemon=True)
            for url in urls
            for _ in range(threads)
        ]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _send(self, url: str) -> None:
        answers = self.answers[url]
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    response = client.post(url, json=self._body)
                except httpx.HTTPError as exc:
                    answers.append(Answer(sent, time.monotonic(), 0, error=repr(exc)))
                    if self._stop_on_error:
                        return
                    continue
                try:
                    body = response.json()
                except ValueError:  # not JSON: uvicorn's own plain-text 500
                    body = {}
                answers.append(  # list.append is atomic: no lock needed
                    Answer(
                        sent,
                        time.monotonic(),
                        response.status_code,
                        request_id=body.get("request_id"),
                        revision=body.get("revision"),
                        model_version=body.get("model_version"),
                        error=None if response.status_code == 200 else response.text,
                    )
                )

    def served(self, url: str, revision: int) -> list[Answer]:
        """The answers of ``url`` that came from ``revision``."""
        return [a for a in list(self.answers[url]) if a.status == 200 and a.revision == revision]

    def all_answers(self) -> list[Answer]:
        """Every answer so far, of every URL."""
        return [a for answers in self.answers.values() for a in list(answers)]


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll ``condition`` every 10 ms; return the seconds it took, or fail naming ``what``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"{what}: not seen within {timeout_s:g} s")
        time.sleep(0.01)
    return time.monotonic() - started
