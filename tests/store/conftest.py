"""Fixtures of the store tests: a real S3-compatible server (moto) on loopback.

The server runs in its own process, so the client's memory is measured alone
and every request crosses a real socket. It starts once per test run; each test
gets its own key prefix in one bucket.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

S3_BUCKET = "steward-test"
_REQUIRE_SERVICES = os.environ.get("STEWARD_REQUIRE_SERVICES", "") in ("1", "true", "yes")
_FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "steward-test",
    "AWS_SECRET_ACCESS_KEY": "steward-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def _unavailable(reason: str) -> None:
    if _REQUIRE_SERVICES:
        pytest.fail(f"{reason} (STEWARD_REQUIRE_SERVICES is set, so this is a failure)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_up(url: str, server: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"moto server exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"moto server did not answer at {url} within {timeout} s")


@dataclass(frozen=True)
class S3Server:
    """A running S3-compatible server and a boto3 client on it (to look behind the store)."""

    endpoint_url: str
    bucket: str
    client: Any

    def new_prefix(self) -> str:
        """Return a key prefix no other test uses."""
        return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """Start moto's S3 server on 127.0.0.1 for this test run, with one empty bucket."""
    try:
        import boto3
        import moto.server  # noqa: F401  # the subprocess needs it
        import s3fs  # noqa: F401  # the backend under test needs it
    except ImportError as exc:
        _unavailable(f"S3 tests need moto[server], boto3 and s3fs: {exc}")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in _FAKE_AWS.items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            patch.delenv(name, raising=False)
        url = f"http://127.0.0.1:{_free_port()}"
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", url.rsplit(":", 1)[1]],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_until_up(url, server)
            client = boto3.client("s3", endpoint_url=url)
            client.create_bucket(Bucket=S3_BUCKET)
            yield S3Server(endpoint_url=url, bucket=S3_BUCKET, client=client)
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
