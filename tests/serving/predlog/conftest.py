"""Fixtures of the prediction log tests: logs closed after each test, an S3 server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.store.conftest import S3Server, s3_server

from steward.serving._predlog import PredictionLog

__all__ = ["S3Server", "s3_server"]


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    """An empty folder for segments."""
    return tmp_path / "segments"


@pytest.fixture
def open_log(tmp_path: Path) -> Iterator[Callable[..., PredictionLog]]:
    """Open logs on ``tmp_path/segments``, Parquet in ``tmp_path/parquet``; closed after."""
    opened: list[PredictionLog] = []

    def factory(**options: Any) -> PredictionLog:
        options.setdefault("predictions", tmp_path / "parquet")
        options.setdefault("worker_id", f"w{len(opened)}")
        log = PredictionLog(options.pop("directory", tmp_path / "segments"), **options)
        opened.append(log)
        return log

    yield factory
    for log in opened:
        log.close()
