"""SQL over partitions and live segments; retention with legal holds; an S3 root."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from tests.serving.predlog._factories import T0, count, feedback, prediction, request_ids
from tests.store.conftest import S3Server

from steward.core import InvalidInputError
from steward.serving._predlog import PredictionLog, open_partition_store


def _mixed(log: PredictionLog) -> None:
    """Rows in a compacted partition, in a sealed segment, and in the open segment."""
    for i in range(10):
        log.append(prediction(i))
    log.rotate()
    log.compact()
    for i in range(10, 20):
        log.append(prediction(i))
    log.rotate()
    for i in range(20, 30):
        log.append(prediction(i))


def test_query_sees_partitions_sealed_and_open_segments_once(
    open_log: Callable[..., PredictionLog], log_dir: Path
) -> None:
    log = open_log()
    _mixed(log)
    assert len(list(log_dir.glob("*.seg"))) == 1 and len(list(log_dir.glob("*.open"))) == 1
    assert request_ids(log) == [f"req-{i:06d}" for i in range(30)]


def test_another_process_sees_fresh_records(
    open_log: Callable[..., PredictionLog], log_dir: Path, tmp_path: Path
) -> None:
    from steward.serving._predlog import PredictionArchive

    log = open_log()
    _mixed(log)
    archive = PredictionArchive(log_dir, open_partition_store(str(tmp_path / "parquet")))
    assert archive.query("SELECT count(*) AS n FROM predictions").column("n")[0].as_py() == 30


def test_feedback_joins_by_request_id(open_log: Callable[..., PredictionLog]) -> None:
    log = open_log()
    _mixed(log)
    for i in range(0, 30, 3):
        log.append(feedback(i, label=i % 2 == 0))
    table = log.query(
        "SELECT p.variant, count(*) AS n, avg(f.label_value) AS positive_rate "
        "FROM predictions p JOIN feedback f USING (request_id) GROUP BY 1 ORDER BY 1"
    )
    assert table.to_pylist() == [
        {"variant": "challenger", "n": 3, "positive_rate": 1.0},
        {"variant": "champion", "n": 7, "positive_rate": 2 / 7},
    ]


def test_json_columns_answer_json_extract(open_log: Callable[..., PredictionLog]) -> None:
    log = open_log()
    _mixed(log)
    table = log.query(
        "SELECT request_id FROM predictions "
        "WHERE CAST(json_extract(inputs, '$.amount') AS DOUBLE) > 37 "
        "AND json_extract_string(outputs, '$.label') = '0' ORDER BY request_id"
    )
    assert table.column("request_id").to_pylist() == ["req-000028"]


def test_query_takes_parameters_and_a_limit(open_log: Callable[..., PredictionLog]) -> None:
    log = open_log()
    _mixed(log)
    table = log.query(
        "SELECT request_id FROM predictions WHERE variant = ? ORDER BY request_id",
        ["challenger"],
        limit=2,
    )
    assert table.column("request_id").to_pylist() == ["req-000000", "req-000004"]


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("SELEC 1", "syntax error"),
        ("SELECT nope FROM predictions", "nope"),
        ("SELECT * FROM runs", "runs"),
        ("COPY predictions TO 'stolen.csv'", "disabled"),
        ("SELECT * FROM read_csv('/etc/passwd')", "disabled"),
        ("ATTACH 'other.db'", "disabled"),
        ("SET enable_external_access = true", "locked"),
    ],
)
def test_bad_or_hostile_sql_is_refused_clearly(
    open_log: Callable[..., PredictionLog], tmp_path: Path, sql: str, named: str
) -> None:
    log = open_log()
    log.append(prediction(1))
    with pytest.raises(InvalidInputError, match=named) as info:
        log.query(sql)
    assert "predictions(request_id, ts, deployment" in str(info.value)
    assert not (tmp_path / "stolen.csv").exists()


def test_tail_gives_the_newest_first(open_log: Callable[..., PredictionLog]) -> None:
    log = open_log()
    _mixed(log)
    log.append(prediction(99, deployment="credit"))
    assert log.archive.tail(3).column("request_id").to_pylist() == [
        "req-000099",
        "req-000029",
        "req-000028",
    ]
    only = log.archive.tail(5, deployment="credit")
    assert only.column("request_id").to_pylist() == ["req-000099"]
    with pytest.raises(InvalidInputError, match="at least 1"):
        log.archive.tail(0)


def _days(log: PredictionLog, deployment: str) -> list[date]:
    rows = log.query(
        "SELECT DISTINCT CAST(ts AS DATE) AS day FROM predictions WHERE deployment = ? ORDER BY 1",
        [deployment],
    )
    return list(rows.column("day").to_pylist())


def test_purge_deletes_old_partitions_except_held_ones(
    open_log: Callable[..., PredictionLog],
) -> None:
    log = open_log()
    for day in range(5):
        for deployment in ("fraud", "credit"):
            log.append(prediction(day, deployment=deployment, ts=T0 + timedelta(days=day)))
    log.append(feedback(1, ts=T0))
    log.rotate()
    log.compact()
    start = T0.date()
    held_day = start + timedelta(days=1)

    report = log.purge("fraud", start + timedelta(days=3), held=lambda d, day: day == held_day)
    assert report.deleted == [("fraud", start), ("fraud", start + timedelta(days=2))]
    assert report.held == [("fraud", held_day)]
    assert report.files == 2 and report.bytes > 0
    assert _days(log, "fraud") == [held_day, start + timedelta(days=3), start + timedelta(days=4)]
    assert len(_days(log, "credit")) == 5  # other deployments untouched
    assert count(log, "feedback") == 1
    assert log.archive.verify().ok

    fb = log.archive.purge_feedback(start + timedelta(days=1), held=lambda day: False)
    assert fb.deleted == [("feedback", start)]
    assert count(log, "feedback") == 0
    with pytest.raises(InvalidInputError, match="deployment name"):
        log.purge("../x", start, held=lambda d, day: False)


@pytest.mark.s3
def test_partitions_on_s3(open_log: Callable[..., PredictionLog], s3_server: S3Server) -> None:
    prefix = s3_server.new_prefix()
    store = open_partition_store(
        f"s3://{s3_server.bucket}/{prefix}/predictions", s3_endpoint_url=s3_server.endpoint_url
    )
    log = open_log(predictions=store)
    for i in range(20):
        log.append(prediction(i, ts=T0 + timedelta(hours=i)))
    log.append(feedback(3))
    log.rotate()
    report = log.compact()
    assert (report.segments, report.records) == (1, 21)
    keys = [
        o["Key"]
        for o in s3_server.client.list_objects_v2(Bucket=s3_server.bucket, Prefix=prefix)[
            "Contents"
        ]
    ]
    assert sum("/deployment=fraud/date=" in k for k in keys) == 2
    assert not any("/tmp/" in k for k in keys)  # staged uploads were published
    log.append(prediction(20))  # fresh, still in a segment
    assert request_ids(log) == [f"req-{i:06d}" for i in range(21)]
    assert request_ids(log, "feedback") == ["req-000003"]
    assert log.archive.verify().ok
    purged = log.purge("fraud", date(2026, 3, 2), held=lambda d, day: False)
    assert purged.files == 1
    assert count(log) == 9  # day two's 8 compacted rows + the fresh one
