"""Settings of the features context: where definitions, the online store and push logs live."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from steward.core import CoreSettings

__all__ = ["FeatureSettings"]


class FeatureSettings(CoreSettings):
    """Where the feature repository, the online store and the offline push log are.

    Defaults give the embedded layout under ``STEWARD_HOME``: ``online.db``
    (SQLite) for online values and ``features/offline/`` for pushed rows.
    """

    online_store_url: str | None = Field(
        default=None,
        description=(
            "Online store (STEWARD_ONLINE_STORE_URL): sqlite:///path/online.db or "
            "redis://host:port/db; default sqlite under STEWARD_HOME."
        ),
    )
    feature_repo: Path = Field(
        default=Path("features.py"),
        description=(
            "The features.py file or package folder `steward features apply` loads "
            "(STEWARD_FEATURE_REPO)."
        ),
    )
    offline_dir: Path | None = Field(
        default=None,
        description=(
            "Root of the offline push log (STEWARD_OFFLINE_DIR); default "
            "STEWARD_HOME/features/offline."
        ),
    )
    duckdb_threads: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Threads DuckDB may use for retrieval (STEWARD_DUCKDB_THREADS); default: the "
            "cores this process may use."
        ),
    )
    duckdb_memory_limit: str = Field(
        default="1GB",
        description=(
            "Memory DuckDB may hold before spilling to disk during retrieval "
            "(STEWARD_DUCKDB_MEMORY_LIMIT), e.g. 1GB, 4GB."
        ),
    )

    def resolved_online_store_url(self) -> str:
        """Return the online store URL in force, defaulting to SQLite under ``home``."""
        return self.online_store_url or f"sqlite:///{self.home / 'online.db'}"

    def resolved_offline_dir(self) -> Path:
        """Return the push-log root in force, defaulting to a folder under ``home``."""
        return self.offline_dir or self.home / "features" / "offline"

    def docs_dir(self) -> Path:
        """Return the folder of the generated Markdown page per view."""
        return self.home / "features" / "docs"
