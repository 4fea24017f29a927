"""Settings of the prediction log: where segments and Parquet partitions live, and how it syncs."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from steward.store import StoreSettings

__all__ = ["PredictionLogSettings"]

MiB = 1024 * 1024


class PredictionLogSettings(StoreSettings):
    """Where the prediction log writes, read from ``STEWARD_*`` like every other setting.

    Defaults: segments in ``STEWARD_HOME/prediction-log``, Parquet partitions in
    ``STEWARD_HOME/predictions``, durable mode.
    """

    prediction_log_dir: Path | None = Field(
        default=None,
        description=(
            "Folder of the log's segments (STEWARD_PREDICTION_LOG_DIR); a local disk: every "
            "durable prediction waits for its fsync. Default STEWARD_HOME/prediction-log."
        ),
    )
    predictions_uri: str | None = Field(
        default=None,
        description=(
            "Root of the compacted Parquet partitions (STEWARD_PREDICTIONS_URI): a folder, "
            "file://... or s3://bucket/prefix. Default STEWARD_HOME/predictions."
        ),
    )
    prediction_log_mode: Literal["durable", "async"] = Field(
        default="durable",
        description=(
            "durable: a prediction is answered only after its record is on disk (one fsync "
            "shared by concurrent requests); async: records are buffered and may be lost in a "
            "crash (STEWARD_PREDICTION_LOG_MODE)."
        ),
    )
    prediction_log_segment_max_bytes: int = Field(
        default=64 * MiB,
        ge=64 * 1024,
        description=(
            "Seal a segment once it is this large (STEWARD_PREDICTION_LOG_SEGMENT_MAX_BYTES)."
        ),
    )
    prediction_log_segment_max_age: float = Field(
        default=300.0,
        gt=0,
        description=(
            "Seal a segment this many seconds after its first record, so that it can be "
            "compacted (STEWARD_PREDICTION_LOG_SEGMENT_MAX_AGE)."
        ),
    )
    prediction_log_flush_interval: float = Field(
        default=0.2,
        gt=0,
        le=60,
        description=(
            "async mode: the longest a record waits in memory before it is written, in "
            "seconds (STEWARD_PREDICTION_LOG_FLUSH_INTERVAL)."
        ),
    )
    prediction_log_max_record_bytes: int = Field(
        default=4 * MiB,
        ge=1024,
        le=64 * MiB,
        description=(
            "Refuse records that encode to more bytes than this "
            "(STEWARD_PREDICTION_LOG_MAX_RECORD_BYTES)."
        ),
    )

    def resolved_prediction_log_dir(self) -> Path:
        """Return the segment folder in force."""
        return (self.prediction_log_dir or self.home / "prediction-log").expanduser().absolute()

    def resolved_predictions_uri(self) -> str:
        """Return the Parquet root in force."""
        return self.predictions_uri or str(self.home / "predictions")
