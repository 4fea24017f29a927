"""Settings of the store context: where metadata and artifacts live, and how they are sealed."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from steward.core import CoreSettings

__all__ = ["StoreSettings"]


class StoreSettings(CoreSettings):
    """Where the metadata database and the artifact store are, chosen by URL.

    Defaults give the embedded layout under ``STEWARD_HOME``: ``steward.db``
    (SQLite, WAL) and ``artifacts/`` (a local folder).
    """

    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the metadata database (STEWARD_DATABASE_URL), e.g. "
            "postgresql+psycopg://user@host/db; default sqlite under STEWARD_HOME."
        ),
    )
    artifact_uri: str | None = Field(
        default=None,
        description=(
            "Where artifacts are stored (STEWARD_ARTIFACT_URI): a folder path, file://... or "
            "s3://bucket/prefix; default STEWARD_HOME/artifacts."
        ),
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="Endpoint of an S3-compatible server (STEWARD_S3_ENDPOINT_URL), e.g. MinIO.",
    )
    encrypt_artifacts: bool = Field(
        default=False,
        description=(
            "Seal new artifacts with AES-GCM (STEWARD_ENCRYPT_ARTIFACTS); needs a master key."
        ),
    )
    master_key: SecretStr | None = Field(
        default=None,
        description="Base64 of a 32-byte master key (STEWARD_MASTER_KEY).",
    )
    master_key_file: Path | None = Field(
        default=None,
        description=(
            "File of base64 master keys, one per line, newest first (STEWARD_MASTER_KEY_FILE)."
        ),
    )
    sqlite_synchronous: Literal["FULL", "NORMAL"] = Field(
        default="FULL",
        description=(
            "SQLite durability (STEWARD_SQLITE_SYNCHRONOUS): FULL syncs every commit to disk; "
            "NORMAL (with WAL) survives a crash of the process but may lose the last commits "
            "if the machine loses power."
        ),
    )
    auto_migrate: bool | None = Field(
        default=None,
        description=(
            "Upgrade the database schema on first use (STEWARD_AUTO_MIGRATE); default: on for "
            "SQLite, off for server databases (run `steward db upgrade`)."
        ),
    )

    def resolved_database_url(self) -> str:
        """Return the database URL in force, defaulting to SQLite under ``home``."""
        return self.database_url or f"sqlite:///{self.home / 'steward.db'}"

    def resolved_artifact_uri(self) -> str:
        """Return the artifact URI in force, defaulting to a folder under ``home``."""
        return self.artifact_uri or str(self.home / "artifacts")
