"""The prediction log: every request the gateway answers, durably, queryable with SQL.

Writers append records to segments with group commit; sealed segments are
compacted into Parquet partitions (``deployment=<name>/date=<day>``) under the
predictions root; DuckDB queries both. See ``docs/architecture.md``.
"""

from steward.serving._predlog._archive import PredictionArchive, PurgeReport, VerifyReport
from steward.serving._predlog._compaction import CompactionReport
from steward.serving._predlog._errors import (
    PredictionLogClosedError,
    RecordTooLargeError,
    SegmentCorruptError,
)
from steward.serving._predlog._log import PredictionLog
from steward.serving._predlog._partitions import PartitionStore, open_partition_store
from steward.serving._predlog._records import FeedbackRecord, LogRecord, PredictionRecord
from steward.serving._predlog._recovery import RecoveredSegment, RecoveryReport
from steward.serving._predlog._settings import PredictionLogSettings
from steward.serving._predlog._tables import FEEDBACK_SCHEMA, PREDICTION_SCHEMA
from steward.serving._predlog._writer import WriterStats

__all__ = [
    "FEEDBACK_SCHEMA",
    "PREDICTION_SCHEMA",
    "CompactionReport",
    "FeedbackRecord",
    "LogRecord",
    "PartitionStore",
    "PredictionArchive",
    "PredictionLog",
    "PredictionLogClosedError",
    "PredictionLogSettings",
    "PredictionRecord",
    "PurgeReport",
    "RecordTooLargeError",
    "RecoveredSegment",
    "RecoveryReport",
    "SegmentCorruptError",
    "VerifyReport",
    "WriterStats",
    "open_partition_store",
]
