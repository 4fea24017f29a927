"""Persistence: metadata database, unit of work, audit chain and artifact store."""

from steward.store._settings import StoreSettings

__all__ = [
    "StoreSettings",
]
