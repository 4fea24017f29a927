"""Column types shared by every context's tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = ["UTCDateTime", "big_id"]


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp with microseconds, identical on SQLite and PostgreSQL.

    SQLite has no time zones, so values are stored there as naive UTC; they come
    back aware.  Naive datetimes are refused on the way in: a timestamp without a
    zone is a bug waiting for a daylight-saving change.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC (naive on SQLite)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} cannot be stored; give it a timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        if not isinstance(value, datetime):  # pragma: no cover - drivers always give datetimes
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def big_id() -> sa.types.TypeEngine[int]:
    """Return a 64-bit integer type that is SQLite's rowid when used as a primary key."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")
